"""One training run with the regularisers the CNN studies vary, on either engine.

:class:`Recipe` is a :class:`~experiments.training.Run` (model as layer descriptions,
optimiser, batch size, epochs, seed, engine) plus weight decay, L1/L2 penalties, a
learning-rate schedule and data augmentation; :func:`train_recipe` trains it and returns
the same plain dict as :func:`experiments.training.train` (history, seconds, parameter
count, extras), so it runs serially, in joblib processes or on dask workers through
:func:`experiments.parallel.run_tasks`.

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

import contextlib
import time
from dataclasses import asdict, dataclass, replace
from typing import Optional, Tuple

import numpy as np

from experiments.training import Data, Run, architecture
from tinygrad_mnist.train import TrainingDivergedError

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
    """

    weight_decay: Optional[float] = None
    l1: float = 0.0
    l2: float = 0.0
    schedule: str = "none"
    step_size: int = 5
    gamma: float = 0.1
    max_shift: int = 0
    max_degrees: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Recipe: schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    @property
    def augmented(self) -> bool:
        return bool(self.max_shift or self.max_degrees)

    def optimizer_kwargs(self) -> dict:
        """The keyword arguments both engines' optimisers get (besides the parameters)."""
        kwargs = {"lr": self.lr}
        if self.optimizer == "sgd" and self.momentum:
            kwargs["momentum"] = self.momentum
        if self.weight_decay is not None:
            kwargs["weight_decay"] = self.weight_decay
        return kwargs


def recipe(engine: str, layers, **fields) -> Recipe:
    """A :class:`Recipe` for ``layers`` on ``engine`` (He-uniform weights unless ``init`` is given)."""
    fields.setdefault("init", "he_uniform")
    return Recipe(engine=engine, layers=tuple(layers), **fields)


def loader_for(r: Recipe, dataset, flatten: bool):
    """The training loader of a recipe: augmented when it asks for shifts or turns."""
    from tinygrad_mnist.data import DataLoader
    from tinygrad_mnist.data.augment import AugmentedLoader

    kwargs = dict(batch_size=r.batch_size, shuffle=True, seed=r.seed, flatten=flatten)
    if r.augmented:
        return AugmentedLoader(dataset, max_shift=r.max_shift, max_degrees=r.max_degrees, **kwargs)
    return DataLoader(dataset, **kwargs)


def train_recipe(r: Recipe, data: Data) -> dict:
    """Train one recipe; returns a plain dict like :func:`experiments.training.train`."""
    from experiments.common import load_splits
    from tinygrad_mnist import build
    from tinygrad_mnist.data import DataLoader

    train_set, val, test = load_splits(data, log=None)
    layers = r.describe_layers(train_set.n_features, train_set.num_classes)
    flatten = not any(d.kind in ("conv2d", "residual") for d in layers)
    model = build(layers, seed=r.seed, init=r.init, init_kwargs=r.init_kwargs(), needs_input_grad=False)
    result = {"run": asdict(r), "data": asdict(data), "architecture": architecture(layers),
              "parameters": int(model.num_parameters()), "n_train": len(train_set),
              "n_val": 0 if val is None else len(val), "n_test": len(test), "dataset_name": train_set.name}
    result["run"]["layers"] = [repr(d) for d in layers]
    loader = loader_for(r, train_set, flatten)
    if r.engine == "torch":
        _warm_up_torch(layers, loader)
    fit_engine = _fit_numpy if r.engine == "numpy" else _fit_torch
    kept = {}

    def keep(epoch, history):
        kept["history"] = history
        return False

    with limited_threads(r.threads, r.engine):
        t0 = time.perf_counter()
        try:
            history, predict = fit_engine(r, layers, model, loader, val, test, flatten, keep)
        except TrainingDivergedError as err:   # a result too: the other runs of the study go on
            history, predict = padded(kept.get("history"), r, val is not None), None
            result["diverged"] = str(err)
        result["seconds"] = time.perf_counter() - t0
    model.eval()
    result["history"] = history.to_dict()
    if "test_outputs" in r.extras:
        outs = [np.asarray(predict(x)) if predict else np.zeros((len(y), train_set.num_classes))
                for x, y in DataLoader(test, 1000, shuffle=False, flatten=flatten)]
        result["test_outputs"] = np.concatenate(outs).astype(np.float32)
    if "weights" in r.extras:
        result["weights"] = {name: np.array(p.data) for name, p in model.named_parameters()}
    return result


