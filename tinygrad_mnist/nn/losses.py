"""Losses: fused SoftmaxCrossEntropy on logits, CrossEntropy on probabilities, MSELoss.

A loss maps a prediction ``(n, C)`` and a target to a scalar.  Targets are either
integer labels of shape ``(n,)`` or one-hot (or any probability) rows of shape
``(n, C)``.  ``reduction="mean"`` divides the summed loss by ``n`` (MSELoss: by ``n·C``,
as ``torch.nn.MSELoss``); ``reduction="sum"`` does not divide.

``forward(pred, target)`` returns the loss as a Python float and caches what
``backward`` needs; ``backward(grad=1.0)`` returns ``∂L/∂pred`` (shape ``(n, C)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, NamedTuple, Optional

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..types import Array
from .conventions import resolve_alias
from .module import Module, check_finite, check_float_input, require_cache

REDUCTIONS = ("mean", "sum")


def one_hot(labels: np.ndarray, num_classes: int, dtype: DTypeLike = np.float32) -> np.ndarray:
    """Rows e_{labels[i]}: labels (n,) ints in [0, num_classes) → (n, num_classes)."""
    labels = np.asarray(labels)
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log s_i = z_i - log Σ_j e^{z_j}, via the max shift (finite for |z| up to 1e308/C)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# -- the caches: what each backward needs from its forward --------------------------------
class SoftmaxCrossEntropyCache(NamedTuple):
    probs: np.ndarray               # ŷ = softmax(z), (n, C)
    target: np.ndarray              # y as rows, (n, C)
    row_sums: Optional[np.ndarray]  # Σ_c y_ic, (n, 1); None for labels (one-hot rows sum to 1)
    scale: float                    # 1/n for "mean", 1 for "sum"


class CrossEntropyCache(NamedTuple):
    clipped: np.ndarray  # max(p, eps), (n, C)
    active: np.ndarray   # p ≥ eps (where the gradient is not cut off), (n, C)
    target: np.ndarray   # y as rows, (n, C)
    scale: float         # 1/n for "mean", 1 for "sum"


class MSELossCache(NamedTuple):
    diff: np.ndarray  # ŷ - y, (n, C)
    scale: float      # 1/(n·C) for "mean", 1 for "sum"


# -- the losses -------------------------------------------------------------------------------
class Loss(Module):
    """Base class: validates targets and applies the reduction; ``cache`` holds the last
    forward's loss-specific NamedTuple."""

    #: Row targets must be probability distributions (cross-entropies); MSE takes any reals.
    probability_targets = True

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.cache: Optional[NamedTuple] = None

    if TYPE_CHECKING:  # declared for the checker only; each loss defines both
        def forward(self, pred: np.ndarray, target: Array) -> float: ...

        def backward(self, grad: float = 1.0) -> np.ndarray: ...

    def _target_matrix(self, pred: np.ndarray, target: Array) -> np.ndarray:
        """Targets as a float matrix like ``pred``: labels become one-hot rows."""
        name = type(self).__name__
        check_float_input(self, pred, ndim=2)
        target = np.asarray(target)
        n, c = pred.shape
        if n == 0:
            raise ValueError(f"{name}: empty batch: prediction of shape {pred.shape} holds no examples")
        if c == 0:
            raise ValueError(f"{name}: prediction of shape {pred.shape} has no classes (C = 0)")
        if target.ndim == 1:
            if target.dtype.kind not in "iu":  # signed or unsigned integers (np.issubdtype, 10× faster)
                raise TypeError(f"{name}: integer labels expected for a 1-d target, got {target.dtype}")
            if target.shape[0] != n:
                raise ValueError(f"{name}: expected {n} labels, got {target.shape[0]}")
            if n and (target.min() < 0 or target.max() >= c):
                raise ValueError(f"{name}: labels must lie in [0, {c}), got range [{target.min()}, {target.max()}]")
            return one_hot(target, c, dtype=pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(f"{name}: expected target of shape {pred.shape} or ({n},), got {target.shape}")
        if target.dtype.kind not in "biuf":
            raise TypeError(f"{name}: targets must be numbers, got dtype {target.dtype}")
        if target.dtype != pred.dtype:
            target = target.astype(pred.dtype)
        check_finite(f"{name} target", target)
        if self.probability_targets:
            sums = target.sum(axis=1)
            tol = 1e-3 if target.dtype == np.float32 else 1e-6
            if target.min() < 0 or np.abs(sums - 1).max() > tol:
                i = int(np.argmax(np.abs(sums - 1) + (target < 0).any(axis=1)))
                raise ValueError(f"{name}: soft targets must be probabilities (rows >= 0 that sum "
                                 f"to one); row {i} sums to {float(sums[i]):.6g} with minimum "
                                 f"{float(target[i].min()):.6g}")
        return target

    def _scale(self, pred: np.ndarray) -> float:
        return 1.0 / pred.shape[0] if self.reduction == "mean" else 1.0

    def jacobian(self, pred: np.ndarray, target: ArrayLike) -> Dict[str, np.ndarray]:
        """∂L/∂pred for one example (pred of shape (C,)), as a (1, C) matrix."""
        pred = np.asarray(pred)
        if pred.ndim != 1:
            raise ValueError(f"{type(self).__name__}.jacobian: expected one example of shape (C,), got {pred.shape}")
        target = np.asarray(target)
        target = target.reshape(1) if target.ndim == 0 else target[None]
        saved = self.cache
        self.forward(pred[None], target)
        grad = self.backward()
        self.cache = saved
        return {"input": grad}

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class SoftmaxCrossEntropy(Loss):
    """Forward:  L = -Σ_i Σ_c y_ic log ŷ_ic (÷ n for mean),  ŷ_i = softmax(z_i)
    Jacobian: ∂L/∂z_i = ŷ_i - y_i (÷ n)      a (1, C) row per example, for rows y_i summing to 1
    VJP:      ∂L/∂z = grad · (ŷ - y) / n     (grad: the scalar upstream gradient, default 1)

    Fused softmax and cross-entropy on logits (``torch.nn.CrossEntropyLoss``); for any
    target rows the gradient is ``ŷ_i Σ_c y_ic - y_i``.  Derivation:
    docs/jacobians.md#cross-entropy.  Cache: ``SoftmaxCrossEntropyCache(probs, target, row_sums, scale)``.

    Notes
    -----
    log ŷ is computed with the log-sum-exp shift, so logits of magnitude 1e4 stay finite
    (tests/test_invariants.py, ``test_losses_and_gradients_stay_finite_for_extreme_logits``).
    """

    def forward(self, logits: np.ndarray, target: Array) -> float:
        y = self._target_matrix(logits, target)
        logp = log_softmax(logits)
        row_sums = None if np.ndim(target) == 1 else y.sum(axis=1, keepdims=True)
        self.cache = SoftmaxCrossEntropyCache(np.exp(logp), y, row_sums, self._scale(logits))
        return float(-(y * logp).sum() * self.cache.scale)

    def backward(self, grad: float = 1.0) -> np.ndarray:
        s, y, row_sums, scale = require_cache(self, self.cache)
        # ŷ_i Σ_c y_ic - y_i; for labels Σ_c y_ic is exactly 1, so ŷ_i - y_i gives the same bits
        # without the row sums (its arithmetic 4.7 → 1.4 µs at batch 64, 12 → 1.8 µs at 256)
        diff = s - y if row_sums is None else s * row_sums - y
        return diff * (scale * grad)


class CrossEntropy(Loss):
    """Forward:  L = -Σ_i Σ_c y_ic log p_ic (÷ n for mean)
    Jacobian: ∂L/∂p_i = -y_i ⊘ p_i (÷ n)     a (1, C) row per example
    VJP:      ∂L/∂p = grad · (-y ⊘ p) / n    (grad: the scalar upstream gradient, default 1)

    Cross-entropy on probabilities, for a network that ends with ``Softmax``.
    Derivation: docs/jacobians.md#cross-entropy.
    Cache: ``CrossEntropyCache(clipped, active, target, scale)``.

    Notes
    -----
    ``p`` is clipped below at ``eps`` so a probability that underflowed to 0 gives a large
    finite loss instead of ``inf``; the gradient is 0 where clipping is active.
    """

    def __init__(self, reduction: str = "mean", eps: float = 1e-12) -> None:
        super().__init__(reduction)
        self.eps = float(eps)

    def forward(self, probs: np.ndarray, target: Array) -> float:
        y = self._target_matrix(probs, target)
        clipped = np.maximum(probs, self.eps)
        self.cache = CrossEntropyCache(clipped, probs >= self.eps, y, self._scale(probs))
        return float(-(y * np.log(clipped)).sum() * self.cache.scale)

    def backward(self, grad: float = 1.0) -> np.ndarray:
        p, active, y, scale = require_cache(self, self.cache)
        return np.where(active, -y / p, 0).astype(p.dtype) * (scale * grad)


class MSELoss(Loss):
    """Forward:  L = Σ_ic (ŷ_ic - y_ic)² (÷ n·C for mean)
    Jacobian: ∂L/∂ŷ_i = 2(ŷ_i - y_i) (÷ n·C)    a (1, C) row per example
    VJP:      ∂L/∂ŷ = grad · 2(ŷ - y) / (n·C)   (grad: the scalar upstream gradient, default 1)

    Mean squared error against one-hot (or real-valued) targets (``torch.nn.MSELoss``).
    Derivation: docs/jacobians.md#mse.  Cache: ``MSELossCache(diff, scale)``.
    """

    probability_targets = False

    def forward(self, pred: np.ndarray, target: Array) -> float:
        y = self._target_matrix(pred, target)
        diff = pred - y
        scale = 1.0 / diff.size if self.reduction == "mean" else 1.0
        self.cache = MSELossCache(diff, scale)
        return float((diff * diff).sum() * scale)

    def backward(self, grad: float = 1.0) -> np.ndarray:
        diff, scale = require_cache(self, self.cache)
        return diff * (2.0 * scale * grad)


#: The losses by their one name.
LOSSES = {
    "cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy_probs": CrossEntropy,
    "mse": MSELoss,
}

#: Old spellings still accepted, each mapped (with a note) to its name in LOSSES.
LOSS_ALIASES = {
    "softmax_cross_entropy": "cross_entropy",
    "ce": "cross_entropy",
}


def loss_name(name: str, warn: bool = True) -> str:
    """The canonical loss name for ``name`` (lower case, ``-`` read as ``_``), an old
    spelling mapped through :data:`LOSS_ALIASES` with a note when ``warn``."""
    return resolve_alias(name.lower().replace("-", "_"), LOSS_ALIASES, "loss", warn)


def loss_by_name(name: str, **kwargs: Any) -> Loss:
    """A new loss by name: "cross_entropy" (fused, on logits), "cross_entropy_probs", "mse"."""
    key = loss_name(name)
    if key not in LOSSES:
        raise ValueError(f"loss_by_name: unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[key](**kwargs)

