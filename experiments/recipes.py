"""One training run with the regularisers the CNN studies vary, on either engine.

:class:`Recipe` is a :class:`~experiments.training.Run` (model as layer descriptions,
optimiser, batch size, epochs, seed, engine) plus weight decay, L1/L2 penalties, a
learning-rate schedule and data augmentation.  It is trained by the one training loop,
:func:`experiments.training.train`, which reads these through the methods a recipe
overrides (``optimizer_kwargs``, ``loader``, ``scheduler``, ``penalty``) and returns the
same plain dict as for any run (history, seconds, parameter count, extras; ``diverged``
for a training whose loss became NaN, which a recipe keeps as a result so the other runs
of a study go on).

Both engines start from the same weights (the numpy build, copied into the torch twin)
and read the same batches (the numpy ``DataLoader``, or the
:class:`~tinygrad_mnist.data.augment.AugmentedLoader` with the same shifts and turns).
Dropout masks differ: numpy draws them from the model's seeded generator, torch from its
global generator (seeded with ``seed``).

Threads: the studies train with ``threads=1`` by default (numpy's BLAS through
threadpoolctl, ``torch.set_num_threads``).  On a shared 2-core machine one thread per
engine is several times faster than two (measured: a course-CNN epoch on 5,000 images,
1.8 s vs 6.8 s numpy and 1.2 s vs 6.3 s torch, with other work running), it is the same
for both engines, and ``--jobs 2`` then runs two trainings side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Optional, Tuple

import numpy as np

from experiments.training import Data, Run

SCHEDULES = ("none", "cosine", "step")


@dataclass(frozen=True)
class Recipe(Run):
    """A :class:`Run` with regularisers.

    Parameters (besides those of ``Run``)
    ----------
    weight_decay : float, optional
        The optimiser's own ``weight_decay`` (L2 added to the gradient, decoupled for
        AdamW); None keeps the optimiser's default (0, AdamW 0.01).
    l1, l2 : float, default=0
        ``Penalty(l1, l2)`` added to the loss (weights only, not biases).
    schedule : {"none", "cosine", "step"}, default="none"
        Per-epoch learning rate: cosine to 0 over the epochs, or ×``gamma`` every
        ``step_size`` epochs.
    step_size : int, default=5
    gamma : float, default=0.1
    max_shift : int, default=0
        Random shifts of up to this many pixels (augmentation; 0: none).
    max_degrees : float, default=0
        Random rotations of up to this many degrees (augmentation; 0: none).

    A diverged training (NaN or infinite loss) is a result, not an error
    (``keeps_diverged``): its ``diverged`` key holds the message, its missing epochs NaN.
    """

    weight_decay: Optional[float] = None
    l1: float = 0.0
    l2: float = 0.0
    schedule: str = "none"
    step_size: int = 5
    gamma: float = 0.1
    max_shift: int = 0
    max_degrees: float = 0.0

    keeps_diverged: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Recipe: schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    @property
    def augmented(self) -> bool:
        return bool(self.max_shift or self.max_degrees)

    def optimizer_kwargs(self) -> dict:
        """The keyword arguments both engines' optimisers get (besides the parameters)."""
        kwargs = super().optimizer_kwargs()
        if self.weight_decay is not None:
            kwargs["weight_decay"] = self.weight_decay
        return kwargs

    def loader(self, dataset, flatten: bool):
        """The training loader: augmented when the recipe asks for shifts or turns."""
        if not self.augmented:
            return super().loader(dataset, flatten)
        from tinygrad_mnist.data.augment import AugmentedLoader

        return AugmentedLoader(dataset, max_shift=self.max_shift, max_degrees=self.max_degrees,
                               batch_size=self.batch_size, shuffle=True, seed=self.seed, flatten=flatten)

    def scheduler(self, optimizer, engine: str):
        """Cosine to 0 over the epochs, or ×``gamma`` every ``step_size`` epochs (None: constant)."""
        if self.schedule == "none":
            return None
        if engine == "torch":
            import torch_baselines as tb

            return tb.schedule_by_name(self.schedule, optimizer, self.epochs, step_size=self.step_size,
                                       gamma=self.gamma)
        from tinygrad_mnist.optim import CosineAnnealingLR, StepLR

        if self.schedule == "cosine":
            return CosineAnnealingLR(optimizer, T_max=self.epochs)
        return StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)

    def penalty(self):
        """``Penalty(l1, l2)`` on the weights when either is set."""
        from tinygrad_mnist.nn import Penalty

        return Penalty(l1=self.l1, l2=self.l2) if (self.l1 or self.l2) else None


