"""Regularisation: inverted ``Dropout`` and L1/L2 weight penalties.

Dropout zeroes each activation with probability p during training and scales the
survivors by ``1/(1-p)``, so the expected activation is unchanged and evaluation needs
no rescaling (``torch.nn.Dropout``).  The penalties add ``λ₁ Σ|θ| + λ₂ Σθ²`` to the loss
and its gradient; :func:`tinygrad_mnist.train.fit` calls them through its
``regularizer`` argument.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from .module import Module, Parameter, check_float_input, check_grad_out, require_cache, resolve_rng


def dropout_mask(shape: Tuple[int, ...], p: float, rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    """The scaled mask ``m = b / (1 - p)`` with ``b ~ Bernoulli(1 - p)`` independently.

    ``E[m] = 1``, so ``E[x ⊙ m] = x``.  For ``p = 1`` every entry is 0 (torch's convention).
    Draws ``prod(shape)`` uniforms ``u`` from ``rng`` and keeps the entries with ``u ≥ p``.
    """
    keep = rng.random(shape, dtype=dtype) >= p
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    return keep * np.asarray(scale, dtype=dtype)


class DropoutCache(NamedTuple):
    """What ``Dropout.backward`` needs from the forward pass."""

    x_shape: Tuple[int, ...]   # the input shape
    mask: Optional[np.ndarray]  # the scaled mask m, or None when the forward was the identity


class Dropout(Module):
    """Forward:  y = x ⊙ m in training (m = b / (1 - p), b ~ Bernoulli(1 - p)),  y = x in eval
    Jacobian: ∂y/∂x = diag(m)   (eval: I)
    VJP:      ∂L/∂x = g ⊙ m     (eval: g)

    Inverted dropout (``torch.nn.Dropout``): each entry is kept with probability ``1 - p``
    and scaled by ``1/(1-p)``, so ``E[y] = x`` and evaluation needs no rescaling.  A new
    mask is drawn on every training-mode forward call from the layer's own generator, so
    a seed fixes the whole sequence of masks; ``backward`` multiplies by that same mask.
    Derivation: docs/jacobians.md#dropout.

    Parameters
    ----------
    p : float, default=0.5
        Probability of zeroing an entry, in [0, 1].
    rng : np.random.Generator, optional
        Source of the masks; defaults to ``np.random.default_rng(seed)``.
    seed : int, default=0

    Attributes
    ----------
    mask : ndarray or None
        The scaled mask ``m`` of the last forward; None when that forward was the
        identity (eval mode, or ``p = 0``).
    cache : DropoutCache or None
        ``(x_shape, mask)`` of the last ``forward``, overwritten on each call.

    Shapes
    ------
    x : any shape (n, ...) → y : same shape.
    """

    def __init__(self, p: float = 0.5, rng: Optional[np.random.Generator] = None, seed: int = 0) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = resolve_rng(rng, seed, "Dropout")
        self.cache: Optional[DropoutCache] = None

    @property
    def mask(self) -> Optional[np.ndarray]:
        return None if self.cache is None else self.cache.mask

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        if not self.training or self.p == 0.0:
            self.cache = DropoutCache(x.shape, None)
            return x
        mask = dropout_mask(x.shape, self.p, self.rng, x.dtype)
        self.cache = DropoutCache(x.shape, mask)
        return x * mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        shape, mask = require_cache(self, self.cache)
        check_grad_out(self, grad_out, shape)
        return grad_out if mask is None else grad_out * mask

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """``∂y/∂x`` for one example ``x`` (any shape, flattened): the identity in eval mode;
        in training mode ``diag(m)`` with ``m = b/(1-p)`` a mask **drawn by this call** (it
        advances the generator and becomes the cache, so a following ``backward`` of a
        ``(1, *x.shape)`` gradient uses the same mask)."""
        x = np.asarray(x)
        self.forward(x[None])
        mask = self.mask
        if mask is None:
            return {"input": np.eye(x.size, dtype=x.dtype)}
        return {"input": np.diag(mask.ravel())}

    def extra_repr(self) -> str:
        return f"p={self.p}"


# -- weight penalties ---------------------------------------------------------------------
def l1_penalty(theta: np.ndarray) -> float:
    """``Σ|θ|`` (accumulated in float64)."""
    return float(np.abs(theta).sum(dtype=np.float64))


def l1_grad(theta: np.ndarray) -> np.ndarray:
    """``∂Σ|θ|/∂θ = sign(θ)``, taking 0 at θ = 0 (the subgradient torch.sign gives)."""
    return np.sign(theta)


def l2_penalty(theta: np.ndarray) -> float:
    """``Σθ²`` (accumulated in float64)."""
    flat = theta.ravel()
    return float(np.dot(flat.astype(np.float64, copy=False), flat.astype(np.float64, copy=False)))


def l2_grad(theta: np.ndarray) -> np.ndarray:
    """``∂Σθ²/∂θ = 2θ``."""
    return 2.0 * theta


class Penalty:
    """Elastic-net weight penalty ``R(θ) = λ₁ Σ|θ| + λ₂ Σθ²``, summed over the penalised
    parameters; use it as ``fit(..., regularizer=Penalty(l2=1e-4))``.

    ``penalty(params)`` returns ``R`` (added to the batch's mean loss) and
    ``backward(params)`` adds ``∂R/∂θ = λ₁ sign(θ) + 2 λ₂ θ`` into each ``p.grad``
    (``sign(0) = 0``, as ``torch.sign``).  The torch equivalent is
    ``loss + l1 * sum(p.abs().sum()) + l2 * sum((p ** 2).sum())`` over the same tensors.

    Note the factor convention: the L2 gradient is ``2λ₂θ``, so ``Penalty(l2=λ/2)`` equals
    ``SGD(weight_decay=λ)``, whose gradient term is ``λθ``.

    Parameters
    ----------
    l1 : float, default=0
        λ₁ ≥ 0.
    l2 : float, default=0
        λ₂ ≥ 0.
    include_bias : bool, default=False
        By default only weights (parameters with ``ndim ≥ 2``: Linear and Conv2d weights)
        are penalised; biases and BatchNorm's γ, β (1-d) are left alone.  True penalises
        every parameter.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, include_bias: bool = False) -> None:
        for name, lam in (("l1", l1), ("l2", l2)):
            if not np.isfinite(lam) or lam < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be finite and non-negative, got {lam}")
        self.l1, self.l2, self.include_bias = float(l1), float(l2), bool(include_bias)

    def selected(self, params: Union[Module, Iterable[Parameter]]) -> List[Parameter]:
        """The parameters this penalty applies to (``params`` may be a Module)."""
        if isinstance(params, Module):
            params = params.parameters()
        params = list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: expected Parameters, got {type(p).__name__}")
        return [p for p in params if self.include_bias or p.data.ndim >= 2]

    def penalty(self, params: Iterable[Parameter]) -> float:
        """``R(θ) = λ₁ Σ|θ| + λ₂ Σθ²`` over the selected parameters, as a Python float."""
        total = 0.0
        for p in self.selected(params):
            if self.l1:
                total += self.l1 * l1_penalty(p.data)
            if self.l2:
                total += self.l2 * l2_penalty(p.data)
        return total

    __call__ = penalty

    def backward(self, params: Iterable[Parameter]) -> None:
        """Add ``λ₁ sign(θ) + 2λ₂ θ`` to each selected parameter's ``grad``."""
        for p in self.selected(params):
            if self.l1:
                p.grad += self.l1 * l1_grad(p.data)
            if self.l2:
                p.grad += self.l2 * l2_grad(p.data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1}, l2={self.l2}, include_bias={self.include_bias})"


class L1Penalty(Penalty):
    """``R(θ) = λ Σ|θ|``, gradient ``λ sign(θ)``; see :class:`Penalty`."""

    def __init__(self, l1: float, include_bias: bool = False) -> None:
        super().__init__(l1=l1, include_bias=include_bias)


class L2Penalty(Penalty):
    """``R(θ) = λ Σθ²``, gradient ``2λθ``; see :class:`Penalty` (``L2Penalty(λ/2)`` is
    ``SGD(weight_decay=λ)``)."""

    def __init__(self, l2: float, include_bias: bool = False) -> None:
        super().__init__(l2=l2, include_bias=include_bias)
