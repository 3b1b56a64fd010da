"""A numpy model's architecture as data: :func:`describe_model` reads the
:class:`~tinygrad_mnist.models.LayerDesc` tuple back from a built model, and
:func:`layers_to_json` / :func:`layers_from_json` turn descriptions into plain JSON and back,
so a saved model (:mod:`tinygrad_mnist.checkpoint`) rebuilds without the code that made it::

    build(layers_from_json(json.loads(json.dumps(layers_to_json(describe_model(model))))))

has the same layers, parameter names and shapes as ``model``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Tuple

import numpy as np

from .models import LayerDesc
from .nn.activations import ReLU, Sigmoid, Softmax, Tanh
from .nn.batchnorm import BatchNorm1d, BatchNorm2d
from .nn.conv import Conv2d
from .nn.linear import Linear
from .nn.module import Module, Sequential
from .nn.pool import AvgPool2d, MaxPool2d
from .nn.regularization import Dropout
from .nn.reshape import Flatten, Identity
from .nn.residual import Residual

__all__ = ["ArchitectureError", "describe_model", "layers_to_json", "layers_from_json"]


class ArchitectureError(ValueError):
    """A model or a JSON description that the layer descriptions cannot express."""


def describe_model(model: Module) -> Tuple[LayerDesc, ...]:
    """The :class:`LayerDesc` tuple that :func:`~tinygrad_mnist.models.build` turns back into
    a model with the same layers, parameter names and shapes as ``model``.

    ``model`` is a :class:`Sequential` of the layers ``build`` makes (Linear, Conv2d, pools,
    activations, Flatten, Identity, Dropout, BatchNorm1d/2d, Residual); anything else raises
    :class:`ArchitectureError` naming the layer.
    """
    if not isinstance(model, Sequential):
        raise ArchitectureError(f"describe_model: expected a Sequential, got {type(model).__name__}")
    return tuple(_describe(m, f"layer {i}") for i, m in enumerate(model))


_ACTIVATION_NAMES = {ReLU: "relu", Tanh: "tanh", Sigmoid: "sigmoid", Softmax: "softmax", Identity: "identity"}


def _describe(m: Module, where: str) -> LayerDesc:
    make = LayerDesc.make
    if type(m) is Linear:
        return make("linear", in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
    if type(m) is Conv2d:
        return make("conv2d", in_channels=m.in_channels, out_channels=m.out_channels,
                    kernel_size=list(m.kernel_size), stride=list(m.stride), padding=list(m.padding),
                    bias=m.bias is not None)
    if type(m) is MaxPool2d or type(m) is AvgPool2d:
        return make(type(m).__name__.lower(), kernel_size=list(m.kernel_size), stride=list(m.stride))
    if type(m) in _ACTIVATION_NAMES:
        return make("activation", name=_ACTIVATION_NAMES[type(m)])
    if type(m) is Flatten:
        return make("flatten")
    if type(m) is Dropout:
        return make("dropout", p=m.p)
    if type(m) is BatchNorm1d or type(m) is BatchNorm2d:
        if not m.affine:
            raise ArchitectureError(f"describe_model: {where} ({type(m).__name__}) has affine=False, "
                                  "which the model description cannot express")
        return make(type(m).__name__.lower(), num_features=m.num_features, eps=m.eps, momentum=m.momentum)
    if type(m) is Residual:
        if not isinstance(m.block, Sequential):
            raise ArchitectureError(f"describe_model: {where} (Residual) needs a Sequential block")
        block = tuple(_describe(b, f"{where}.block.{j}") for j, b in enumerate(m.block))
        proj = None if m.projection is None else _describe(m.projection, f"{where}.projection")
        return make("residual", block=block, projection=proj)
    raise ArchitectureError(f"describe_model: {where} is a {type(m).__name__}, which the model description "
                          "cannot express (build the model from LayerDesc kinds: "
                          "linear, conv2d, pools, activations, flatten, dropout, batchnorm, residual)")


def layers_to_json(layers: Iterable[LayerDesc]) -> List[Dict[str, Any]]:
    """LayerDescs as plain JSON values: ``[{"kind": ..., "args": {...}}, ...]`` (nested for residual)."""
    def value(v: Any) -> Any:
        if isinstance(v, LayerDesc):
            return one(v)
        if isinstance(v, (tuple, list)):
            return [value(x) for x in v]
        if isinstance(v, (np.integer, np.floating)):
            return v.item()
        return v

    def one(d: LayerDesc) -> dict:
        return {"kind": d.kind, "args": {k: value(v) for k, v in d.args}}

    return [one(d) for d in layers]


def layers_from_json(data: Any) -> Tuple[LayerDesc, ...]:
    """The inverse of :func:`layers_to_json` (lists of ints become tuples, dicts LayerDescs)."""
    def value(v: Any) -> Any:
        if isinstance(v, dict) and "kind" in v:
            return one(v)
        if isinstance(v, list):
            items = [value(x) for x in v]
            return tuple(items)
        return v

    def one(d: dict) -> LayerDesc:
        if not isinstance(d, dict) or "kind" not in d:
            raise ArchitectureError(f"architecture: expected {{'kind': ..., 'args': {{...}}}}, got {d!r}")
        return LayerDesc.make(d["kind"], **{k: value(v) for k, v in d.get("args", {}).items()})

    if not isinstance(data, list):
        raise ArchitectureError(f"architecture: expected a list of layers, got {type(data).__name__}")
    return tuple(one(d) for d in data)
