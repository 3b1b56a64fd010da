"""Activations: Sigmoid, ReLU, Tanh, Softmax (and Identity), with ``activation(name)``.

Elementwise activations ``y = φ(x)`` have diagonal Jacobians ``diag(φ'(x))``, so their
backward pass is the elementwise product ``∂L/∂x = ∂L/∂y ⊙ φ'(x)``.  Softmax couples
its inputs: ``∂s/∂z = diag(s) - s sᵀ``.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from .reshape import Identity
from .module import Module, check_float_input, check_grad_out, require_cache


# -- the math, as pure functions --------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{-x}).

    For x below about -88 (float32) or -709 (float64) e^{-x} overflows to inf and
    1 / (1 + inf) = 0 is the correctly rounded σ, so that overflow is silenced.  This form
    keeps full relative precision where σ is tiny; ½(1 + tanh(x/2)) would round σ(-20) to
    0 in float32 and give σ'(x) = σ(1 - σ) a relative error of 1e-4 already at x = -8.
    """
    with np.errstate(over="ignore"):
        z = np.exp(-x)
    z += 1.0
    return np.reciprocal(z, out=z)


def sigmoid_grad_from_output(y: np.ndarray) -> np.ndarray:
    """σ'(x) = σ(x)(1 - σ(x)) = y(1 - y), in [0, 1/4]."""
    return y * (1.0 - y)


def tanh_grad_from_output(y: np.ndarray) -> np.ndarray:
    """tanh'(x) = 1 - tanh²(x) = 1 - y², in [0, 1]."""
    return 1.0 - y * y


def relu_grad(x: np.ndarray) -> np.ndarray:
    """ReLU'(x) = 1 if x > 0 else 0 (0 at x = 0, PyTorch's convention)."""
    return (x > 0).astype(x.dtype)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """s_i = e^{z_i - max z} / Σ_j e^{z_j - max z}: shifting by the max avoids overflow."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(s: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
    """gᵀ(diag(s) - s sᵀ) row by row: ``s ⊙ (g - Σ_j g_j s_j)``, shapes (n, C)."""
    return s * (grad_out - (grad_out * s).sum(axis=-1, keepdims=True))


def softmax_jacobian(s: np.ndarray) -> np.ndarray:
    """∂s/∂z = diag(s) - s sᵀ for one example s of shape (C,); returns (C, C)."""
    return np.diag(s) - np.outer(s, s)


class _Elementwise(Module):
    """Base of elementwise activations: the cache holds what the derivative needs."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def _derivative(self, cache: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        cache = require_cache(self, self._cache)
        check_grad_out(self, grad_out, cache.shape)
        return grad_out * self._derivative(cache)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """∂y/∂x = diag(φ'(x)) for one example, flattened: shape (x.size, x.size)."""
        x = np.asarray(x)
        saved = self._cache
        self.forward(x[None])
        d = self._derivative(self._cache).ravel()
        self._cache = saved
        return {"input": np.diag(d)}


class Sigmoid(_Elementwise):
    """y = σ(x) elementwise; cache: the output y (σ' = y(1 - y))."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        self._cache = sigmoid(x)
        return self._cache

    def _derivative(self, y: np.ndarray) -> np.ndarray:
        return sigmoid_grad_from_output(y)


class Tanh(_Elementwise):
    """y = tanh(x) elementwise; cache: the output y (tanh' = 1 - y²)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        self._cache = np.tanh(x)
        return self._cache

    def _derivative(self, y: np.ndarray) -> np.ndarray:
        return tanh_grad_from_output(y)


class ReLU(_Elementwise):
    """y = max(x, 0) elementwise; cache: the input x (ReLU'(x) = [x > 0])."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        self._cache = x
        return np.maximum(x, 0)

    def _derivative(self, x: np.ndarray) -> np.ndarray:
        return relu_grad(x)


class Softmax(Module):
    """s = softmax(z) along the last axis (``torch.nn.Softmax(dim=-1)``); cache: s.

    Jacobian for one example: ``∂s/∂z = diag(s) - s sᵀ`` (C, C), symmetric, rows sum to 0.
    """

    def __init__(self):
        super().__init__()
        self._s = None

    def forward(self, z: np.ndarray) -> np.ndarray:
        check_float_input(self, z)
        self._s = softmax(z)
        return self._s

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        s = require_cache(self, self._s)
        check_grad_out(self, grad_out, s.shape)
        return softmax_backward(s, grad_out)

    def jacobian(self, z: np.ndarray) -> Dict[str, np.ndarray]:
        z = np.asarray(z)
        if z.ndim != 1:
            raise ValueError(f"Softmax.jacobian: expected one example of shape (C,), got {z.shape}")
        return {"input": softmax_jacobian(softmax(z))}


ACTIVATIONS = {
    "relu": ReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softmax": Softmax,
    "identity": Identity,
    "linear": Identity,
    "none": Identity,
}


def activation(name: str) -> Module:
    """A new activation module by name: "relu", "tanh", "sigmoid", "softmax", "identity"."""
    if not isinstance(name, str):
        raise TypeError(f"activation: expected a name, got {type(name).__name__}")
    key = name.lower()
    if key not in ACTIVATIONS:
        raise ValueError(
            f"activation: unknown activation {name!r}; choose one of "
            f"{sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]()
