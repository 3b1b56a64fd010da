r"""Batch normalisation: ``BatchNorm1d`` (n, C) / (n, C, L) and ``BatchNorm2d`` (n, C, H, W).

Each channel c is normalised over the M values it takes in the batch (M = n, n·L or
n·H·W) and then scaled and shifted by learnable γ_c, β_c::

    μ = (1/M) Σ_i x_i,   σ² = (1/M) Σ_i (x_i - μ)²   (biased),   s = 1/√(σ² + ε)
    x̂_i = (x_i - μ) s,   y_i = γ x̂_i + β

In training the batch statistics are used and the running estimates move towards them,
``r ← (1 - momentum) r + momentum · batch value`` with the *unbiased* variance
``σ² M/(M - 1)`` for ``running_var``; in eval mode ``running_mean`` and ``running_var``
replace μ and σ².  All of this is ``torch.nn.BatchNorm1d/2d``.

Backward (training mode), per channel, with ``g_i = ∂L/∂y_i``.  Since
``∂μ/∂x_j = 1/M`` and ``∂s/∂x_j = -s³ (x_j - μ)/M``,

    ∂x̂_i/∂x_j = s (δ_ij - 1/M - x̂_i x̂_j / M)

so the Jacobian of one channel is ``γ s (I - 11ᵀ/M - x̂x̂ᵀ/M)`` (symmetric) and

    ∂L/∂x_j = Σ_i γ g_i ∂x̂_i/∂x_j = γ s (g_j - mean(g) - x̂_j · mean(g ⊙ x̂)),
    ∂L/∂γ = Σ_i g_i x̂_i,        ∂L/∂β = Σ_i g_i.

In eval mode μ, s are constants and ``∂L/∂x = γ s g``.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, cast

import numpy as np
from numpy.typing import DTypeLike

from .module import Module, Parameter, check_finite_input, check_grad_out, require_cache, resolve_dtype


# -- the math, as pure functions --------------------------------------------------------
def channel_axes(ndim: int) -> Tuple[int, ...]:
    """The axes reduced for per-channel statistics: all but axis 1 (the channels)."""
    return (0,) + tuple(range(2, ndim))


def channel_shape(ndim: int, C: int) -> Tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against an input of rank ``ndim``."""
    return (1, C) + (1,) * (ndim - 2)


