"""Activations: Sigmoid, ReLU, Tanh, Softmax (and Identity), with ``activation_by_name(name)``.

Elementwise activations ``y = φ(x)`` have diagonal Jacobians ``diag(φ'(x))``, so their
backward pass is the elementwise product ``∂L/∂x = ∂L/∂y ⊙ φ'(x)``.  Softmax couples
its inputs: ``∂s/∂z = diag(s) - s sᵀ``.
"""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional

import numpy as np

from .conventions import resolve_alias
from .module import Module, check_float_input, check_grad_out, require_cache
from .reshape import Identity


# -- the math, as pure functions --------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{-x}), elementwise.

    Notes
    -----
    For x below about -88 (float32) or -709 (float64) e^{-x} overflows to inf and
    1 / (1 + inf) = 0 is the correctly rounded σ, so that overflow is silenced.  This form
    keeps full relative precision where σ is tiny; ½(1 + tanh(x/2)) would round σ(-20) to
    0 in float32 and give σ'(x) = σ(1 - σ) a relative error of 1e-4 already at x = -8
    (tests/test_invariants.py, ``test_sigmoid_keeps_relative_precision_where_it_is_tiny``).
    Speed: unmeasured against the tanh form.
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


def times_derivative(grad_out: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``g ⊙ d`` for a freshly computed derivative ``d``, written into ``d``.

    The same numbers as the plain ``grad_out * d``, with one array fewer.  When ``g`` is
    laid out differently from ``d`` (the NCHW gradient of ``Flatten`` meeting the
    batch-last cache of the ReLU before it), ``g`` is first copied into ``d``'s layout:
    a ufunc over mixed layouts runs several times slower than a copy.  Measured
    (``benchmarks``, one thread): that ReLU's backward 0.40 → 0.10 ms at batch 64 and
    3.1 → 0.64 ms at batch 256; with equal layouts 5–10% faster.
    """
    if grad_out.dtype != d.dtype:  # mixed precision: keep numpy's promotion, as the plain form
        return grad_out * d
    if grad_out.strides != d.strides:
        g = np.empty_like(d)
        g[...] = grad_out
        grad_out = g
    d *= grad_out
    return d


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


# -- the caches: what each backward needs from its forward --------------------------------
class SigmoidCache(NamedTuple):
    y: np.ndarray  # the output σ(x): σ'(x) = y(1 - y)


class TanhCache(NamedTuple):
    y: np.ndarray  # the output tanh(x): tanh'(x) = 1 - y²


class ReLUCache(NamedTuple):
    x: np.ndarray  # the input: ReLU'(x) = [x > 0]


class SoftmaxCache(NamedTuple):
    s: np.ndarray  # the output softmax(z), (n, C)


# -- the layers -----------------------------------------------------------------------------
class _Elementwise(Module):
    """Shared bookkeeping of the elementwise activations ``y = φ(x)``: the cache attribute,
    the checks before ``backward`` and the diagonal Jacobian.  Each subclass writes its
    own ``forward`` and two-line ``backward``."""

    def __init__(self) -> None:
        super().__init__()
        self.cache: Optional[NamedTuple] = None  # one array, shaped like the output

    def _checked_cache(self, grad_out: np.ndarray) -> Any:
        """The last forward's cache (the subclass's own NamedTuple), after checking ``grad_out`` against its shape."""
        cache = require_cache(self, self.cache)
        check_grad_out(self, grad_out, cache[0].shape)
        return cache

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """∂y/∂x = diag(φ'(x)) for one example, flattened: shape (x.size, x.size).

        φ'(x) is read off ``backward`` with g = 1 (``1ᵀ diag(d) = d``), so the Jacobian
        and the backward pass use one derivative.  The cache is left as it was.
        """
        x = np.asarray(x)
        saved = self.cache
        y = self.forward(x[None])
        d = self.backward(np.ones_like(y)).ravel()
        self.cache = saved
        return {"input": np.diag(d)}


class Sigmoid(_Elementwise):
    """Forward:  y = σ(x) = 1 / (1 + e^{-x}), elementwise       (``torch.nn.Sigmoid``)
    Jacobian: ∂y/∂x = diag(σ'(x)),  σ'(x) = y(1 - y) ∈ [0, 1/4]
    VJP:      ∂L/∂x = g ⊙ y(1 - y)

    Derivation: docs/jacobians.md#elementwise.  Cache: ``SigmoidCache(y)``, the output,
    since σ' is a function of it.  The float32 overflow handling is in :func:`sigmoid`.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        self.cache = SigmoidCache(sigmoid(x))
        return self.cache.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._checked_cache(grad_out).y
        return times_derivative(grad_out, sigmoid_grad_from_output(y))  # g ⊙ y(1 - y)


class Tanh(_Elementwise):
    """Forward:  y = tanh(x), elementwise                        (``torch.nn.Tanh``)
    Jacobian: ∂y/∂x = diag(tanh'(x)),  tanh'(x) = 1 - y² ∈ [0, 1]
    VJP:      ∂L/∂x = g ⊙ (1 - y²)

    Derivation: docs/jacobians.md#elementwise.  Cache: ``TanhCache(y)``, the output.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        self.cache = TanhCache(np.tanh(x))
        return self.cache.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._checked_cache(grad_out).y
        return times_derivative(grad_out, tanh_grad_from_output(y))  # g ⊙ (1 - y²)


class ReLU(_Elementwise):
    """Forward:  y = max(x, 0), elementwise                      (``torch.nn.ReLU``)
    Jacobian: ∂y/∂x = diag([x > 0])                   (0 at x = 0, PyTorch's convention)
    VJP:      ∂L/∂x = g ⊙ [x > 0]

    Derivation: docs/jacobians.md#elementwise.  Cache: ``ReLUCache(x)``, the input.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        self.cache = ReLUCache(x)
        return np.maximum(x, 0)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._checked_cache(grad_out).x
        return times_derivative(grad_out, relu_grad(x))  # g ⊙ [x > 0]


class Softmax(Module):
    """Forward:  s = softmax(z) = e^z / Σ_j e^{z_j}, each row     (``torch.nn.Softmax(dim=-1)``)
    Jacobian: ∂s/∂z = diag(s) - s sᵀ          (C, C) per example; symmetric, rows sum to 0
    VJP:      ∂L/∂z = s ⊙ (g - Σ_j g_j s_j)

    Derivation: docs/jacobians.md#softmax.  Cache: ``SoftmaxCache(s)``, the output.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cache: Optional[SoftmaxCache] = None

    def forward(self, z: np.ndarray) -> np.ndarray:
        check_float_input(self, z)
        self.cache = SoftmaxCache(softmax(z))
        return self.cache.s

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        s = require_cache(self, self.cache).s
        check_grad_out(self, grad_out, s.shape)
        return softmax_backward(s, grad_out)

    def jacobian(self, z: np.ndarray) -> Dict[str, np.ndarray]:
        z = np.asarray(z)
        if z.ndim != 1:
            raise ValueError(f"Softmax.jacobian: expected one example of shape (C,), got {z.shape}")
        return {"input": softmax_jacobian(softmax(z))}


#: The activations by their one name.
ACTIVATIONS = {
    "relu": ReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softmax": Softmax,
    "identity": Identity,
}

#: Old spellings still accepted, each mapped (with a note) to its name in ACTIVATIONS.
ACTIVATION_ALIASES = {
    "linear": "identity",
    "none": "identity",
}


def activation_name(name: str, warn: bool = True) -> str:
    """The canonical (lower-case) activation name for ``name``, an old spelling mapped
    through :data:`ACTIVATION_ALIASES` with a note when ``warn``; unknown names unchanged."""
    return resolve_alias(name.lower(), ACTIVATION_ALIASES, "activation", warn)


def activation_by_name(name: str) -> Module:
    """A new activation module by name: "relu", "tanh", "sigmoid", "softmax", "identity"
    (as ``loss_by_name``, ``optimizer_by_name`` and ``schedule_by_name``)."""
    if not isinstance(name, str):
        raise TypeError(f"activation_by_name: expected a name, got {type(name).__name__}")
    key = activation_name(name)
    if key not in ACTIVATIONS:
        raise ValueError(
            f"activation_by_name: unknown activation {name!r}; choose one of "
            f"{sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]()
