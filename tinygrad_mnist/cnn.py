"""Numpy models from framework-neutral layer descriptions (the course CNN and its variants).

A model is described once as a tuple of :class:`~tinygrad_mnist.models.LayerDesc`
(``CourseCNNSpec(...).layers()``, ``mlp_layers(spec)``, ...).  :func:`build` turns the
description into a numpy :class:`~tinygrad_mnist.module.Sequential` here and
``torch_baselines.models.build`` into a ``torch.nn.Sequential`` there: one module per
description, parameters in the same order with the same shapes and names (``weight``
``(out, in[, kh, kw])``, ``bias``), so ``torch_baselines.bridge`` copies weights across by
position and both frameworks compute the same function.

>>> from tinygrad_mnist.models import CourseCNNSpec
>>> model = build_course_cnn(CourseCNNSpec(), seed=0)
>>> model.num_parameters()
21578
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from .activations import activation
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .layers import Flatten, Linear, _resolve_dtype
from .models import CourseCNNSpec, LayerDesc
from .module import Module, Sequential

__all__ = ["build", "build_course_cnn", "KINDS"]

#: The layer kinds :func:`build` understands (see :class:`~tinygrad_mnist.models.LayerDesc`).
KINDS = ("conv2d", "maxpool2d", "avgpool2d", "activation", "flatten", "linear", "dropout",
         "batchnorm1d", "batchnorm2d", "residual")


def _layer(desc: LayerDesc, rng: np.random.Generator, dtype, init: str, init_kwargs: dict) -> Module:
    """One numpy module for one description; parameters drawn from ``rng`` in order."""
    if not isinstance(desc, LayerDesc):
        raise TypeError(f"build: expected a LayerDesc, got {type(desc).__name__}")
    kind, a = desc.kind, desc.kwargs
    try:
        if kind == "conv2d":
            return Conv2d(a["in_channels"], a["out_channels"], a["kernel_size"], stride=a.get("stride", 1),
                          padding=a.get("padding", 0), bias=a.get("bias", True), init=init,
                          init_kwargs=init_kwargs, rng=rng, dtype=dtype)
        if kind == "maxpool2d":
            return MaxPool2d(a["kernel_size"], stride=a.get("stride"))
        if kind == "avgpool2d":
            return AvgPool2d(a["kernel_size"], stride=a.get("stride"))
        if kind == "activation":
            return activation(a["name"])
        if kind == "flatten":
            return Flatten()
        if kind == "linear":
            return Linear(a["in_features"], a["out_features"], bias=a.get("bias", True), init=init,
                          init_kwargs=init_kwargs, rng=rng, dtype=dtype)
        # The layers below live in their own modules; imported here, when first needed.
        if kind == "dropout":
            from .regularization import Dropout

            return Dropout(a.get("p", 0.5), rng=np.random.default_rng(rng.integers(2**63)))
        if kind in ("batchnorm1d", "batchnorm2d"):
            from . import batchnorm

            cls = batchnorm.BatchNorm1d if kind == "batchnorm1d" else batchnorm.BatchNorm2d
            return cls(a["num_features"], eps=a.get("eps", 1e-5), momentum=a.get("momentum", 0.1), dtype=dtype)
        if kind == "residual":
            from .residual import Residual

            block = Sequential(*(_layer(d, rng, dtype, init, init_kwargs) for d in a["block"]))
            proj = a.get("projection")
            return Residual(block, None if proj is None else _layer(proj, rng, dtype, init, init_kwargs))
    except KeyError as err:
        raise ValueError(f"build: layer {kind!r} is missing the argument {err.args[0]!r} ({desc})") from None
    raise ValueError(f"build: unknown layer kind {kind!r}; choose one of {KINDS}")


def build(layers: Iterable[LayerDesc], seed: int = 0, rng: Optional[np.random.Generator] = None,
          dtype=np.float32, init: str = "he_uniform", init_kwargs: Optional[dict] = None,
          needs_input_grad: bool = True) -> Sequential:
    """A numpy ``Sequential`` made from layer descriptions, one module per description.

    Parameters
    ----------
    layers : iterable of LayerDesc
        E.g. ``CourseCNNSpec().layers()``.
    seed : int, default=0
        Seeds the generator when ``rng`` is not given.
    rng : np.random.Generator, optional
        Every weight (and each Dropout layer's own generator) is drawn from it, layer by
        layer in order, so one seed fixes the whole model.
    dtype : float32 or float64, default=float32
    init : str, default="he_uniform"
        Weight initialiser of every ``conv2d`` and ``linear`` (biases start at 0); see
        :mod:`tinygrad_mnist.init`.
    init_kwargs : dict, optional
    needs_input_grad : bool, default=True
        False when the model's input is data whose gradient nobody needs (training): a
        first ``Conv2d`` or ``Linear`` then skips computing ``∂L/∂x`` and
        ``model.backward`` returns None, as torch skips it for an input without
        ``requires_grad``.  Other first layers (e.g. Dropout) are unaffected.

    Returns
    -------
    Sequential
        Children ``"0"``, ``"1"``, ... matching ``torch_baselines.models.build(layers)``.
    """
    dtype = _resolve_dtype(dtype, "build")
    rng = rng if rng is not None else np.random.default_rng(seed)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"build: expected rng to be a np.random.Generator, got {type(rng).__name__}")
    model = Sequential(*(_layer(d, rng, dtype, init, dict(init_kwargs or {})) for d in layers))
    if not needs_input_grad and len(model) and isinstance(model[0], (Conv2d, Linear)):
        model[0].needs_input_grad = False
    return model


def build_course_cnn(spec: Optional[CourseCNNSpec] = None, seed: int = 0, dtype=np.float32,
                     rng: Optional[np.random.Generator] = None, init: str = "he_uniform",
                     needs_input_grad: bool = True) -> Sequential:
    """The course CNN (see :class:`~tinygrad_mnist.models.CourseCNNSpec`) in numpy.

    Default spec, 21,578 parameters, input (N, 1, 28, 28) → logits (N, 10)::

        Conv2d(1, 8, 3, padding=1)   → ReLU → MaxPool2d(2, 2)          80
        Conv2d(8, 16, 3, padding=1)  → ReLU → MaxPool2d(2, 2)       1,168
        Conv2d(16, 32, 3, padding=1) → ReLU → Flatten               4,640
        Linear(32·7·7, 10)                                         15,690
    """
    spec = CourseCNNSpec() if spec is None else spec
    if not isinstance(spec, CourseCNNSpec):
        raise TypeError(f"build_course_cnn: expected a CourseCNNSpec, got {type(spec).__name__}")
    return build(spec.layers(), seed=seed, rng=rng, dtype=dtype, init=init, needs_input_grad=needs_input_grad)
