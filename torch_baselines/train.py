"""The torch training loop, a mirror of :mod:`tinygrad_mnist.train`.

``fit`` and ``evaluate`` take the same arguments and return the same
:class:`~tinygrad_mnist.train.History` as the numpy engine's.  They read the data through
an ordinary ``torch.utils.data.DataLoader`` (:func:`torch_baselines.data.torch_loader`)
whose batch sampler replays the numpy engine's seeded ``DataLoader(dataset, batch_size,
shuffle=True, seed=seed, flatten=flatten, dtype=...)``, epoch ``e`` being its epoch
``e - 1``, over a torch ``Dataset`` that converts the same uint8 arrays the same way; so
both engines see the same examples, with the same values, in the same order.  One epoch::

    for x, y in loader:
        optimizer.zero_grad()
        out = model(x); value = loss_fn(out, y) + l1·Σ|w| + l2·Σw²
        value.backward()
        optimizer.step()

Train figures are the means of the per-batch values; losses are means per example (a
``reduction="sum"`` loss is divided back by the batch size) and include the penalty,
as in the numpy loop.  Validation and test figures are computed after each epoch on the
whole split, in eval mode, without gradients.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader

from tinygrad_mnist.nn.losses import loss_name
from tinygrad_mnist.train import History, TrainingDivergedError, as_loader, finish_epoch, progress_bar

from .data import torch_loader
from .utils import resolve_device

__all__ = ["fit", "evaluate", "optimizer_by_name", "schedule_by_name", "loss_by_name",
           "penalty", "ProbabilityCrossEntropy", "OneHotMSELoss", "OPTIMIZERS", "SCHEDULERS"]

_NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


# -- losses -----------------------------------------------------------------------------
class ProbabilityCrossEntropy(nn.Module):
    """Cross-entropy on probabilities, for a network ending with ``Softmax`` (the twin of
    the numpy ``CrossEntropy``): ``L = -Σ_i log max(p_{i,y_i}, eps)`` (÷ n for mean)."""

    def __init__(self, reduction: str = "mean", eps: float = 1e-12):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"ProbabilityCrossEntropy: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction, self.eps = reduction, float(eps)

    def forward(self, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.nll_loss(torch.log(probs.clamp_min(self.eps)), target, reduction=self.reduction)


class OneHotMSELoss(nn.Module):
    """Mean squared error against one-hot targets built from integer labels (the twin of
    the numpy ``MSELoss``): ``L = Σ_ic (ŷ_ic - y_ic)²`` (÷ n·C for mean)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"OneHotMSELoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 1:
            target = nn.functional.one_hot(target, pred.shape[1]).to(pred.dtype)
        return nn.functional.mse_loss(pred, target, reduction=self.reduction)


def loss_by_name(name: str, reduction: str = "mean") -> nn.Module:
    """``"cross_entropy"`` (on logits), ``"cross_entropy_probs"`` (after a Softmax) or ``"mse"``."""
    key = loss_name(name)  # the numpy side's names and aliases
    if key == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=reduction)
    if key == "cross_entropy_probs":
        return ProbabilityCrossEntropy(reduction=reduction)
    if key == "mse":
        return OneHotMSELoss(reduction=reduction)
    raise ValueError(f"loss_by_name: unknown loss {name!r}; choose cross_entropy, cross_entropy_probs or mse")


def _mean_per_example(loss_fn, value: float, out: torch.Tensor) -> float:
    if getattr(loss_fn, "reduction", "mean") != "sum":
        return value
    per = out.numel() if isinstance(loss_fn, (OneHotMSELoss, nn.MSELoss)) else out.shape[0]
    return value / per


# -- optimisers, schedules, penalties ---------------------------------------------------
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")


