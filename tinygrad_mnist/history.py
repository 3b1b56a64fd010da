"""``History``: everything a training run measured, epoch by epoch, and its JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from .types import PathLike

__all__ = ["History", "json_default"]


@dataclass
class History:
    """Everything a run measured, epoch by epoch (epochs are numbered from 1).

    Accuracies are fractions in [0, 1]; losses are means per example; ``batch_loss[e]``
    and ``batch_accuracy[e]`` hold the per-batch values of epoch ``e + 1``.  Validation
    and test lists stay empty when that split was not given.

    The training loss is recorded two ways: ``train_loss`` / ``train_accuracy`` are the
    running means of the batch values during the epoch; ``train_eval_loss`` /
    ``train_eval_accuracy`` are the end-of-epoch model's figures on the whole training
    set in eval mode (filled when the loop is asked for them, e.g. ``fit(eval_train=True)``).
    """

    train_loss: List[float] = field(default_factory=list)
    train_accuracy: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_accuracy: List[float] = field(default_factory=list)
    test_loss: List[float] = field(default_factory=list)
    test_accuracy: List[float] = field(default_factory=list)
    epoch_seconds: List[float] = field(default_factory=list)
    train_eval_loss: List[float] = field(default_factory=list)
    train_eval_accuracy: List[float] = field(default_factory=list)
    batch_loss: List[List[float]] = field(default_factory=list)
    batch_accuracy: List[List[float]] = field(default_factory=list)
    total_seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def best_epoch(self) -> Optional[int]:
        """The epoch (from 1) with the highest validation accuracy; earliest on ties."""
        if not self.val_accuracy:
            return None
        return int(np.argmax(self.val_accuracy)) + 1

    @property
    def best_test_val(self) -> Optional[Tuple[Optional[float], float]]:
        """``(test accuracy, validation accuracy)`` at the best-validation epoch."""
        e = self.best_epoch
        if e is None:
            return None
        test = self.test_accuracy[e - 1] if self.test_accuracy else None
        return test, self.val_accuracy[e - 1]

    def record_epoch(self, batch_losses: List[float], batch_accuracies: List[float],
                     val: Optional[Tuple[float, float]] = None,
                     test: Optional[Tuple[float, float]] = None,
                     train_eval: Optional[Tuple[float, float]] = None) -> None:
        """Append one epoch: the per-batch lists, their means, and the ``(loss, accuracy)``
        of the validation and test splits, and of the whole training set evaluated after
        the epoch (``train_eval``), when given."""
        self.batch_loss.append(list(batch_losses))
        self.batch_accuracy.append(list(batch_accuracies))
        self.train_loss.append(float(np.mean(batch_losses)))
        self.train_accuracy.append(float(np.mean(batch_accuracies)))
        for split, result in (("val", val), ("test", test), ("train_eval", train_eval)):
            if result is not None:
                getattr(self, f"{split}_loss").append(float(result[0]))
                getattr(self, f"{split}_accuracy").append(float(result[1]))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["best_epoch"] = self.best_epoch
        d["best_test_val"] = self.best_test_val
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})

    def save(self, path: PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, default=json_default))
        return path

    @classmethod
    def load(cls, path: PathLike) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def summary_row(self, epoch: int) -> str:
        """One line of the per-epoch table (epoch from 1)."""
        i = epoch - 1
        cells = [f"{epoch:>5d}", f"{self.train_loss[i]:>10.4f}", f"{100 * self.train_accuracy[i]:>8.2f}%"]
        for losses, accs in ((self.val_loss, self.val_accuracy), (self.test_loss, self.test_accuracy)):
            if losses:
                cells += [f"{losses[i]:>10.4f}", f"{100 * accs[i]:>8.2f}%"]
        cells.append(f"{self.epoch_seconds[i]:>8.2f}")
        return " ".join(cells)

    def summary_header(self) -> str:
        cells = [f"{'epoch':>5}", f"{'train loss':>10}", f"{'train acc':>9}"]
        if self.val_loss:
            cells += [f"{'val loss':>10}", f"{'val acc':>9}"]
        if self.test_loss:
            cells += [f"{'test loss':>10}", f"{'test acc':>9}"]
        cells.append(f"{'seconds':>8}")
        return " ".join(cells)


def json_default(obj: object) -> Any:
    """``json.dumps`` fallback for numpy scalars and arrays and paths."""
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