def _warm_up_torch(layers, loader) -> None:
    """Torch's one-off costs in a process, before the clock starts: ``seed_everything``'s
    deterministic mode imports torch's compiler stack (seconds), and the first pass of a
    throwaway twin sets up the kernels."""
    import torch

    import torch_baselines as tb

    tb.seed_everything(0)
    with torch.random.fork_rng(devices=[]):
        model = tb.build(layers)
        x, _ = next(_plain_batches(loader))
        model(torch.from_numpy(np.ascontiguousarray(x))).sum().backward()


def _plain_batches(loader):
    """The first batch of ``loader``'s dataset, unshuffled and unaugmented, without touching its epoch."""
    from tinygrad_mnist.data import DataLoader

    return iter(DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False, flatten=loader.flatten))


@contextlib.contextmanager
def limited_threads(threads: int, engine: str):
    """Run with at most ``threads`` BLAS threads (numpy) or torch threads (0: as they are)."""
    if not threads:
        yield
        return
    if engine == "torch":
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            yield
        finally:
            torch.set_num_threads(before)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield


def _penalty(r: Recipe):
    from tinygrad_mnist.nn import Penalty

    return Penalty(l1=r.l1, l2=r.l2) if (r.l1 or r.l2) else None


def padded(history, r: Recipe, has_val: bool):
    """The history of a diverged run, its missing epochs filled with NaN (plots leave them out)."""
    from tinygrad_mnist.train import History

    h = history if history is not None else History()
    splits = ["train", "test"] + (["val"] if has_val else []) + (["train_eval"] if r.eval_train else [])
    for _ in range(h.epochs, r.epochs):
        h.batch_loss.append([float("nan")])
        h.batch_accuracy.append([float("nan")])
        h.epoch_seconds.append(float("nan"))
        for s in splits:
            getattr(h, f"{s}_loss").append(float("nan"))
            getattr(h, f"{s}_accuracy").append(float("nan"))
    return h


def _fit_numpy(r: Recipe, layers, model, loader, val, test, flatten, keep):
    from tinygrad_mnist import SoftmaxCrossEntropy, optimizer_by_name
    from tinygrad_mnist.optim import CosineAnnealingLR, StepLR
    from tinygrad_mnist.train import fit

    optimizer = optimizer_by_name(r.optimizer, model.parameters(), **r.optimizer_kwargs())
    scheduler = {"none": None, "cosine": lambda: CosineAnnealingLR(optimizer, T_max=r.epochs),
                 "step": lambda: StepLR(optimizer, step_size=r.step_size, gamma=r.gamma)}[r.schedule]
    history = fit(model, SoftmaxCrossEntropy(), optimizer, loader, val=val, test=test, epochs=r.epochs,
                  seed=r.seed, flatten=flatten, progress=False, eval_train=r.eval_train,
                  regularizer=_penalty(r), scheduler=scheduler() if scheduler else None, callbacks=[keep])
    return history, model.forward


def _fit_torch(r: Recipe, layers, numpy_model, loader, val, test, flatten, keep):
    """The torch twin: same layers, the numpy model's initial weights, the same batches."""
    import torch

    import torch_baselines as tb

    tb.seed_everything(r.seed)
    model = tb.build(layers)
    tb.numpy_to_torch(numpy_model, model)
    optimizer = tb.optimizer_by_name(r.optimizer, model.parameters(), **r.optimizer_kwargs())
    scheduler = None if r.schedule == "none" else tb.schedule_by_name(r.schedule, optimizer, r.epochs,
                                                                       step_size=r.step_size, gamma=r.gamma)
    loss_fn = torch.nn.CrossEntropyLoss()

    def whole_train_set(epoch, history):
        loss, acc = tb.evaluate(model, loss_fn, loader.dataset, flatten=flatten)
        history.train_eval_loss.append(float(loss))
        history.train_eval_accuracy.append(float(acc))
        return False

    history = tb.fit(model, loss_fn, optimizer, loader, val=val, test=test, epochs=r.epochs, seed=r.seed,
                     flatten=flatten, progress=False, regularizer=_penalty(r), scheduler=scheduler,
                     callbacks=([whole_train_set] if r.eval_train else []) + [keep])
    tb.torch_to_numpy(model, numpy_model)   # the trained weights, read from one place
    model.eval()

    @torch.no_grad()
    def predict(x):
        return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return history, predict


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
        return f"conv {a['in_channels']}→{a['out_channels']} {a['kernel_size']}×{a['kernel_size']} p{a.get('padding', 0)}"
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
        return f"residual[{inner}]" + (f" + skip {describe_layer(a['projection'])}" if a.get("projection") else " + skip")
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


__all__ = ["Recipe", "recipe", "train_recipe", "loader_for", "both_engines", "final", "SCHEDULES", "limited_threads", "padded",
           "image_size", "describe_layer", "parameter_rows", "summary_row", "histories", "training_time", "wrap"]
