"""Optimisers with PyTorch's update rules and names.

An optimiser holds a list of :class:`~tinygrad_mnist.module.Parameter` and updates
``p.data`` in place from ``p.grad`` on ``step()``; ``zero_grad()`` clears the gradients.
"""

from __future__ import annotations

from typing import Dict, Iterable, List

import numpy as np

from .module import Parameter


class Optimizer:
    """Base class: parameter list, learning rate, per-parameter state."""

    def __init__(self, params: Iterable[Parameter], lr: float):
        self.params: List[Parameter] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for p in self.params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: expected Parameters, got {type(p).__name__}")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = float(lr)
        self.state: Dict[int, dict] = {}
        self.step_count = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        self.step_count += 1
        for i, p in enumerate(self.params):
            self._update(p, self.state.setdefault(i, {}))

    def _update(self, p: Parameter, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"


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
        buf += (1.0 - dampening) * g
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

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be non-negative, got {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)

    def _update(self, p: Parameter, state: dict) -> None:
        d = sgd_direction(p.grad, p.data, state, self.momentum, self.dampening,
                          self.nesterov, self.weight_decay)
        p.data -= self.lr * d

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay})")


OPTIMIZERS = {"sgd": SGD}


def optimizer_by_name(name: str, params, **kwargs) -> Optimizer:
    """A new optimiser by name (``"sgd"``, and the others registered in ``OPTIMIZERS``)."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer_by_name: unknown optimiser {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[key](params, **kwargs)