def recipe(engine: str, layers, **fields) -> Recipe:
    """A :class:`Recipe` for ``layers`` on ``engine`` (He-uniform weights unless ``init`` is given)."""
    fields.setdefault("init", "he_uniform")
    return Recipe(engine=engine, layers=tuple(layers), **fields)


def both_engines(r: Recipe, engines: Tuple[str, ...]):
    """``r`` once per engine (the same recipe otherwise)."""
    return [replace(r, engine=e) for e in engines]


def final(result: dict, split: str = "test") -> float:
    """The last epoch's accuracy on ``split`` in percent."""
    return 100.0 * result["history"][f"{split}_accuracy"][-1]



# -- helpers the CNN studies share ------------------------------------------------------------
def image_size(data: Data) -> int:
    """The side of the (square) images of a study's data (28 for MNIST, 8 for the digits)."""
    from experiments.common import load_splits

    return int(load_splits(data, log=None)[0].image_shape[0])


def describe_layer(d) -> str:
    """One layer description in a few words: ``conv 1→8 3×3 p1``, ``linear 1568→10`` ..."""
    a = d.kwargs
    if d.kind == "conv2d":
        return (f"conv {a['in_channels']}→{a['out_channels']} {a['kernel_size']}×{a['kernel_size']} "
                f"p{a.get('padding', 0)}")
    if d.kind == "linear":
        return f"linear {a['in_features']}→{a['out_features']}"
    if d.kind in ("maxpool2d", "avgpool2d"):
        return f"{d.kind[:3]}pool {a['kernel_size']}×{a['kernel_size']}/{a.get('stride') or a['kernel_size']}"
    if d.kind == "activation":
        return a["name"]
    if d.kind == "dropout":
        return f"dropout {a.get('p', 0.5):g}"
    if d.kind.startswith("batchnorm"):
        return f"{d.kind} {a['num_features']}"
    if d.kind == "residual":
        inner = " → ".join(describe_layer(b) for b in a["block"])
        return f"residual[{inner}]" + (f" + skip {describe_layer(a['projection'])}" if a.get("projection")
                                       else " + skip")
    return d.kind


def parameter_rows(model: str, layers) -> list:
    """One row per layer with learnable weights: ``{model, layer, description, parameters}``."""
    from tinygrad_mnist.models import num_parameters

    return [{"model": model, "layer": i, "description": describe_layer(d), "parameters": num_parameters((d,))}
            for i, d in enumerate(layers) if num_parameters((d,))]


def summary_row(result: dict, **labels) -> dict:
    """A results-table row: the labels, engine, parameters, final accuracies (%), loss, times."""
    h = result["history"]
    row = dict(labels)
    row.update(engine=result["run"]["engine"], parameters=result["parameters"], epochs=len(h["train_loss"]))
    if h["train_eval_accuracy"]:
        row["train_accuracy_pct"] = 100 * h["train_eval_accuracy"][-1]
    if h["val_accuracy"]:
        row["val_accuracy_pct"] = 100 * h["val_accuracy"][-1]
    row["test_accuracy_pct"] = 100 * h["test_accuracy"][-1]
    row["test_loss"] = h["test_loss"][-1]
    row["seconds"] = result["seconds"]
    row["seconds_per_epoch"] = float(np.median(h["epoch_seconds"]))
    row["diverged"] = "diverged" in result
    return row


def histories(results: dict) -> dict:
    """``{label: History}`` from ``{label: result}``."""
    from experiments.training import history_of

    return {k: history_of(r) for k, r in results.items()}


def training_time(results) -> str:
    """``"training 12 s"`` for one run, ``"training 9–85 s per run"`` for several: the wall
    seconds (``result["seconds"]``) of the results given (an iterable of result dicts)."""
    secs = [float(r["seconds"]) for r in results]
    if not secs:
        raise ValueError("training_time: no results")
    lo, hi = min(secs), max(secs)
    fmt = ".1f" if hi < 10 else ".0f"
    if len(secs) == 1 or format(lo, fmt) == format(hi, fmt):
        return f"training {hi:{fmt}} s" + ("" if len(secs) == 1 else " per run")
    return f"training {lo:{fmt}}–{hi:{fmt}} s per run"


def wrap(title: str, width: int = 110) -> str:
    """A long figure title broken into lines of at most ``width`` characters."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


__all__ = ["Recipe", "recipe", "both_engines", "final", "SCHEDULES", "image_size", "describe_layer",
           "parameter_rows", "summary_row", "histories", "training_time", "wrap"]
