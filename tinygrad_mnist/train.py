"""The training loop: ``fit``, ``evaluate`` and the ``History`` they record.

One step is the classic ``reset_grad / forward / backward / update`` loop, and it is
:func:`train_step` as written::

    optimizer.zero_grad()
    out = model.forward(x); value = loss.forward(out, y)
    model.backward(loss.backward())
    optimizer.step()

:func:`train_epoch` runs it over a loader's batches; :func:`fit` runs the epochs and
keeps around them what a long run needs: evaluation, resume, checkpoints, divergence and
Ctrl-C.

Per epoch, the train loss and accuracy are the means of the per-batch values (as the
classic assignments define them: a running mean over a model that changes during the
epoch); with ``eval_train=True`` the trained model is also evaluated on the whole
training set at the end of the epoch (``train_eval_loss``, ``train_eval_accuracy``).
Validation and test figures are computed afterwards on the whole split in eval mode.
Losses are reported as means per example whatever the loss's ``reduction`` (``"sum"``
values are divided back by the batch size).  ``History`` lives in :mod:`.history` and is
importable from here; checkpoints (``fit(checkpoint_dir=..., resume=True)``) are written by
:mod:`.checkpoint`.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Protocol, Sequence, Tuple, TypeVar, Union, cast

import numpy as np
from numpy.typing import DTypeLike

from .data import DataLoader, Dataset
from .history import History, json_default  # noqa: F401  (json_default: public here too)
from .metrics import accuracy
from .nn.losses import Loss
from .nn.module import Module, Parameter
from .optim.optimizer import Optimizer
from .optim.schedules import LRScheduler
from .types import PathLike


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite, or grew over an epoch; raised instead of training on
    garbage.  ``checkpoint`` is the last good checkpoint's path (None without one)."""

    def __init__(self, message: str, epoch: Optional[int] = None, batch: Optional[int] = None,
                 checkpoint: Optional[Path] = None) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.checkpoint = epoch, batch, checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`: the run stopped; ``history`` holds the finished epochs and
    ``checkpoint`` (when a checkpoint folder was given) the last finished epoch's state."""

    def __init__(self, message: str, history: "History", epoch: int, checkpoint: Optional[Path]) -> None:
        super().__init__(message)
        self.history, self.epoch, self.checkpoint = history, epoch, checkpoint


class TrainingDivergenceWarning(UserWarning):
    """The training loss grew over an epoch (see :func:`divergence`)."""


T = TypeVar("T")


class Regularizer(Protocol):
    """What ``fit(regularizer=...)`` calls (e.g. :class:`~tinygrad_mnist.nn.L2Penalty`)."""

    def penalty(self, params: List[Parameter]) -> float: ...

    def backward(self, params: List[Parameter]) -> None: ...

#: File name of the checkpoint ``fit(checkpoint_dir=...)`` keeps (the last finished epoch).
CHECKPOINT_NAME = "checkpoint.npz"
DIVERGENCE_MODES = ("stop", "warn", "ignore")


def mean_per_example(loss: Loss, value: float, out: np.ndarray) -> float:
    """Convert a loss value to its ``reduction="mean"`` equivalent."""
    if getattr(loss, "reduction", "mean") == "mean":
        return value
    per = out.size if type(loss).__name__ == "MSELoss" else out.shape[0]
    return value / per


def as_loader(data: Union[Dataset, DataLoader], batch_size: int, shuffle: bool, seed: int, flatten: bool,
              dtype: DTypeLike) -> DataLoader:
    """``data`` as a DataLoader: a loader is used as is, a Dataset gets one seeded by ``seed``."""
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed,
                          flatten=flatten, dtype=dtype)
    raise TypeError(f"expected a Dataset or a DataLoader, got {type(data).__name__}")


def _model_dtype(model: Module) -> DTypeLike:
    return model.dtype if model.dtype is not None else np.float32


def evaluate(model: Module, loss: Loss, data: Union[Dataset, DataLoader], batch_size: int = 1000,
             flatten: bool = True) -> Tuple[float, float]:
    """Mean loss per example and accuracy of ``model`` on ``data``, in eval mode.

    ``data`` is a Dataset or a DataLoader; the model's train/eval mode is restored after.
    """
    loader = as_loader(data, batch_size, False, 0, flatten, _model_dtype(model))
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0.0, 0
    try:
        for x, y in loader:
            out = model.forward(x)
            total_loss += mean_per_example(loss, loss.forward(out, y), out) * len(y)
            correct += accuracy(out, y) * len(y)
            n += len(y)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the data is empty")
    return total_loss / n, correct / n


def progress_bar(iterable: Iterable[T], enabled: Optional[bool], desc: str, total: int) -> Iterable[T]:
    """A tqdm bar over ``iterable`` when enabled (default: stderr is a terminal) and tqdm is installed."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional; no bar without it
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, unit="batch")


def divergence(history: "History") -> Optional[str]:
    """Why the last epoch counts as diverging, or None.

    The loss *grew over the epoch* when either

    - the epoch ended worse than the untrained model started: the mean of the last tenth
      of its batch losses exceeds 1.5 × the run's first batch loss (an lr far too large
      drives a softmax classifier to confident wrong answers, loss ≫ log C); or
    - the epoch's mean training loss is more than twice (and 0.1 above) the best earlier
      epoch's.
    """
    if not history.batch_loss or not history.batch_loss[0]:
        return None
    e = history.epochs
    losses = history.batch_loss[-1]
    first = history.batch_loss[0][0]
    tail = float(np.mean(losses[-max(1, len(losses) // 10):]))
    if tail > 1.5 * first:
        return (f"the training loss grew over epoch {e}: it ended at {tail:.4g} (mean of the last "
                f"{max(1, len(losses) // 10)} batches), above 1.5 × the untrained model's {first:.4g}")
    if e > 1:
        best = min(history.train_loss[:-1])
        now = history.train_loss[-1]
        if now > 2 * best and now > best + 0.1:
            return (f"the training loss grew over epoch {e}: mean {now:.4g}, more than twice the best "
                    f"earlier epoch's {best:.4g}")
    return None


class NonFiniteLoss(FloatingPointError):
    """A batch's loss was NaN or infinite (``train_step``); ``fit`` adds the epoch and batch.
    ``detail`` names the layer whose input went non-finite, when that is how it was found."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def train_step(model: Module, loss: Loss, optimizer: Optimizer, x: np.ndarray, y: np.ndarray,
               regularizer: Optional[Regularizer] = None) -> Tuple[float, np.ndarray]:
    """One step of mini-batch gradient descent: the course's four lines.

        optimizer.zero_grad()                  # reset_grad
        out = model.forward(x)                 # forward: the loss L(out, y) of the batch
        model.backward(loss.backward())        # back-propagation: ∂L/∂θ added into every p.grad
        optimizer.step()                       # θ ← θ - lr·d

    A ``regularizer`` adds its penalty to the loss and its gradient after back-propagation.

    Returns
    -------
    value : float, the batch's loss (with the penalty)
    out : ndarray of shape (batch, classes), the model's output
    Raises :class:`NonFiniteLoss` (before any update) when the loss is NaN or infinite.
    """
    from .nn.module import NonFiniteError

    optimizer.zero_grad()
    try:
        out = model.forward(x)
        value = loss.forward(out, y)
    except NonFiniteError as err:
        raise NonFiniteLoss("the loss became nan", str(err)) from None
    if regularizer is not None:
        value += regularizer.penalty(model.parameters())
    if not math.isfinite(value):
        raise NonFiniteLoss(f"the loss became {value}")
    model.backward(loss.backward())
    if regularizer is not None:
        regularizer.backward(model.parameters())
    optimizer.step()
    return value, out


def train_epoch(model: Module, loss: Loss, optimizer: Optimizer, loader: DataLoader,
                regularizer: Optional[Regularizer] = None, progress: Optional[bool] = None,
                desc: str = "epoch", position: Optional[List[int]] = None) -> Tuple[List[float], List[float]]:
    """One pass of :func:`train_step` over ``loader``'s batches; returns the per-batch mean
    loss (per example) and accuracy.  ``position``, when given, holds the number of the batch
    being trained (1-based), for the messages of ``fit``."""
    model.train()
    batch_losses, batch_accs = [], []
    for b, (x, y) in enumerate(progress_bar(loader, progress, desc, len(loader)), 1):
        if position is not None:
            position[0] = b
        value, out = train_step(model, loss, optimizer, x, y, regularizer)
        batch_losses.append(mean_per_example(loss, value, out))
        batch_accs.append(accuracy(out, y))
    return batch_losses, batch_accs


def _fit_identity(loader: DataLoader) -> dict:
    """What must match for a resumed run to replay the same batches."""
    return {"seed": loader.seed, "batch_size": loader.batch_size, "shuffle": loader.shuffle,
            "drop_last": loader.drop_last, "flatten": loader.flatten, "n_train": len(loader.dataset)}


def fit(model: Module, loss: Loss, optimizer: Optimizer, train: Union[Dataset, DataLoader],
        val: Union[Dataset, DataLoader, None] = None, test: Union[Dataset, DataLoader, None] = None,
        epochs: int = 10,
        batch_size: int = 256, seed: int = 0, shuffle: bool = True, flatten: bool = True,
        regularizer: Optional[Regularizer] = None, scheduler: Optional[LRScheduler] = None,
        progress: Optional[bool] = None,
        log: Optional[Callable[[str], None]] = None, eval_batch_size: int = 1000,
        callbacks: Sequence[Callable[[int, History], Optional[bool]]] = (),
        config: Optional[dict] = None, eval_train: bool = False, checkpoint_dir: Optional[PathLike] = None,
        resume: bool = False, on_divergence: str = "warn", checkpoint_info: Optional[dict] = None) -> History:
    """Train ``model`` with ``optimizer`` on ``loss`` and record a :class:`History`.

    Parameters
    ----------
    model : Module
    loss : Loss
        Called as ``loss(model_output, labels)``.
    optimizer : Optimizer
    train, val, test : Dataset or DataLoader
        ``train`` is shuffled by a loader seeded with ``seed`` (epoch order depends only on
        ``seed`` and the epoch); ``val`` and ``test`` are optional.
    epochs : int, default=10
        The total number of epochs (a resumed run continues up to it).
    batch_size : int, default=256
    regularizer : object, optional
        With ``penalty(params) -> float`` and ``backward(params)`` (adds its gradient).
    scheduler : object, optional
        Its ``step()`` is called after every epoch.
    progress : bool, optional
        A tqdm bar over the batches; by default only when stderr is a terminal.
    log : callable, optional
        Receives the per-epoch table lines (e.g. ``print``).
    callbacks : sequence of callables
        ``cb(epoch, history)`` after every epoch; returning True stops training.
    config : dict, optional
        Stored in ``history.config`` (saved with the results).
    eval_train : bool, default=False
        Also evaluate the end-of-epoch model on the whole training set (one more forward
        pass over the loader's dataset, unshuffled and unaugmented, counted in the epoch time), recorded as
        ``history.train_eval_loss`` and ``history.train_eval_accuracy`` next to the running batch means.
    checkpoint_dir : str or Path, optional
        Write ``checkpoint_dir/checkpoint.npz`` (model, optimiser, schedule, generators,
        history; see :mod:`tinygrad_mnist.checkpoint`) atomically at the end of every epoch.
    resume : bool, default=False
        Continue from ``checkpoint_dir/checkpoint.npz`` when it exists: the run ends with
        the same history and weights, bit for bit, as one never interrupted (same seed,
        batch size and thread count).  Without a checkpoint there the run starts afresh.
    checkpoint_info : dict, optional
        ``{"config": {...}, "extra": {...}}`` stored in every checkpoint (e.g. the command
        line's options and the input layout, so ``tinygrad-mnist evaluate`` can use it).
    on_divergence : {"warn", "stop", "ignore"}, default="warn"
        What to do when the loss grew over an epoch (:func:`divergence`): warn
        (:class:`TrainingDivergenceWarning`, and a log line), raise
        :class:`TrainingDivergedError` before that epoch is checkpointed, or nothing.

    Raises
    ------
    TrainingDivergedError
        When a batch loss (or a layer's input) is NaN or infinite, naming the epoch and the
        batch; the last good checkpoint is kept.
    TrainingInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``), with the finished epochs' history and the
        checkpoint to resume from.
    CheckpointError
        ``resume`` with a checkpoint that does not match the model, optimiser, schedule,
        seed or batch size.
    """
    from .checkpoint import CheckpointError, deferred_interrupt, load, save

    if int(epochs) < 1:
        raise ValueError(f"fit: epochs must be at least 1, got {epochs}")
    if on_divergence not in DIVERGENCE_MODES:
        raise ValueError(f"fit: on_divergence must be one of {DIVERGENCE_MODES}, got {on_divergence!r}")
    info = dict(checkpoint_info or {})
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume = True needs a checkpoint_dir")
    dtype = _model_dtype(model)
    loader = as_loader(train, batch_size, shuffle, seed, flatten, dtype)
    if len(loader) == 0:
        raise ValueError(f"fit: the training data is empty ({loader.dataset!r}); nothing to train on")
    val_loader = None if val is None else as_loader(val, eval_batch_size, False, seed, flatten, dtype)
    test_loader = None if test is None else as_loader(test, eval_batch_size, False, seed, flatten, dtype)
    history = History(config=dict(config or {}))
    identity = _fit_identity(loader)
    ckpt_path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    first_epoch = 1
    if resume and ckpt_path is not None and ckpt_path.is_file():  # resume needs a checkpoint_dir (above)
        ckpt = load(ckpt_path)
        saved = ckpt.config.get("fit", {})
        for key, value in identity.items():
            if key in saved and saved[key] != value:
                raise CheckpointError(f"{ckpt_path}: the run uses {key}={value!r}, the checkpoint was "
                                      f"written with {key}={saved[key]!r}; resume with the same settings")
        ckpt.restore(model, optimizer, scheduler)
        history = ckpt.history or history
        if config is not None:
            history.config = dict(config)
        first_epoch = int(cast(int, ckpt.epoch)) + 1  # fit's checkpoints always record the epoch
        if log is not None:
            log(f"resuming from {ckpt_path} after epoch {ckpt.epoch} of {epochs}")
    last_good = ckpt_path if resume and ckpt_path is not None and ckpt_path.is_file() else None
    saved_epoch = first_epoch - 1
    start = time.perf_counter() - history.total_seconds
    epoch, position = first_epoch, [0]   # position[0]: the batch being trained (for the messages)

    def kept() -> str:
        return f"; the last good checkpoint (epoch {saved_epoch}) is kept at {last_good}" if last_good else ""

    try:
        for epoch in range(first_epoch, int(epochs) + 1):
            t0 = time.perf_counter()
            loader.set_epoch(epoch - 1)
            try:
                batch_losses, batch_accs = train_epoch(model, loss, optimizer, loader, regularizer, progress,
                                                       f"epoch {epoch}/{epochs}", position)
            except NonFiniteLoss as err:
                raise TrainingDivergedError(
                    f"fit: {err} at epoch {epoch}, batch {position[0]} of {len(loader)}"
                    f"{f' ({err.detail})' if err.detail else ''}; lower the learning rate "
                    f"(now {getattr(optimizer, 'lr', '?')}) or check the data{kept()}",
                    epoch, position[0], last_good) from None
            history.record_epoch(batch_losses, batch_accs,
                                 val=None if val_loader is None else evaluate(model, loss, val_loader),
                                 test=None if test_loader is None else evaluate(model, loss, test_loader),
                                 train_eval=(evaluate(model, loss, loader.dataset, eval_batch_size, flatten)
                                             if eval_train else None))
            why = None if on_divergence == "ignore" else divergence(history)
            if why is not None:
                advice = f"lower the learning rate (now {getattr(optimizer, 'lr', '?')})"
                if on_divergence == "stop":
                    raise TrainingDivergedError(f"fit: diverging: {why}; {advice}{kept()}", epoch, position[0],
                                                last_good)
                warnings.warn(f"fit: diverging: {why}; {advice}", TrainingDivergenceWarning, stacklevel=2)
                if log is not None:
                    log(f"warning: diverging: {why}")
            stop = finish_epoch(history, epoch, t0, start, scheduler, log, callbacks)
            if ckpt_path is not None:
                with deferred_interrupt():  # a Ctrl-C now lands after the checkpoint is written
                    save(ckpt_path, model, optimizer=optimizer, scheduler=scheduler, history=history, epoch=epoch,
                         config={**info.get("config", {}), "fit": identity, "epochs": int(epochs)},
                         extra=info.get("extra"))
                    last_good, saved_epoch = ckpt_path, epoch
            if stop:
                break
    except KeyboardInterrupt as err:
        if isinstance(err, TrainingInterrupted):
            raise
        done = history.epochs
        where = (f"the checkpoint of epoch {saved_epoch} is {last_good}" if last_good
                 else "no epoch finished, nothing was saved" if not done
                 else "no checkpoint folder was given, nothing was saved" if ckpt_path is None
                 else "no checkpoint was written yet")
        raise TrainingInterrupted(f"interrupted at epoch {epoch}, batch {position[0]}; {where}", history, saved_epoch,
                                  last_good) from None
    return history


def finish_epoch(history: History, epoch: int, t0: float, start: float, scheduler: Optional[LRScheduler],
                 log: Optional[Callable[[str], None]],
                 callbacks: Sequence[Callable[[int, History], Optional[bool]]]) -> bool:
    """The end of an epoch shared by every training loop: step the schedule, record the
    times, print the table row, run the callbacks; returns True when one asks to stop."""
    if scheduler is not None:
        scheduler.step()
    history.epoch_seconds.append(time.perf_counter() - t0)
    history.total_seconds = time.perf_counter() - start
    if log is not None:
        if epoch == 1:
            log(history.summary_header())
        log(history.summary_row(epoch))
    return any(cb(epoch, history) for cb in callbacks)
