"""Time to accuracy: training wall time until the test accuracy first reaches a threshold.

Run::

    tinygrad-mnist bench --time-to-accuracy                      # 99.0% and 99.5%, 5 seeds, both engines
    tinygrad-mnist bench --time-to-accuracy --threshold 0.99 --seeds 5 --json results/speedrun/tta.json
    python -m benchmarks.time_to_accuracy --validation --recipe fast-99.0 --engines numpy   # tuning

What is inside the clock: only training — turning each uint8 batch into floats (and
shifting it, where the recipe augments), forward, backward and the optimiser step with
its learning-rate update.  Reading MNIST, building the model and every evaluation on the
10,000 test images are outside it: the clock stops before each evaluation and restarts
after it.  Each run evaluates ``evals_per_epoch`` times per epoch and records the curve
of (training seconds, test accuracy) pairs; the time to a threshold is the first point
of the curve at or above it (None when no point reaches it).  A run stops early once it
has passed the highest threshold its recipe is responsible for.

Both engines train the same recipe from the same description (``LayerDesc``), the same
initial weights per seed (numpy's copied into the torch twin), the same batches in the
same order (one ``DataLoader``/``AugmentedLoader`` per seed, replayed with ``set_epoch``)
and the same learning rate at every step, with ``threads`` threads each (threadpoolctl
for numpy's BLAS, ``torch.set_num_threads``).

Each threshold has its own recipe (:data:`benchmarks.speedrun_recipes.RECIPES`), fixed in
code; how they were tuned (on a validation split of the training images only, never on
the test images) is in ``docs/speedrun-tuning.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_mnist.data import DataLoader, Dataset
from tinygrad_mnist.data.augment import AugmentedLoader

from .speedrun_recipes import GOAL_SHARE, GOALS, RECIPES, Recipe, recipe_for

#: (training seconds, test accuracy) after each training segment
Curve = List[Tuple[float, float]]

# -- the bookkeeping ---------------------------------------------------------------------
def race(train_segment: Callable[[int], None], evaluate: Callable[[], float], segments: int,
         stop_at: Optional[float] = None, clock: Callable[[], float] = time.perf_counter,
         log: Optional[Callable[[str], None]] = None) -> Curve:
    """Train ``segments`` segments, evaluating after each one with the clock stopped.

    ``curve[k] = (Σ_{j ≤ k} seconds of train_segment(j), evaluate() after segment k)``.
    Stops after the first evaluation ≥ ``stop_at`` (when given).
    """
    curve: Curve = []
    elapsed = 0.0
    for k in range(segments):
        t0 = clock()
        train_segment(k)
        elapsed += clock() - t0
        accuracy = float(evaluate())
        curve.append((elapsed, accuracy))
        if log is not None:
            log(f"      {elapsed:7.1f} s  {100 * accuracy:6.2f}%")
        if stop_at is not None and accuracy >= stop_at:
            break
    return curve


def first_crossing(curve: Sequence[Sequence[float]], threshold: float) -> Optional[float]:
    """Training seconds of the first point of ``curve`` with accuracy ≥ ``threshold``; None if none."""
    for seconds, accuracy in curve:
        if accuracy >= threshold:
            return float(seconds)
    return None


def segment_batches(loader: DataLoader, epochs: int, evals_per_epoch: int) -> Iterator[Iterator[Tuple[Any, Any]]]:
    """The batches of ``epochs`` epochs of ``loader``, cut into ``evals_per_epoch`` nearly equal segments per epoch."""
    n = len(loader)
    cuts = [round(i * n / evals_per_epoch) for i in range(evals_per_epoch + 1)]
    for e in range(epochs):
        loader.set_epoch(e)
        batches = iter(loader)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            yield (next(batches) for _ in range(b - a))


# -- the two engines ---------------------------------------------------------------------
class _NumpyRun:
    """The numpy model, loss, optimiser and per-step schedule of one recipe and seed."""

    def __init__(self, recipe: Recipe, seed: int, total_steps: int):
        from tinygrad_mnist import SoftmaxCrossEntropy
        from tinygrad_mnist.models import build
        from tinygrad_mnist.optim import SGD, Adam, CosineAnnealingLR, LinearWarmup

        self.model = build(recipe.layers, seed=seed, needs_input_grad=False)
        self.loss = SoftmaxCrossEntropy()
        params = self.model.parameters()
        self.opt = (Adam(params, lr=recipe.lr) if recipe.optimizer == "adam"
                    else SGD(params, lr=recipe.lr, momentum=recipe.momentum))
        warm = max(1, round(recipe.warmup * total_steps))
        cosine = CosineAnnealingLR(self.opt, T_max=max(1, total_steps - warm))  # ≥ 1 step even on tiny data
        self.schedule = LinearWarmup(self.opt, warm, after=cosine)

    def lr(self) -> float:
        return float(self.opt.lr)

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        from tinygrad_mnist.train import train_step

        train_step(self.model, self.loss, self.opt, x, y)
        self.schedule.step()

    def accuracy(self, test: Dataset) -> float:
        self.model.eval()
        correct = 0
        for x, y in DataLoader(test, 1000, shuffle=False, flatten=False):
            correct += int((self.model.forward(x).argmax(axis=1) == y).sum())
        self.model.train()
        return correct / len(test)


class _TorchRun:
    """The torch twin of a :class:`_NumpyRun`: same weights, same learning rate at every step."""

    def __init__(self, recipe: Recipe, twin_of: _NumpyRun):
        import torch

        import torch_baselines

        self.torch = torch
        self.model = torch_baselines.numpy_to_torch(twin_of.model, torch_baselines.build(recipe.layers))
        self.loss = torch.nn.CrossEntropyLoss()
        params = self.model.parameters()
        self.opt = (torch.optim.Adam(params, lr=recipe.lr) if recipe.optimizer == "adam"
                    else torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum))
        self.schedule = twin_of.schedule  # read only: lr_at(t) of the same schedule
        self.t = 0
        self._set_lr()

    def _set_lr(self) -> None:
        for group in self.opt.param_groups:
            group["lr"] = self.schedule.lr_at(self.t)

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        from torch_baselines import train_step

        train_step(self.model, self.loss, self.opt, self.torch.from_numpy(x), self.torch.from_numpy(y))
        self.t += 1
        self._set_lr()

    def accuracy(self, test: Dataset) -> float:
        torch = self.torch
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in DataLoader(test, 1000, shuffle=False, flatten=False):
                correct += int((self.model(torch.from_numpy(x)).argmax(dim=1).numpy() == y).sum())
        self.model.train()
        return correct / len(test)


def make_loader(recipe: Recipe, train: Dataset, seed: int) -> DataLoader:
    """The seed's batches: shuffled by ``seed``, shifted at random when the recipe augments."""
    if recipe.max_shift:
        return AugmentedLoader(train, max_shift=recipe.max_shift, batch_size=recipe.batch_size, seed=seed,
                               flatten=False)
    return DataLoader(train, recipe.batch_size, shuffle=True, seed=seed, flatten=False)


