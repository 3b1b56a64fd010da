"""Learning-rate schedules: StepLR, CosineAnnealingLR, LinearWarmup (torch's values).

A schedule owns an optimiser and sets ``optimizer.lr`` from the epoch counter
``last_epoch``: construction sets the epoch-0 rate, each ``step()`` (called once per
epoch by :func:`tinygrad_mnist.train.fit`) advances one epoch.  Each schedule is a
closed-form function of the epoch, ``lr_at(epoch)``, so any epoch can be read without
stepping; ``tests/test_schedules.py`` checks the values against
``torch.optim.lr_scheduler`` (which computes the same numbers recursively, so the two
agree to rounding, ~1e-15 relative).

>>> from tinygrad_mnist import Linear
>>> from tinygrad_mnist.optim import SGD
>>> opt = SGD(Linear(2, 2).parameters(), lr=0.1)
>>> sched = CosineAnnealingLR(opt, T_max=10)
>>> for epoch in range(10):
...     sched.step()  # after training one epoch at opt.lr
>>> round(opt.lr, 12)
0.0
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

from .optimizer import Optimizer


class LRScheduler:
    """Base class: remembers ``base_lr`` (the optimiser's rate at construction) and sets
    ``optimizer.lr = lr_at(last_epoch)``, starting at epoch 0."""

    def __init__(self, optimizer: Optimizer, base_lr: Optional[float] = None) -> None:
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"{type(self).__name__}: expected an optimiser with an `lr` attribute, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr if base_lr is None else base_lr)
        self.last_epoch = 0
        self.optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the optimiser's learning rate for it."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> List[float]:
        """The current rate, as a one-element list like torch's (one parameter group)."""
        return [self.lr_at(self.last_epoch)]

    def state_dict(self) -> Dict[str, float]:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.base_lr, self.last_epoch = float(state["base_lr"]), int(state["last_epoch"])
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_lr={self.base_lr}, last_epoch={self.last_epoch})"


def _positive_int(value: Any, what: str) -> int:
    if int(value) != value or int(value) < 1:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return int(value)


class StepLR(LRScheduler):
    """``lr(e) = base_lr · γ^⌊e / step_size⌋`` (torch.optim.lr_scheduler.StepLR).

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Epochs between two decays.
    gamma : float, default=0.1
        Multiplicative factor of each decay.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int(step_size, "StepLR: step_size")
        if not gamma > 0:
            raise ValueError(f"StepLR: gamma must be positive, got {gamma}")
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """``lr(e) = η_min + (base_lr - η_min)·(1 + cos(π e / T_max)) / 2``
    (torch.optim.lr_scheduler.CosineAnnealingLR, without restarts).

    The rate falls from ``base_lr`` at epoch 0 to ``η_min`` at epoch ``T_max``; past
    ``T_max`` it follows the cosine back up, exactly as torch's does.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Epochs of the half period.
    eta_min : float, default=0
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _positive_int(T_max, "CosineAnnealingLR: T_max")
        if eta_min < 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be non-negative, got {eta_min}")
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearWarmup(LRScheduler):
    """A linear warm-up of ``warmup_steps`` epochs, then the ``after`` schedule (or constant).

    ``lr(e) = base_lr · (f + (1 - f)·e / W)`` for ``e < W = warmup_steps``, then
    ``after.lr_at(e - W)`` (``base_lr`` when ``after`` is None), so ``after`` starts its own
    epoch 0 when the warm-up ends.  The start factor ``f`` defaults to ``1 / (W + 1)``,
    which makes the ramp ``base_lr · (e + 1) / (W + 1)``.  This equals torch's
    ``SequentialLR(opt, [LinearLR(opt, f, 1.0, W), after], milestones=[W])`` (or
    ``LinearLR`` alone).

    Parameters
    ----------
    optimizer : Optimizer
    warmup_steps : int
    after : LRScheduler, optional
        A schedule built on the same optimiser; its ``base_lr`` is the target rate.
    start_factor : float, optional
        ``f`` in (0, 1]; default ``1 / (warmup_steps + 1)``.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, after: Optional[LRScheduler] = None,
                 start_factor: Optional[float] = None) -> None:
        self.warmup_steps = _positive_int(warmup_steps, "LinearWarmup: warmup_steps")
        if after is not None and after.optimizer is not optimizer:
            raise ValueError("LinearWarmup: `after` must schedule the same optimiser")
        f = 1.0 / (self.warmup_steps + 1) if start_factor is None else float(start_factor)
        if not 0 < f <= 1:
            raise ValueError(f"LinearWarmup: start_factor must lie in (0, 1], got {start_factor}")
        self.after, self.start_factor = after, f
        super().__init__(optimizer, base_lr=None if after is None else after.base_lr)

    def lr_at(self, epoch: int) -> float:
        W, f = self.warmup_steps, self.start_factor
        if epoch < W:
            return self.base_lr * (f + (1.0 - f) * epoch / W)
        return self.base_lr if self.after is None else self.after.lr_at(epoch - W)

    def __repr__(self) -> str:
        return (f"LinearWarmup(warmup_steps={self.warmup_steps}, start_factor={self.start_factor:g}, "
                f"after={self.after!r}, last_epoch={self.last_epoch})")


SCHEDULES: Dict[str, Callable[..., LRScheduler]] = {
    "step": StepLR,
    "cosine": CosineAnnealingLR,
    "warmup": LinearWarmup,
}


def schedule_by_name(name: Optional[str], optimizer: Optimizer, warmup_steps: int = 0,
                     **kwargs: Any) -> Optional[LRScheduler]:
    """A schedule by name: ``"step"`` (StepLR), ``"cosine"`` (CosineAnnealingLR),
    ``"warmup"`` (LinearWarmup, then constant), or ``"none"``/None (returns None).

    ``warmup_steps > 0`` wraps ``"step"`` or ``"cosine"`` in a :class:`LinearWarmup`;
    ``kwargs`` go to the named schedule, e.g.
    ``schedule_by_name("cosine", opt, T_max=20, warmup_steps=2)``.
    """
    if name is None or str(name).lower() == "none":
        if warmup_steps:
            return LinearWarmup(optimizer, warmup_steps)
        return None
    key = str(name).lower()
    if key not in SCHEDULES:
        raise ValueError(f"schedule_by_name: unknown schedule {name!r}; choose one of "
                         f"{sorted(SCHEDULES) + ['none']}")
    if key == "warmup":
        return LinearWarmup(optimizer, warmup_steps, **kwargs)
    sched = SCHEDULES[key](optimizer, **kwargs)
    return LinearWarmup(optimizer, warmup_steps, after=sched) if warmup_steps else sched
