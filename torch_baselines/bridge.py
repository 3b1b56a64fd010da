"""Copy weights between a numpy model and its torch twin, exactly, in either direction.

Models built from the same description (:func:`torch_baselines.models.build` and
``tinygrad_mnist.models.build`` / ``tinygrad_mnist.models.build_mlp``) hold the same
parameters in the same order with the same shapes, so the bridge pairs them **by
position** and checks each pair: the role (the last part of the name: ``weight``,
``bias``, ``running_mean``, ``running_var``), the shape and the dtype must agree, or a
``ValueError``/``TypeError`` names the first pair that does not.  Parameters come first,
then the buffers (BatchNorm running statistics; torch's ``num_batches_tracked`` counter
has no numpy counterpart and is left alone).

Why no transpose is needed
--------------------------
- ``Linear``: both sides store ``weight`` as ``(out_features, in_features)`` and compute
  ``y = x Wᵀ + b``.  A layer stored as ``(in, out)`` computing ``y = x W`` (the layout of
  many course notebooks and of Keras' ``Dense``) would need ``W.T`` here.
- ``Conv2d``: both sides store ``(out_channels, in_channels, kh, kw)`` and compute the
  same cross-correlation (no kernel flip).  A channels-last kernel ``(kh, kw, in, out)``
  (Keras, TensorFlow) would need ``permute(3, 2, 0, 1)``; a true convolution would
  need the kernel flipped on both spatial axes.
- ``Flatten``: both flatten ``(n, C, H, W)`` in C order, so the first ``Linear`` after a
  convolution sees features in the same order.  A channels-last engine would have to
  permute that layer's input columns.

The copy is bit-exact: values are copied, never recomputed, and a dtype mismatch is an
error instead of a silent rounding (call ``model.double()`` / ``model.astype("float64")``
first).
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple, TypeVar

import numpy as np
import torch
from torch import nn

from tinygrad_mnist.nn.module import Module, Parameter

__all__ = ["Pair", "pair_parameters", "numpy_to_torch", "torch_to_numpy"]

_TORCH_ONLY_BUFFERS = ("num_batches_tracked",)
_NUMPY_DTYPE = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}


TorchModuleT = TypeVar("TorchModuleT", bound=nn.Module)

class Pair(NamedTuple):
    """One parameter or buffer on both sides.

    ``numpy_get()`` returns the numpy array (a parameter's ``data`` or a buffer);
    ``numpy_set(value)`` writes into it in place; ``torch_tensor`` is the torch parameter
    or buffer; ``numpy_param`` is the numpy ``Parameter`` (``None`` for a buffer), whose
    ``grad`` the tests compare with ``torch_tensor.grad``.
    """

    numpy_name: str
    torch_name: str
    kind: str  # "parameter" or "buffer"
    numpy_param: Optional[Parameter]
    numpy_owner: Optional[Module]
    torch_tensor: torch.Tensor

    def numpy_get(self) -> np.ndarray:
        if self.numpy_param is not None:
            return self.numpy_param.data
        return getattr(self.numpy_owner, self.numpy_name.rpartition(".")[2])

    def numpy_set(self, value: np.ndarray) -> None:
        self.numpy_get()[...] = value


def _numpy_entries(model: Module) -> List[Tuple[str, str, Optional[Parameter], Optional[Module]]]:
    entries: List[Tuple[str, str, Optional[Parameter], Optional[Module]]] = [
        (name, "parameter", p, None) for name, p in model.named_parameters()]
    for mname, m in model.named_modules():
        for b in m._buffer_names():
            entries.append((f"{mname}.{b}" if mname else b, "buffer", None, m))
    return entries


def _torch_entries(model: nn.Module) -> List[Tuple[str, str, torch.Tensor]]:
    entries: List[Tuple[str, str, torch.Tensor]] = [(name, "parameter", t) for name, t in model.named_parameters()]
    entries += [(name, "buffer", t) for name, t in model.named_buffers()
                if name.rpartition(".")[2] not in _TORCH_ONLY_BUFFERS]
    return entries


def pair_parameters(numpy_model: Module, torch_model: nn.Module) -> List[Pair]:
    """Pair every parameter and buffer of the two models by position, checking each pair.

    Raises
    ------
    TypeError
        When the arguments are not a numpy ``Module`` and a ``torch.nn.Module``, or a
        pair's dtypes differ.
    ValueError
        When the counts differ, or a pair's roles or shapes differ; the message names
        the position, both names and both shapes.
    """
    if not isinstance(numpy_model, Module):
        raise TypeError(f"bridge: expected a tinygrad_mnist Module first, got {type(numpy_model).__name__}")
    if not isinstance(torch_model, nn.Module):
        raise TypeError(f"bridge: expected a torch.nn.Module second, got {type(torch_model).__name__}")
    np_entries, t_entries = _numpy_entries(numpy_model), _torch_entries(torch_model)
    for kind in ("parameter", "buffer"):
        a = [e[0] for e in np_entries if e[1] == kind]
        b = [e[0] for e in t_entries if e[1] == kind]
        if len(a) != len(b):
            raise ValueError(f"bridge: the numpy model has {len(a)} {kind}s {a}, the torch model "
                             f"{len(b)} {b}; were they built from the same description?")
    pairs = []
    for i, ((np_name, kind, param, owner), (t_name, _, tensor)) in enumerate(zip(np_entries, t_entries, strict=True)):
        pair = Pair(np_name, t_name, kind, param, owner, tensor)
        array = pair.numpy_get()
        np_role, t_role = np_name.rpartition(".")[2], t_name.rpartition(".")[2]
        where = f"bridge: {kind} #{i}: numpy {np_name!r} {tuple(array.shape)} vs torch {t_name!r} {tuple(tensor.shape)}"
        if np_role != t_role:
            raise ValueError(f"{where}: roles differ ({np_role!r} vs {t_role!r})")
        if tuple(array.shape) != tuple(tensor.shape):
            raise ValueError(f"{where}: shapes differ")
        if _NUMPY_DTYPE.get(tensor.dtype) != array.dtype:
            raise TypeError(f"{where}: dtypes differ ({array.dtype} vs {tensor.dtype}); convert one model "
                            "first (numpy: model.astype(...), torch: model.double() / model.float())")
        pairs.append(pair)
    return pairs


def numpy_to_torch(numpy_model: Module, torch_model: TorchModuleT) -> TorchModuleT:
    """Overwrite the torch model's parameters and buffers with the numpy model's; returns it.

    Works on any device (the values travel through the CPU); see :func:`pair_parameters`
    for the checks.
    """
    pairs = pair_parameters(numpy_model, torch_model)
    with torch.no_grad():
        for pair in pairs:
            pair.torch_tensor.copy_(torch.from_numpy(np.ascontiguousarray(pair.numpy_get())))
    return torch_model


def torch_to_numpy(torch_model: nn.Module, numpy_model: Module) -> Module:
    """Overwrite the numpy model's parameters and buffers with the torch model's, in place
    (the numpy arrays keep their identity, so an optimiser holding them stays valid);
    returns the numpy model."""
    pairs = pair_parameters(numpy_model, torch_model)
    for pair in pairs:
        pair.numpy_set(pair.torch_tensor.detach().cpu().numpy())
    return numpy_model