def run_seed(recipe: Recipe, engine: str, seed: int, train: Dataset, test: Dataset, stop_at: Optional[float],
             threads: int, log: Optional[Callable[[str], None]] = None) -> Curve:
    """One timed training run of ``recipe`` on ``engine`` ("numpy" or "torch"): its curve."""
    from .machine import thread_limit

    if engine not in ("numpy", "torch"):
        raise ValueError(f"time_to_accuracy: engine must be 'numpy' or 'torch', got {engine!r}")
    loader = make_loader(recipe, train, seed)
    total = recipe.total_steps(len(train))
    numpy_run = _NumpyRun(recipe, seed, total)
    side: Any = numpy_run if engine == "numpy" else _TorchRun(recipe, numpy_run)
    segments = segment_batches(loader, recipe.epochs, recipe.evals_per_epoch)

    def train_segment(_k: int) -> None:
        for x, y in next(segments):
            side.step(x, y)

    torch_threads = None
    if engine == "torch":
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        with thread_limit(threads):
            return race(train_segment, lambda: side.accuracy(test), recipe.epochs * recipe.evals_per_epoch,
                        stop_at=stop_at, log=log)
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)


# -- the measurement ---------------------------------------------------------------------
@dataclass
class TTAConfig:
    """One ``--time-to-accuracy`` run."""

    thresholds: Tuple[float, ...] = (0.99, 0.995)
    seeds: int = 5
    engines: Tuple[str, ...] = ("numpy", "torch")
    threads: int = 2
    validation: bool = False    # tune: train on the first 50,000 training images, "test" on the last 10,000
    train_size: int = 0         # 0: all; smoke runs use fewer
    test_size: int = 0
    epochs: int = 0             # 0: the recipe's; smoke runs shorten it
    data: str = "mnist"
    data_dir: Optional[str] = None
    recipe: Optional[str] = None  # run this recipe for every threshold (tuning)
    stop_early: bool = True
    json: Optional[str] = None
    plot: Optional[str] = None


def load_split(cfg: TTAConfig) -> Tuple[Dataset, Dataset]:
    """``(train, test)``; with ``validation`` the first 50,000 training images and the last 10,000."""
    from .models import load_data

    train, test = load_data(cfg.data, cfg.data_dir, 0, 0, 0)
    if cfg.validation:
        n = len(train)
        k = n - n // 6
        train, test = train.subset(np.arange(k), name="train[:50k]"), train.subset(np.arange(k, n), name="train[50k:]")
    if cfg.train_size:
        train = train.first(min(cfg.train_size, len(train)))
    if cfg.test_size:
        test = test.first(min(cfg.test_size, len(test)))
    return train, test