def batch_stats(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel mean ``μ`` and biased variance ``σ² = mean((x - μ)²)``, each (C,)."""
    axes = channel_axes(x.ndim)
    mean = x.mean(axis=axes)
    centred = x - mean.reshape(channel_shape(x.ndim, x.shape[1]))
    return mean, np.mean(centred * centred, axis=axes)


def batchnorm_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: Optional[np.ndarray],
                      bias: Optional[np.ndarray], eps: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y = γ (x - μ) s + β`` with ``s = 1/√(var + ε)``; returns ``(y, x̂, s)``.

    ``mean``, ``var``, ``weight``, ``bias`` are (C,) vectors; ``s`` is returned (C,).
    """
    shape = channel_shape(x.ndim, x.shape[1])
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    if weight is None:
        y = x_hat
    else:  # weight and bias come together (the layer's affine flag)
        y = x_hat * weight.reshape(shape) + cast(np.ndarray, bias).reshape(shape)
    return y, x_hat, inv_std


def batchnorm_backward(grad_out: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray,
                       weight: Optional[np.ndarray],
                       batch_statistics: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vector-Jacobian products of batch normalisation for ``g = ∂L/∂y``.

    With batch statistics (training): ``∂L/∂x = γ s (g - mean(g) - x̂ mean(g x̂))``, the
    means taken per channel; with fixed (running) statistics: ``∂L/∂x = γ s g``.
    In both cases ``∂L/∂γ = Σ g x̂`` and ``∂L/∂β = Σ g`` per channel.
    Returns ``(∂L/∂x, ∂L/∂γ, ∂L/∂β)``.
    """
    axes, shape = channel_axes(grad_out.ndim), channel_shape(grad_out.ndim, grad_out.shape[1])
    grad_beta = grad_out.sum(axis=axes)
    grad_gamma = (grad_out * x_hat).sum(axis=axes)
    scale = inv_std if weight is None else weight * inv_std
    if not batch_statistics:
        return grad_out * scale.reshape(shape), grad_gamma, grad_beta
    M = grad_out.size // grad_out.shape[1]
    mean_g, mean_gx = grad_beta / M, grad_gamma / M
    grad_x = (grad_out - mean_g.reshape(shape) - x_hat * mean_gx.reshape(shape)) * scale.reshape(shape)
    return grad_x, grad_gamma, grad_beta


def update_running(running: np.ndarray, value: np.ndarray, momentum: float) -> None:
    """``r ← (1 - momentum) r + momentum · value``, in place."""
    running *= 1.0 - momentum
    running += momentum * value


class BatchNormCache(NamedTuple):
    """What ``BatchNorm1d/2d.backward`` needs from the forward pass."""

    x_hat: np.ndarray        # x̂ = (x - μ) s, shaped like the input
    inv_std: np.ndarray      # s = 1/√(σ² + ε) per channel, (C,)
    batch_statistics: bool   # True in training (μ, s depend on x), False in eval


class _BatchNorm(Module):
    """Shared implementation; subclasses fix the accepted input ranks."""

    _ranks: Tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        if int(num_features) != num_features or int(num_features) < 1:
            raise ValueError(f"{name}: num_features must be a positive integer, got {num_features}")
        if not eps > 0:
            raise ValueError(f"{name}: eps must be positive, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must lie in [0, 1] or be None, got {momentum}")
        dtype = resolve_dtype(dtype, name)
        self.num_features, self.eps, self.affine = int(num_features), float(eps), bool(affine)
        self.momentum = None if momentum is None else float(momentum)
        C = self.num_features
        self.weight = Parameter(np.ones(C, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(C, dtype=dtype)) if affine else None
        self.running_mean = np.zeros(C, dtype=dtype)
        self.running_var = np.ones(C, dtype=dtype)
        self.num_batches_tracked = 0
        self.cache: Optional[BatchNormCache] = None

    def _buffer_names(self) -> Tuple[str, ...]:
        return ("running_mean", "running_var")

    def _check_input(self, x: np.ndarray, what: str = "") -> None:
        name = type(self).__name__ + what
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: expected a numpy ndarray, got {type(x).__name__}")
        if x.dtype != self.running_mean.dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} does not match the layer's dtype "
                            f"{self.running_mean.dtype}; convert the input or call "
                            f"layer.astype({str(x.dtype)!r})")
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input of shape {self._layout.format(C=self.num_features)}, "
                             f"got {x.shape}")
        check_finite_input(name, x)

    def _affine(self) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        if self.weight is None or self.bias is None:  # not self.affine
            return None, None
        return self.weight.data, self.bias.data

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check_input(x)
        weight, bias = self._affine()
        if not self.training:
            y, x_hat, inv_std = batchnorm_forward(x, self.running_mean, self.running_var, weight, bias, self.eps)
            self.cache = BatchNormCache(x_hat, inv_std, False)
            return y
        M = x.size // x.shape[1]
        if M < 2:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel in "
                             f"training mode, got input of shape {x.shape}")
        mean, var = batch_stats(x)
        y, x_hat, inv_std = batchnorm_forward(x, mean, var, weight, bias, self.eps)
        self.num_batches_tracked += 1
        momentum = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        update_running(self.running_mean, mean, momentum)
        update_running(self.running_var, var * (M / (M - 1)), momentum)
        self.cache = BatchNormCache(x_hat, inv_std, True)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_hat, inv_std, batch_statistics = require_cache(self, self.cache)
        check_grad_out(self, grad_out, x_hat.shape)
        weight = None if self.weight is None else self.weight.data  # None unless affine
        grad_x, grad_gamma, grad_beta = batchnorm_backward(grad_out, x_hat, inv_std, weight, batch_statistics)
        if self.weight is not None and self.bias is not None:  # self.affine
            self.weight.accumulate(grad_gamma)
            self.bias.accumulate(grad_beta)
        return grad_x

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Explicit Jacobians for one example ``x`` of shape (C, ...) (flattened row-major).

        - eval mode: ``∂y/∂x = diag(γ_c s_c)`` with the running statistics;
        - training mode: the example normalised with its own statistics (a batch of one),
          block ``γ s (I - 11ᵀ/M - x̂x̂ᵀ/M)`` per channel, M the values per channel;
          needs M ≥ 2, so it is not defined for a ``BatchNorm1d`` example of shape (C,).
          (In a real batch the examples are coupled; this is not that batch's block.)
        - ``weight``: ``∂y_i/∂γ_c = x̂_i [i in channel c]``, shape (size, C);
        - ``bias``:   ``∂y_i/∂β_c = [i in channel c]``, shape (size, C).

        The running statistics are not updated.
        """
        x = np.asarray(x)
        self._check_input(x[None], ".jacobian")
        C, M = x.shape[0], x.size // x.shape[0]
        xb = x[None]
        if self.training:
            if M < 2:
                raise ValueError(f"{type(self).__name__}.jacobian: training mode needs more than 1 value "
                                 f"per channel, got one example of shape {x.shape}; use eval mode")
            mean, var = batch_stats(xb)
        else:
            mean, var = self.running_mean, self.running_var
        _, x_hat, inv_std = batchnorm_forward(xb, mean, var, None, None, self.eps)
        gamma = np.ones(C, dtype=x.dtype) if self.weight is None else self.weight.data  # None unless affine
        x_hat = x_hat.reshape(C, M)
        jac_x = np.zeros((C * M, C * M), dtype=x.dtype)
        member = np.zeros((C * M, C), dtype=x.dtype)
        for c in range(C):
            sl = slice(c * M, (c + 1) * M)
            block = np.eye(M, dtype=x.dtype)
            if self.training:
                block = block - 1.0 / M - np.outer(x_hat[c], x_hat[c]) / M
            jac_x[sl, sl] = gamma[c] * inv_std[c] * block
            member[sl, c] = 1
        jac = {"input": jac_x}
        if self.affine:
            jac["weight"] = member * x_hat.reshape(-1, 1)
            jac["bias"] = member
        return jac

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Forward:  y = γ x̂ + β,  x̂ = (x - μ) s,  s = 1/√(σ² + ε), per channel over its M batch values
    Jacobian: ∂y/∂x = γ s (I - 11ᵀ/M - x̂x̂ᵀ/M) per channel (eval: γ s I),  ∂y/∂γ = x̂,  ∂y/∂β = 1
    VJP:      ∂L/∂x = γ s (g - mean(g) - x̂ mean(g ⊙ x̂)) (eval: γ s g),  ∂L/∂γ = Σ g x̂,  ∂L/∂β = Σ g

    Batch normalisation over (n, C) or (n, C, L) inputs (``torch.nn.BatchNorm1d``).
    Derivation: docs/jacobians.md#batchnorm.

    Parameters
    ----------
    num_features : int
        C, the number of features (channels).
    eps : float, default=1e-5
        Added to the variance before the square root.
    momentum : float or None, default=0.1
        Weight of the new batch statistic in the running estimates; None uses the
        cumulative average (``1 / num_batches_tracked``), as torch.
    affine : bool, default=True
        Learnable ``weight`` (γ, ones) and ``bias`` (β, zeros) of shape (C,).
    dtype : float32 or float64, default=float32

    Attributes
    ----------
    running_mean : ndarray of shape (C,), starts at 0
    running_var : ndarray of shape (C,), starts at 1 (unbiased estimates)
    num_batches_tracked : int
    cache : BatchNormCache or None
        ``(x_hat, inv_std, batch_statistics)`` of the last ``forward``, overwritten on each call.

    Both running arrays are buffers: they are in ``state_dict()`` under torch's names and
    follow ``astype``.  See the module docstring for the formulas.
    """

    _ranks = (2, 3)
    _layout = "(n, {C}) or (n, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Forward:  y = γ x̂ + β,  x̂ = (x - μ) s,  s = 1/√(σ² + ε), per channel over its M = n·H·W values
    Jacobian: ∂y/∂x = γ s (I - 11ᵀ/M - x̂x̂ᵀ/M) per channel (eval: γ s I),  ∂y/∂γ = x̂,  ∂y/∂β = 1
    VJP:      ∂L/∂x = γ s (g - mean(g) - x̂ mean(g ⊙ x̂)) (eval: γ s g),  ∂L/∂γ = Σ g x̂,  ∂L/∂β = Σ g

    Batch normalisation over (n, C, H, W) inputs (``torch.nn.BatchNorm2d``).
    Derivation: docs/jacobians.md#batchnorm.  Same parameters and attributes as
    :class:`BatchNorm1d`."""

    _ranks = (4,)
    _layout = "(n, {C}, H, W)"