def optimizer_by_name(name: str, params: Iterable, lr: float, **kwargs) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimiser by name.

    ``"sgd"`` (``momentum`` allowed in ``kwargs``), ``"momentum"`` (SGD, momentum 0.9
    unless given), ``"nesterov"`` (SGD, Nesterov, momentum 0.9 unless given), ``"adam"``,
    ``"adamw"``, ``"rmsprop"``, ``"adagrad"``; ``kwargs`` (``weight_decay``, ``betas``,
    ``alpha`` ...) go to the torch constructor.
    """
    key = name.lower()
    params = list(params)
    if key == "sgd":
        return torch.optim.SGD(params, lr=lr, **kwargs)
    if key in ("momentum", "nesterov"):
        kwargs.setdefault("momentum", 0.9)
        return torch.optim.SGD(params, lr=lr, nesterov=key == "nesterov", **kwargs)
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}
    if key not in classes:
        raise ValueError(f"optimizer_by_name: unknown optimiser {name!r}; choose one of {OPTIMIZERS}")
    return classes[key](params, lr=lr, **kwargs)


SCHEDULERS = ("none", "step", "exponential", "cosine", "warmup", "warmup_cosine")


def schedule_by_name(name: Optional[str], optimizer: torch.optim.Optimizer, epochs: int,
                      step_size: int = 10, gamma: float = 0.1, warmup_epochs: int = 1,
                      warmup_start: float = 0.1, min_lr: float = 0.0):
    """A per-epoch learning-rate schedule (``fit`` calls ``step()`` after every epoch).

    - ``"none"`` / ``None``: constant (returns ``None``);
    - ``"step"``: ×``gamma`` every ``step_size`` epochs;
    - ``"exponential"``: ×``gamma`` every epoch;
    - ``"cosine"``: cosine from lr to ``min_lr`` over ``epochs``;
    - ``"warmup"``: linear from ``warmup_start``·lr to lr over ``warmup_epochs``, then constant;
    - ``"warmup_cosine"``: that warm-up, then cosine to ``min_lr`` over the remaining epochs.
    """
    key = "none" if name is None else name.lower().replace("-", "_")
    S = torch.optim.lr_scheduler
    if key == "none":
        return None
    if key == "step":
        return S.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if key == "exponential":
        return S.ExponentialLR(optimizer, gamma=gamma)
    if key == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=min_lr)
    if key == "warmup":
        return S.LinearLR(optimizer, start_factor=warmup_start, total_iters=max(1, warmup_epochs))
    if key == "warmup_cosine":
        warm = S.LinearLR(optimizer, start_factor=warmup_start, total_iters=max(1, warmup_epochs))
        cos = S.CosineAnnealingLR(optimizer, T_max=max(1, epochs - warmup_epochs), eta_min=min_lr)
        return S.SequentialLR(optimizer, [warm, cos], milestones=[max(1, warmup_epochs)])
    raise ValueError(f"schedule_by_name: unknown schedule {name!r}; choose one of {SCHEDULERS}")


def penalty(params: Sequence[torch.Tensor], l1: float = 0.0, l2: float = 0.0) -> torch.Tensor:
    """``l1·Σ|θ| + l2·Σθ²`` over ``params`` (a 0-d tensor; 0 when both are 0).

    The classic lab uses λ = 0.001 for either.  The gradient autograd adds is
    ``l1·sign(θ) + 2·l2·θ``.
    """
    total = torch.zeros((), dtype=params[0].dtype, device=params[0].device) if params else torch.zeros(())
    for p in params:
        if l1:
            total = total + l1 * p.abs().sum()
        if l2:
            total = total + l2 * (p * p).sum()
    return total


# -- data -------------------------------------------------------------------------------
def train_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, reg_params: Sequence[torch.Tensor] = (), l1: float = 0.0, l2: float = 0.0
               ) -> Tuple[float, torch.Tensor]:
    """One step, as :func:`tinygrad_mnist.train.train_step` takes it: zero the gradients, the
    loss of the batch (plus an L1/L2 penalty on ``reg_params``), back-propagate, step.

    Returns the batch's loss value and the model's output.  A NaN or infinite loss is
    returned before ``backward`` (the caller raises with the epoch and batch), so no update
    is made from it.
    """
    optimizer.zero_grad()
    out = model(x)
    value = loss_fn(out, y)
    if l1 or l2:
        value = value + penalty(reg_params, l1, l2)
    v = value.item()
    if math.isfinite(v):
        value.backward()
        optimizer.step()
    return v, out


def _model_dtype(model: nn.Module):
    for p in model.parameters():
        if p.dtype not in _NUMPY_DTYPE:
            raise TypeError(f"fit: model parameters must be float32 or float64, got {p.dtype}")
        return _NUMPY_DTYPE[p.dtype]
    return np.float32


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _loader(data, batch_size: int, shuffle: bool, seed: int, flatten: bool, dtype) -> TorchDataLoader:
    """``data`` as a torch DataLoader: a torch DataLoader is used as is; a Dataset or numpy
    DataLoader is read by :func:`~torch_baselines.data.torch_loader` in the numpy order."""
    if isinstance(data, TorchDataLoader):
        return data
    return torch_loader(as_loader(data, batch_size, shuffle, seed, flatten, dtype))


def _set_epoch(loader: TorchDataLoader, epoch: int) -> None:
    """Make ``loader``'s next pass epoch ``epoch`` (0-based) where its batch sampler can replay one."""
    set_epoch = getattr(loader.batch_sampler, "set_epoch", None)
    if set_epoch is not None:
        set_epoch(epoch)


# -- evaluate / fit ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, loss_fn, data, batch_size: int = 1000, flatten: bool = True,
             device=None) -> Tuple[float, float]:
    """Mean loss per example and accuracy of ``model`` on ``data``, in eval mode.

    ``data`` is a Dataset, a numpy DataLoader or a torch DataLoader yielding ``(x, y)``
    tensors; ``device`` defaults to the model's.  The model's train/eval mode is restored
    afterwards.
    """
    device = _model_device(model) if device is None else resolve_device(device)
    loader = _loader(data, batch_size, False, 0, flatten, _model_dtype(model))
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            total_loss += _mean_per_example(loss_fn, loss_fn(out, y).item(), out) * len(y)
            correct += int((out.argmax(dim=1) == y).sum().item())
            n += len(y)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the data is empty")
    return total_loss / n, correct / n


