"""Layers that only pass values on or reshape them: Identity and Flatten (Jacobian I)."""

from __future__ import annotations

from typing import Dict

import numpy as np

from .module import Module, check_float_input, check_grad_out, require_cache


class Identity(Module):
    """``y = x``; Jacobian ``I``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        x = np.asarray(x)
        return {"input": np.eye(x.size, dtype=x.dtype)}


class Flatten(Module):
    """Reshape ``(n, d1, d2, ...)`` to ``(n, d1·d2·...)`` (``torch.nn.Flatten``); Jacobian ``I``."""

    def __init__(self):
        super().__init__()
        self._shape = None  # cache: the input shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        if x.ndim < 2:
            raise ValueError(f"Flatten: expected an input of shape (n, ...), got {x.shape}")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        shape = require_cache(self, self._shape)
        check_grad_out(self, grad_out, (shape[0], int(np.prod(shape[1:]))))
        return grad_out.reshape(shape)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        x = np.asarray(x)
        return {"input": np.eye(x.size, dtype=x.dtype)}
