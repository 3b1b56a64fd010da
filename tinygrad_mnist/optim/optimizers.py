"""Optimisers with PyTorch's update rules and names: SGD, Adam, AdamW, RMSprop, Adagrad.

An optimiser holds a list of :class:`~tinygrad_mnist.nn.module.Parameter` and updates
``p.data`` in place from ``p.grad`` on ``step()``; ``zero_grad()`` clears the gradients.
Each rule is a small function ``*_direction`` returning the direction ``d`` of
``θ ← θ - lr·d``, written in its paper's lines (the formula in the docstring); the
classes only add weight decay and the learning rate, which a schedule
(:mod:`tinygrad_mnist.optim.schedules`) may change between steps through ``optimizer.lr``.
Adam, RMSprop and Adagrad compute their direction with the in-place twins of
:mod:`.in_place` (the same lines with one reused work array; their measured gain is in
that module).  ``tests/test_optim.py`` holds each twin to its paper form and every
optimiser step by step to ``torch.optim``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Tuple

import numpy as np

from ..nn.module import Parameter
from .in_place import adagrad_direction_in_place, adam_direction_in_place, rmsprop_direction_in_place
from .optimizer import Optimizer, check_range


def sgd_direction(grad: np.ndarray, data: np.ndarray, state: dict, momentum: float,
                  dampening: float, nesterov: bool, weight_decay: float) -> np.ndarray:
    """The step direction d of ``θ ← θ - lr·d`` (torch.optim.SGD):

    ``g = ∇ + λθ``; with momentum μ: ``b ← μ b + (1 - dampening) g`` (``b = g`` on the
    first step), ``d = g + μ b`` (Nesterov) or ``d = b``; without momentum ``d = g``.
    """
    g = grad + weight_decay * data if weight_decay else grad
    if not momentum:
        return g
    buf = state.get("momentum_buffer")
    if buf is None:
        buf = state["momentum_buffer"] = np.array(g, copy=True)
    else:
        buf *= momentum
        buf += (1.0 - dampening) * g if dampening else g   # in place: no temporary in the common case
    return g + momentum * buf if nesterov else buf


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov and weight decay.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float
    momentum : float, default=0
    dampening : float, default=0
    nesterov : bool, default=False
        Requires ``momentum > 0`` and ``dampening == 0``, as in PyTorch.
    weight_decay : float, default=0
        L2 coefficient λ added to the gradient: ``∇ + λθ``.
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be non-negative and below 1 (in [0, 1)), got {momentum}")
        if not 0 <= weight_decay < math.inf:
            raise ValueError(f"SGD: weight_decay must be non-negative and finite, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)

    def _update(self, p: Parameter, state: dict) -> None:
        d = sgd_direction(p.grad, p.data, state, self.momentum, self.dampening, self.nesterov, self.weight_decay)
        # θ ← θ - lr·d, lr·d into a reused work array rather than a new one each step
        # (with the in-place momentum of sgd_direction: 0.74 vs 1.0 ms per step on the
        # 784-512-512-10 MLP's 670k parameters, docs/performance.md)
        p.data -= np.multiply(d, self.lr, out=self._scratch(p))

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay})")


# -- adaptive optimisers: the update rules as their papers write them ----------------------
def adam_direction(grad: np.ndarray, state: dict, beta1: float, beta2: float, eps: float,
                   amsgrad: bool) -> np.ndarray:
    """The step direction d of ``θ ← θ - lr·d`` for Adam (Kingma & Ba, 2015, Algorithm 1), step t ≥ 1::

        m ← β₁ m + (1 - β₁) g                (m = 0 before step 1)
        v ← β₂ v + (1 - β₂) g²               (v = 0 before step 1)
        m̂ = m / (1 - β₁ᵗ)
        v̂ = v / (1 - β₂ᵗ)                    AMSGrad (Reddi et al., 2018): v̂ from v_max ← max(v_max, v)
        d = m̂ / (√v̂ + ε)

    ``g`` already contains any L2 term; ``state`` holds ``step``, ``exp_avg`` (m),
    ``exp_avg_sq`` (v) and, with AMSGrad, ``max_exp_avg_sq`` (v_max) — torch's names, so
    checkpoints read alike.  torch.optim.Adam computes the same d in another order
    (``m / (1 - β₁ᵗ) / (√v / √(1 - β₂ᵗ) + ε)``); the two agree to rounding (tests/test_optim.py).
    """
    if "step" not in state:
        state.update(step=0, exp_avg=np.zeros_like(grad), exp_avg_sq=np.zeros_like(grad))
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(grad)
    state["step"] += 1
    t = state["step"]
    m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * grad
    v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad * grad
    if amsgrad:
        v = state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return m_hat / (np.sqrt(v_hat) + eps)


def rmsprop_direction(grad: np.ndarray, state: dict, alpha: float, eps: float, momentum: float,
                      centered: bool) -> np.ndarray:
    """The step direction d of ``θ ← θ - lr·d`` for RMSprop (Hinton, 2012; torch.optim.RMSprop)::

        v ← α v + (1 - α) g²                 (v = 0 before step 1)
        s = √v + ε                           centred (Graves, 2013): ḡ ← α ḡ + (1 - α) g, s = √(v - ḡ²) + ε
        d = g / s                            with momentum μ: b ← μ b + g / s (b = 0 before step 1), d = b

    ``v - ḡ²`` is clipped at 0 against rounding, where torch would return NaN.  ``state``
    holds ``step``, ``square_avg`` (v), ``grad_avg`` (ḡ) and ``momentum_buffer`` (b).
    """
    if "step" not in state:
        state.update(step=0, square_avg=np.zeros_like(grad))
        if centered:
            state["grad_avg"] = np.zeros_like(grad)
        if momentum > 0:
            state["momentum_buffer"] = np.zeros_like(grad)
    state["step"] += 1
    v = state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * grad * grad
    if centered:
        g_bar = state["grad_avg"] = alpha * state["grad_avg"] + (1 - alpha) * grad
        s = np.sqrt(np.maximum(v - g_bar * g_bar, 0)) + eps
    else:
        s = np.sqrt(v) + eps
    if momentum > 0:
        b = state["momentum_buffer"] = momentum * state["momentum_buffer"] + grad / s
        return b
    return grad / s


def adagrad_direction(grad: np.ndarray, state: dict, lr_decay: float, eps: float,
                      initial_accumulator_value: float) -> np.ndarray:
    """The step direction d of ``θ ← θ - lr·d`` for Adagrad (Duchi et al., 2011; torch.optim.Adagrad), step t ≥ 1::

        G ← G + g²                           (G = initial_accumulator_value before step 1)
        d = g / (√G + ε) / (1 + (t - 1)·lr_decay)

    ``state`` holds ``step`` and ``sum`` (G).
    """
    if "step" not in state:
        state.update(step=0, sum=np.full_like(grad, initial_accumulator_value))
    state["step"] += 1
    G = state["sum"] = state["sum"] + grad * grad
    return grad / (np.sqrt(G) + eps) / (1 + (state["step"] - 1) * lr_decay)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with PyTorch's update rule, see :func:`adam_direction`.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, default=1e-3
    betas : (float, float), default=(0.9, 0.999)
        Decay rates β₁, β₂ of the first and second moment averages.
    eps : float, default=1e-8
        Added to ``√v̂`` in the denominator.
    weight_decay : float, default=0
        L2 coefficient λ added to the gradient, ``g = ∇ + λθ`` (coupled; see AdamW).
    amsgrad : bool, default=False
        Normalise by the running maximum of ``v`` (Reddi et al., 2018).
    """

    decoupled = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        name = type(self).__name__
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (β₁, β₂), got {betas}")
        check_range(name, beta1=(betas[0], 0.0, 1.0 - 1e-12), beta2=(betas[1], 0.0, 1.0 - 1e-12),
                     eps=(eps, 0.0, math.inf), weight_decay=(weight_decay, 0.0, math.inf))
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps, self.weight_decay, self.amsgrad = float(eps), float(weight_decay), bool(amsgrad)

    def _update(self, p: Parameter, state: dict) -> None:
        g = p.grad
        if self.weight_decay:
            if self.decoupled:
                p.data *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        # adam_direction's lines, computed in place (in_place.py: 6.1 → 3.9 ms per step of the wide MLP)
        d = adam_direction_in_place(g, state, self.betas[0], self.betas[1], self.eps, self.amsgrad,
                                    out=self._scratch(p))
        d *= self.lr
        p.data -= d

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}, amsgrad={self.amsgrad})")


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019; torch.optim.AdamW).

    Before the Adam step, ``θ ← θ (1 - lr·λ)``; the decay never enters m and v.
    Same parameters as :class:`Adam`, with ``weight_decay`` defaulting to 1e-2.
    """

    decoupled = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012) with PyTorch's update rule, see :func:`rmsprop_direction`.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, default=1e-2
    alpha : float, default=0.99
        Decay rate of the squared-gradient average.
    eps : float, default=1e-8
        Added to the root in the denominator.
    weight_decay : float, default=0
        L2 coefficient λ added to the gradient, ``g = ∇ + λθ``.
    momentum : float, default=0
    centered : bool, default=False
        Normalise by an estimate of the gradient's variance instead of its second moment.
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr)
        check_range("RMSprop", alpha=(alpha, 0.0, 1.0), eps=(eps, 0.0, math.inf),
                     weight_decay=(weight_decay, 0.0, math.inf))
        if not 0 <= momentum < 1:
            raise ValueError(f"RMSprop: momentum must be non-negative and below 1 (in [0, 1)), got {momentum}")
        self.alpha, self.eps, self.weight_decay = float(alpha), float(eps), float(weight_decay)
        self.momentum, self.centered = float(momentum), bool(centered)

    def _update(self, p: Parameter, state: dict) -> None:
        g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
        # rmsprop_direction's lines, computed in place (in_place.py: 3.7 → 3.1 ms per step of the wide MLP)
        work = self._scratch(p)
        d = rmsprop_direction_in_place(g, state, self.alpha, self.eps, self.momentum, self.centered, out=work)
        p.data -= np.multiply(d, self.lr, out=work)

    def __repr__(self) -> str:
        return (f"RMSprop(lr={self.lr}, alpha={self.alpha}, eps={self.eps}, weight_decay="
                f"{self.weight_decay}, momentum={self.momentum}, centered={self.centered})")


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011) with PyTorch's update rule, see :func:`adagrad_direction`.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, default=1e-2
    lr_decay : float, default=0
        The step t uses ``lr / (1 + (t - 1)·lr_decay)``.
    weight_decay : float, default=0
        L2 coefficient λ added to the gradient, ``g = ∇ + λθ``.
    initial_accumulator_value : float, default=0
        Starting value of the sum of squared gradients.
    eps : float, default=1e-10
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(params, lr)
        check_range("Adagrad", lr_decay=(lr_decay, 0.0, math.inf), eps=(eps, 0.0, math.inf),
                     weight_decay=(weight_decay, 0.0, math.inf),
                     initial_accumulator_value=(initial_accumulator_value, 0.0, math.inf))
        self.lr_decay, self.weight_decay = float(lr_decay), float(weight_decay)
        self.initial_accumulator_value, self.eps = float(initial_accumulator_value), float(eps)

    def _update(self, p: Parameter, state: dict) -> None:
        g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
        # adagrad_direction's lines, computed in place (in_place.py: 3.5 → 3.1 ms per step of the wide MLP)
        d = adagrad_direction_in_place(g, state, self.lr_decay, self.eps, self.initial_accumulator_value,
                                       out=self._scratch(p))
        d *= self.lr
        p.data -= d

    def __repr__(self) -> str:
        return (f"Adagrad(lr={self.lr}, lr_decay={self.lr_decay}, weight_decay={self.weight_decay}, "
                f"eps={self.eps})")


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def optimizer_by_name(name: str, params: Iterable[Parameter], **kwargs: Any) -> Optimizer:
    """A new optimiser by name (``"sgd"``, and the others registered in ``OPTIMIZERS``)."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer_by_name: unknown optimiser {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[key](params, **kwargs)