def fit(model: nn.Module, loss_fn, optimizer: torch.optim.Optimizer, train, val=None, test=None,
        epochs: int = 10, batch_size: int = 256, seed: int = 0, shuffle: bool = True, flatten: bool = True,
        regularizer=None, scheduler=None,
        progress: Optional[bool] = None, log: Optional[Callable[[str], None]] = None,
        eval_batch_size: int = 1000, callbacks: Sequence[Callable[[int, History], Optional[bool]]] = (),
        device="cpu", config: Optional[dict] = None) -> History:
    """Train a torch ``model`` and record a :class:`~tinygrad_mnist.train.History`.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device``; its parameter dtype (float32/float64) sets the batch dtype.
    loss_fn : callable
        ``loss_fn(output, labels) -> 0-d tensor``, e.g. ``nn.CrossEntropyLoss()``.
    optimizer : torch.optim.Optimizer
        Over ``model.parameters()`` (see :func:`optimizer_by_name`).
    train, val, test : tinygrad_mnist Dataset or DataLoader, or torch DataLoader
        A Dataset or numpy DataLoader is read through
        :func:`~torch_baselines.data.torch_loader`, in the order of the numpy engine's
        seeded ``DataLoader``: epoch ``e`` uses the permutation of ``(seed, e - 1)``.  A
        torch DataLoader yielding ``(x, y)`` tensors is used as is (its batch sampler's
        ``set_epoch(e - 1)`` is called before epoch ``e`` where it has one).
    epochs, batch_size, seed, shuffle, flatten, eval_batch_size
        As in ``tinygrad_mnist.train.fit``; ``flatten=False`` gives (b, 1, H, W) batches
        for CNNs.
    regularizer : tinygrad_mnist.Penalty, optional
        The same object the numpy ``fit`` takes: ``l1·Σ|w| + l2·Σw²`` is added to the
        loss, over the weights (parameters with two or more dimensions) unless its
        ``include_bias``, then over all.
    scheduler : object, optional
        Its ``step()`` is called after every epoch (see :func:`schedule_by_name`).
    progress, log, callbacks, config
        As in ``tinygrad_mnist.train.fit``.
    device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"

    Raises
    ------
    TrainingDivergedError
        When a batch loss is NaN or infinite, naming the epoch and batch.

    Notes
    -----
    Dropout masks come from torch's global RNG: call
    :func:`torch_baselines.utils.seed_everything` before building the model for
    reproducible runs.
    """
    if int(epochs) < 1:
        raise ValueError(f"fit: epochs must be at least 1, got {epochs}")
    device = resolve_device(device)
    model.to(device)
    dtype = _model_dtype(model)
    loader = _loader(train, batch_size, shuffle, seed, flatten, dtype)
    val_loader = None if val is None else _loader(val, eval_batch_size, False, seed, flatten, dtype)
    test_loader = None if test is None else _loader(test, eval_batch_size, False, seed, flatten, dtype)
    l1, l2 = (0.0, 0.0) if regularizer is None else (regularizer.l1, regularizer.l2)
    include_bias = regularizer is not None and regularizer.include_bias
    reg_params = [p for p in model.parameters() if p.requires_grad and (include_bias or p.ndim > 1)]
    history = History(config=dict(config or {}))
    start = time.perf_counter()
    for epoch in range(1, int(epochs) + 1):
        t0 = time.perf_counter()
        model.train()
        _set_epoch(loader, epoch - 1)
        batch_losses, batch_accs = [], []
        for b, (x, y) in enumerate(progress_bar(loader, progress, f"epoch {epoch}/{epochs}", len(loader)), 1):
            x, y = x.to(device), y.to(device)
            v, out = train_step(model, loss_fn, optimizer, x, y, reg_params, l1, l2)
            if not math.isfinite(v):
                lr = optimizer.param_groups[0].get("lr", "?")
                raise TrainingDivergedError(
                    f"fit: the loss became {v} at epoch {epoch}, batch {b} of {len(loader)}; "
                    f"lower the learning rate (now {lr}) or check the data")
            batch_losses.append(_mean_per_example(loss_fn, v, out))
            batch_accs.append(int((out.detach().argmax(dim=1) == y).sum().item()) / len(y))
        history.record_epoch(
            batch_losses, batch_accs,
            val=None if val_loader is None else evaluate(model, loss_fn, val_loader, device=device),
            test=None if test_loader is None else evaluate(model, loss_fn, test_loader, device=device))
        if finish_epoch(history, epoch, t0, start, scheduler, log, callbacks):
            break
    return history
