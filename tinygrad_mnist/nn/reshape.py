"""Layers that only pass values on or reshape them: Identity and Flatten (Jacobian I)."""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from .module import Module, check_float_input, check_grad_out, require_cache


class IdentityCache(NamedTuple):
    """What ``Identity.backward`` checks the upstream gradient against."""

    x_shape: Tuple[int, ...]  # the input (= output) shape


class Identity(Module):
    """Forward:  y = x                                    (``torch.nn.Identity``)
    Jacobian: ∂y/∂x = I
    VJP:      ∂L/∂x = g

    Derivation: docs/jacobians.md#flatten.  Cache: ``IdentityCache(x_shape)``, only to
    check the gradient's shape.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cache: Optional[IdentityCache] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        self.cache = IdentityCache(x.shape)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return check_grad_out(self, grad_out, require_cache(self, self.cache).x_shape)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        x = np.asarray(x)
        return {"input": np.eye(x.size, dtype=x.dtype)}


class FlattenCache(NamedTuple):
    """What ``Flatten.backward`` needs from the forward pass."""

    x_shape: Tuple[int, ...]  # the input shape (n, d1, d2, ...)


class Flatten(Module):
    """Forward:  y = x reshaped (n, d1, d2, ...) → (n, d1·d2·...)   (``torch.nn.Flatten``)
    Jacobian: ∂y/∂x = I                                  (row-major order on both sides)
    VJP:      ∂L/∂x = g reshaped to (n, d1, d2, ...)

    Derivation: docs/jacobians.md#flatten.

    Attributes
    ----------
    cache : FlattenCache or None
        The input shape of the last ``forward``, overwritten on each call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cache: Optional[FlattenCache] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        if x.ndim < 2:
            raise ValueError(f"Flatten: expected an input of shape (n, ...), got {x.shape}")
        self.cache = FlattenCache(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        shape = require_cache(self, self.cache).x_shape
        check_grad_out(self, grad_out, (shape[0], int(np.prod(shape[1:]))))
        return grad_out.reshape(shape)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        x = np.asarray(x)
        return {"input": np.eye(x.size, dtype=x.dtype)}