def plan(cfg: TTAConfig) -> Dict[str, List[float]]:
    """recipe name → the thresholds it is timed for (one run per recipe, engine and seed)."""
    out: Dict[str, List[float]] = {}
    by_name = {r.name: r for r in RECIPES.values()}
    if cfg.recipe is not None and cfg.recipe not in by_name:
        raise ValueError(f"time_to_accuracy: unknown recipe {cfg.recipe!r}; choose one of {sorted(by_name)}")
    for t in cfg.thresholds:
        if not 0 < t < 1:
            raise ValueError(f"time_to_accuracy: thresholds are accuracies in (0, 1), got {t}")
        name = cfg.recipe or recipe_for(t).name
        out.setdefault(name, []).append(float(t))
    return out


def measure(cfg: TTAConfig, log: Callable[..., None] = print) -> List[dict]:
    """Run every recipe, engine and seed; one record per engine and threshold."""
    import torch  # noqa: F401  (loaded before the thread limits, so they reach it)

    from .machine import describe_machine

    if cfg.seeds < 1 or cfg.threads < 1:
        raise ValueError("time_to_accuracy: seeds and threads must be positive")
    by_name = {r.name: r for r in RECIPES.values()}
    work = plan(cfg)
    train, test = load_split(cfg)
    machine = describe_machine()
    scored = "validation (last 10,000 training images)" if cfg.validation else "test"
    log(f"{machine['cpu']}, {cfg.threads} thread(s); {len(train):,} training / {len(test):,} {scored} images")
    log("clock: training only (batches to float, augmentation, forward, backward, step); data loading and "
        "evaluations are excluded")
    records = []
    for name, thresholds in work.items():
        recipe = by_name[name]
        if cfg.epochs:
            recipe = replace(recipe, epochs=cfg.epochs)
        stop_at = max(thresholds) if cfg.stop_early else None
        log(f"\n{recipe.describe()}" + (f"; a run stops once it reaches {100 * stop_at:.2f}%" if stop_at else ""))
        curves: Dict[str, List[Curve]] = {e: [] for e in cfg.engines}
        for seed in range(cfg.seeds):
            for engine in cfg.engines:  # interleaved: numpy, torch, numpy, torch, ...
                log(f"  {engine}, seed {seed}")
                curves[engine].append(run_seed(recipe, engine, seed, train, test, stop_at, cfg.threads, log))
        for engine in cfg.engines:
            for t in thresholds:
                records.append({
                    "engine": engine, "threshold": t,
                    "seconds": [first_crossing(c, t) for c in curves[engine]],
                    "recipe": recipe.name, "seeds": list(range(cfg.seeds)),
                    "curves": [[list(p) for p in c] for c in curves[engine]],
                    "threads": cfg.threads, "machine": machine["cpu"],
                    "goal_s": GOALS.get(t), "scored_on": scored, "stopped_early": cfg.stop_early,
                    "recipe_detail": recipe.to_dict(), "n_train": len(train), "n_test": len(test),
                })
    return records


def goal_met(record: dict) -> Optional[bool]:
    """True when at least ⌈0.8 n⌉ of the n seeds (4 of 5) reached the threshold within its
    goal; a seed that never reached it counts as missed; None for a threshold without a goal."""
    goal = record.get("goal_s")
    if goal is None:
        return None
    seconds = record["seconds"]
    within = sum(s is not None and s <= goal for s in seconds)
    return within >= math.ceil(GOAL_SHARE * len(seconds))


def format_table(records: List[dict]) -> str:
    """engine, threshold, seconds per seed, median, seeds within the goal, goal met/missed (Markdown)."""
    lines = ["| engine | threshold | recipe | seconds per seed | median s | within goal | goal |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        secs = r["seconds"]
        reached = [s for s in secs if s is not None]
        # a seed that never reached it counts as slower than all others for the median
        med = statistics.median([s if s is not None else float("inf") for s in secs])
        per = ", ".join("–" if s is None else f"{s:.1f}" for s in secs)
        goal = r.get("goal_s")
        within = "–" if goal is None else f"{sum(s <= goal for s in reached)}/{len(secs)} ≤ {goal:g} s"
        met = goal_met(r)
        lines.append(f"| {r['engine']} | {100 * r['threshold']:.2f}% | {r['recipe']} | {per} "
                     f"| {'never' if med == float('inf') else f'{med:.1f}'} | {within} "
                     f"| {'–' if met is None else ('met' if met else 'missed')} |")
    return "\n".join(lines)


def plot_curves(records: List[dict], path) -> Path:
    """Test accuracy against training wall time, every seed a thin line, one colour per engine and recipe."""
    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    seen = set()
    colours = {"numpy": "tab:blue", "torch": "tab:orange"}
    styles = ["-", "--", ":"]
    recipes = sorted({r["recipe"] for r in records})
    for r in records:
        key = (r["engine"], r["recipe"])
        if key in seen:
            continue
        seen.add(key)
        for i, c in enumerate(r["curves"]):
            xs, ys = [p[0] for p in c], [100 * p[1] for p in c]
            ax.plot(xs, ys, styles[recipes.index(r["recipe"]) % 3], color=colours.get(r["engine"], "grey"), lw=0.8,
                    alpha=0.8, label=f"{r['engine']}, {r['recipe']}" if i == 0 else None)
    for t in sorted({r["threshold"] for r in records}):
        ax.axhline(100 * t, color="k", lw=0.6, ls=":")
        ax.text(ax.get_xlim()[1], 100 * t, f" {100 * t:.1f}%", va="center", fontsize=8)
    lo = min((100 * p[1] for r in records for c in r["curves"] for p in c), default=98.0)
    ax.set_ylim(max(lo, 97.0), 100.0)
    ax.set_xlabel("training wall time (s; data loading and evaluation excluded)")
    ax.set_ylabel(f"{records[0]['scored_on'] if records else 'test'} accuracy (%)")
    ax.set_title(f"Time to accuracy, {records[0]['threads'] if records else '?'} threads")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run(cfg: TTAConfig, log: Callable[..., None] = print) -> List[dict]:
    """Measure, print the table, write the JSON and the figure when asked."""
    records = measure(cfg, log)
    log("\n" + format_table(records))
    if cfg.json:
        path = Path(cfg.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=1))
        log(f"wrote {path}")
    if cfg.plot:
        log(f"wrote {plot_curves(records, cfg.plot)}")
    return records


def add_arguments(parser: argparse.ArgumentParser, standalone: bool = True) -> argparse.ArgumentParser:
    """The time-to-accuracy options; ``standalone=False`` leaves out those ``bench`` already has
    (``--threads``, ``--json``, ``--data``, ``--data-dir``, ``--train-size``, ``--test-size``)."""
    d = TTAConfig()
    group = parser.add_argument_group("time to accuracy (--time-to-accuracy)")
    group.add_argument("--threshold", dest="thresholds", type=float, nargs="+", default=list(d.thresholds),
                       help="test accuracies to time (each has its recipe)")
    group.add_argument("--seeds", type=int, default=d.seeds, help="seeds 0..N-1 per engine")
    group.add_argument("--engines", nargs="+", choices=["numpy", "torch"], default=list(d.engines),
                       help="engines to time, interleaved per seed")
    group.add_argument("--validation", action="store_true",
                       help="tuning: train on the first 50,000 training images, score the last 10,000")
    group.add_argument("--recipe", default=None, help="time this recipe for every threshold (default: each its own)")
    group.add_argument("--no-stop-early", dest="stop_early", action="store_false",
                       help="run every recipe to its last epoch (default: stop past the highest threshold)")
    group.add_argument("--plot", default=None, metavar="PNG", help="accuracy against training time")
    if standalone:
        group.add_argument("--threads", type=int, default=d.threads, help="BLAS / torch threads")
        group.add_argument("--json", default=None, metavar="FILE", help="write the records here")
        group.add_argument("--data", choices=["mnist", "synthetic"], default=d.data)
        group.add_argument("--data-dir", default=None, help="MNIST IDX directory (default: $TINYGRAD_MNIST_DATA)")
        group.add_argument("--train-size", type=int, default=0, help="training images to use (0: all)")
        group.add_argument("--test-size", type=int, default=0, help="test images to use (0: all)")
        group.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs (0: keep)")
    return parser


def config_from_args(args: argparse.Namespace, standalone: bool = True) -> TTAConfig:
    """The config of parsed :func:`add_arguments` options (``bench``'s ``--threads`` list: its first)."""
    values = {k: v for k, v in vars(args).items() if k in TTAConfig.__dataclass_fields__}
    if not standalone:
        values.pop("epochs", None)  # bench's --epochs counts measured epochs, not a recipe's length
    if isinstance(values.get("threads"), list):
        values["threads"] = values["threads"][0]
    for key in ("thresholds", "engines"):
        if key in values:
            values[key] = tuple(values[key])
    return TTAConfig(**values)


def run_from_args(args: argparse.Namespace, log: Callable[..., None] = print) -> int:
    """``tinygrad-mnist bench --time-to-accuracy ...``: the exit status."""
    run(config_from_args(args, standalone=False), log)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_accuracy", description=__doc__.split("\n")[0])
    run(config_from_args(add_arguments(parser).parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
