"""Regularisation: what do dropout, weight decay, batch norm, a schedule and augmentation change in the course CNN?

Run (full: 4 models × 2 engines, 10 epochs each on 50,000 MNIST training images with
10,000 held out for validation; about 18 minutes with ``--jobs 2`` on 2 cores, one thread
per training: ``--epochs 4`` took 426 s):

    python -m experiments run regularization
    python -m experiments run regularization --quick         # 5,000 images, 3 epochs
    python -m experiments run regularization --epochs 4 --engines numpy

The vanilla course CNN (no regulariser) and three variations, all with Adam, the same
initial weights for the shared layers' shapes, the same batches, on both engines:

1. ``dropout + weight decay``: dropout ``dropout`` before the classifier, and Adam's L2
   weight decay ``weight_decay`` (added to the gradient, torch's ``Adam(weight_decay=)``);
2. ``batch norm + cosine``: a BatchNorm2d after every convolution and a cosine learning
   rate from ``lr`` to 0 over the epochs;
3. ``augmentation + BN + dropout``: random shifts of up to ``max_shift`` pixels and
   rotations of up to ``max_degrees`` degrees per image (a new draw every epoch, the same
   for both engines, ``tinygrad_mnist.data.augment.AugmentedLoader``), with batch norm and
   dropout.

Over- or under-fitting is read from the learning curves: the cost and the accuracy of the
end-of-epoch model on the whole (unaugmented) training set against those on the
validation set, a row per model, each row titled with its batch size, learning rate,
epochs and training time (the exercise asks for these on every learning-curve plot).  The
best of the three variations (highest final validation accuracy; the vanilla CNN is the
reference, not a candidate) gets the confusion matrix on the test set and 10
misclassified test images, one per true class where the model errs on that class, filled
up with further errors otherwise, each captioned with its true and predicted class.
Every hyperparameter of the optimiser, the loss, the schedule, the augmentation and the
layers, framework defaults included, is listed in ``hyperparameters.md``.

Writes into ``results/regularization/``: ``curves.png`` (cost and accuracy, train vs
validation, a row per model, both engines), ``val_accuracy.png``, ``summary.md/.csv``,
``hyperparameters.md/.csv``, ``confusion_matrix.png``, ``misclassified.png``,
``metrics.json`` (with the curves' numbers under ``curves``).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Tuple

import numpy as np

from experiments.common import (
    DataConfig,
    dataset_label,
    output_dir,
    write_json,
    write_table,
)
from experiments.parallel import run_tasks
from experiments.recipes import image_size, recipe, summary_row, training_time, wrap
from experiments.training import Data, train

NAME = "regularization"
QUESTION = ("What do dropout with weight decay, batch norm with a cosine schedule, and augmentation with batch norm "
            "and dropout change in the course CNN's fit, judged from the training and validation curves?")
VARIANTS = ("vanilla", "dropout + weight decay", "batch norm + cosine", "augmentation + BN + dropout")


@dataclass
class Config(DataConfig):
    val_size: int = 10000
    variants: Tuple[str, ...] = VARIANTS
    channels: Tuple[int, ...] = (8, 16, 32)
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 10
    init: str = "he_uniform"
    dropout: float = 0.3
    weight_decay: float = 5e-4
    max_shift: int = 2
    max_degrees: float = 10.0
    misclassified: int = 10          # misclassified test images shown for the best variation
    engines: Tuple[str, ...] = ("numpy", "torch")
    seed: int = 0
    threads: int = 1                 # BLAS / torch threads per training, both engines (0: library defaults)

    def quick(self) -> "Config":
        return replace(self, val_size=2000, train_size=5000, test_size=2000, epochs=3)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", val_size=300, train_size=300, test_size=0, epochs=2, channels=(4, 8, 8),
                       max_shift=1)


def variant(cfg: Config, name: str, size: int):
    """``(layers, recipe fields)`` of one named variant."""
    from tinygrad_mnist.models import CourseCNNSpec

    spec: Dict[str, Any] = dict(channels=tuple(cfg.channels), image_size=size)
    if name == "vanilla":
        return CourseCNNSpec(**spec).layers(), {}
    if name == "dropout + weight decay":
        return CourseCNNSpec(dropout=cfg.dropout, **spec).layers(), {"weight_decay": cfg.weight_decay}
    if name == "batch norm + cosine":
        return CourseCNNSpec(batch_norm=True, **spec).layers(), {"schedule": "cosine"}
    if name == "augmentation + BN + dropout":
        return (CourseCNNSpec(batch_norm=True, dropout=cfg.dropout, **spec).layers(),
                {"max_shift": cfg.max_shift, "max_degrees": cfg.max_degrees})
    raise ValueError(f"regularization: unknown variant {name!r}; choose from {VARIANTS}")


#: The defaults of each optimiser's other hyperparameters (the same in the numpy engine and in torch).
OPTIMIZER_DEFAULTS = {
    "adam": "betas 0.9, 0.999; eps 1e-8; amsgrad off",
    "adamw": "betas 0.9, 0.999; eps 1e-8; amsgrad off; decoupled weight decay",
    "sgd": "momentum 0; dampening 0; nesterov off",
    "rmsprop": "alpha 0.99; eps 1e-8; momentum 0; centered off",
    "adagrad": "lr_decay 0; initial accumulator 0; eps 1e-10",
}

OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


def optimizer_text(name: str) -> str:
    """The optimiser with its defaults spelled out: ``"adam (betas 0.9, 0.999; eps 1e-8; amsgrad off)"``."""
    return f"{name} ({OPTIMIZER_DEFAULTS[name]})" if name in OPTIMIZER_DEFAULTS else name


def hyperparameter_rows(cfg: Config, n_train: int, n_val: int) -> list:
    """Every setting of every variant, the engines' defaults spelled out: optimiser, loss,
    schedule, regularisers, augmentation, initialisation, data and seeds."""
    rows = []
    for name in cfg.variants:
        _, extra = variant(cfg, name, 28)
        bn = "BN" in name or "batch norm" in name
        drop = "dropout" in name
        augmented = bool(extra.get("max_shift") or extra.get("max_degrees"))
        rows.append({
            "model": name, "optimizer": optimizer_text(cfg.optimizer), "lr": cfg.lr,
            "schedule": ("cosine from lr to 0 over the epochs (T_max = epochs, eta_min 0, stepped per epoch)"
                         if extra.get("schedule") == "cosine" else "constant"),
            "weight_decay": extra.get("weight_decay", 0.0),
            "l1_l2_penalty": "none",
            "dropout": f"p = {cfg.dropout:g} before the linear layer (inverted, off at evaluation)" if drop else "none",
            "batch_norm": ("after each conv (eps 1e-5, momentum 0.1, affine, running statistics at evaluation)"
                           if bn else "none"),
            "augmentation": (f"every training image, new draw each epoch: whole-pixel shift ≤ {cfg.max_shift} px "
                             f"per axis and rotation ≤ {cfg.max_degrees:g}°, uniform; bilinear, zero fill"
                             if augmented else "none"),
            "loss": "softmax cross-entropy, mean over the batch (no label smoothing, no class weights)",
            "batch_size": cfg.batch_size, "epochs": cfg.epochs,
            "shuffle": f"reshuffled every epoch (seed {cfg.seed})",
            "inputs": "pixels / 255 in [0, 1], no mean subtraction",
            "init": f"{cfg.init} weights, zero biases (seed {cfg.seed})",
            "seed": cfg.seed, "split_seed": cfg.split_seed, "n_train": n_train, "n_val": n_val})
    return rows


def pick_misclassified(labels: np.ndarray, predicted: np.ndarray, n: int = 10) -> list:
    """Indices of ``n`` misclassified images: the first error of each true class (class
    order), then further errors in index order until there are ``n`` (fewer when the
    model makes fewer errors)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    wrong = np.flatnonzero(labels != predicted)
    picks = []
    for c in np.unique(labels[wrong]):
        picks.append(int(wrong[labels[wrong] == c][0]))
    rest = [int(i) for i in wrong if int(i) not in set(picks)]
    return (picks + rest)[:n]


def curve_data(results: dict, variants, engines) -> dict:
    """``{variant: {engine: {train_cost, val_cost, train_accuracy_pct, val_accuracy_pct, seconds}}}``:
    what the learning curves draw, the training figures being the end-of-epoch model's on
    the whole training set."""
    out: Dict[str, Dict[str, Any]] = {}
    for name in variants:
        out[name] = {}
        for e in engines:
            h = results[(name, e)]["history"]
            out[name][e] = {"train_cost": list(h["train_eval_loss"]), "val_cost": list(h["val_loss"]),
                            "train_accuracy_pct": [100 * a for a in h["train_eval_accuracy"]],
                            "val_accuracy_pct": [100 * a for a in h["val_accuracy"]],
                            "seconds": results[(name, e)]["seconds"]}
    return out


def row_title(name: str, run: dict, seconds: dict) -> str:
    """A learning-curve row's title: the variant, its batch size, learning rate (and
    schedule), epochs, and each engine's training time."""
    schedule = {"cosine": " (cosine to 0)", "step": " (step decay)"}.get(run.get("schedule", "none"), "")
    lr = f"lr {run['lr']:g}{schedule}"
    times = ", ".join(f"{e} {s:.1f} s" for e, s in seconds.items())
    return f"{name} — batch {run['batch_size']}, {lr}, {run['epochs']} epochs\ntraining {times}"


def plot_curve_rows(curves: dict, titles: dict, path, suptitle: str):
    """A row per variant: cost (left) and accuracy (right), train (whole set) solid and
    validation dashed, one colour per engine; returns ``path``."""
    from matplotlib.ticker import MaxNLocator

    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(len(curves), 2, figsize=(11, 3.3 * len(curves) + 0.6), squeeze=False)
    for (name, by_engine), (ax_cost, ax_acc) in zip(curves.items(), axes, strict=True):
        for k, (e, c) in enumerate(by_engine.items()):
            epochs = range(1, len(c["train_cost"]) + 1)
            marker = "o" if k == 0 else "x"
            for ax, key in ((ax_cost, "cost"), (ax_acc, "accuracy_pct")):
                ax.plot(epochs, c[f"train_{key}"], "-", color=f"C{k}", marker=marker, markersize=3,
                        label=f"{e}: train (whole set)")
                ax.plot(epochs, c[f"val_{key}"], "--", color=f"C{k}", marker=marker, markersize=3,
                        label=f"{e}: validation")
        ax_cost.set(xlabel="epoch", ylabel="cost (mean cross-entropy)")
        ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
        for ax, what in ((ax_cost, "cost"), (ax_acc, "accuracy")):
            ax.set_title(f"{what}: {titles[name]}", fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(cfg: Config, log=print) -> dict:
    from experiments.common import load_splits
    from tinygrad_mnist.metrics import confusion_matrix
    from tinygrad_mnist.plots import plot_confusion_matrix, plot_image_grid, plot_lines

    if not cfg.val_size:
        raise ValueError("regularization: val_size must be positive (the curves compare training and validation)")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    size = image_size(data)
    plan = {}
    for name in cfg.variants:
        layers, extra = variant(cfg, name, size)
        for e in cfg.engines:
            plan[(name, e)] = recipe(e, layers, init=cfg.init, optimizer=cfg.optimizer, lr=cfg.lr,
                                     batch_size=cfg.batch_size, epochs=cfg.epochs, seed=cfg.seed, threads=cfg.threads,
                                     eval_train=True, extras=("test_outputs",), **extra)
    results = dict(zip(plan, run_tasks(train, [(r, data) for r in plan.values()], cfg.jobs, cfg.scheduler, log),
                       strict=True))

    rows = []
    for (name, _e), r in results.items():
        h = r["history"]
        rows.append(summary_row(r, model=name, gap_pct=100 * (h["train_eval_accuracy"][-1] - h["val_accuracy"][-1]),
                                best_val_accuracy_pct=100 * max(h["val_accuracy"]), best_epoch=h["best_epoch"]))
    log("\n" + write_table(out, "summary", rows))
    any_r = next(iter(results.values()))
    write_table(out, "hyperparameters", hyperparameter_rows(cfg, any_r["n_train"], any_r["n_val"]))

    title = (f"Course CNN and regularisers — {dataset_label(cfg.dataset)} ({any_r['n_train']:,} training, "
             f"{any_r['n_val']:,} validation images), {OPTIMIZER_NAMES.get(cfg.optimizer, cfg.optimizer)} "
             f"lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs, {training_time(results.values())}")
    title = wrap(title)
    e0 = cfg.engines[0]
    curves = curve_data(results, cfg.variants, cfg.engines)
    titles = {n: row_title(n, results[(n, e0)]["run"], {e: results[(n, e)]["seconds"] for e in cfg.engines})
              for n in cfg.variants}
    plot_curve_rows(curves, titles, out / "curves.png", title)
    plot_lines([(f"{e}: validation cost", {n: results[(n, e)]["history"]["val_loss"] for n in cfg.variants})
                for e in cfg.engines] + [(f"{e}: validation accuracy (%)", {
                    n: [100 * a for a in results[(n, e)]["history"]["val_accuracy"]] for n in cfg.variants})
                                           for e in cfg.engines], out / "val_accuracy.png", "epoch", "", title)

    candidates = [k for k in results if k[0] != "vanilla"] or list(results)
    best = max(candidates, key=lambda k: (results[k]["history"]["val_accuracy"][-1], k[1] == e0))
    _, _, test = load_splits(data, log=None)
    predicted = results[best]["test_outputs"].argmax(axis=1)
    matrix = confusion_matrix(test.labels, predicted, test.num_classes)
    best_acc = 100 * results[best]["history"]["test_accuracy"][-1]
    plot_confusion_matrix(matrix, out / "confusion_matrix.png",
                          f"Best variation: {best[0]} ({best[1]}), {best_acc:.2f}% test accuracy — confusion matrix")
    picks = pick_misclassified(test.labels, predicted, cfg.misclassified)
    if picks:
        classes = len(set(int(test.labels[i]) for i in picks))
        plot_image_grid(test.images[picks], [f"#{i}\ntrue {test.labels[i]} / predicted {predicted[i]}" for i in picks],
                        out / "misclassified.png", wrap(f"Best variation ({best[0]}, {best[1]}): {len(picks)} "
                        f"misclassified test images, {classes} true classes (the first error of each class first)", 80),
                        ncols=5)
    off = matrix - np.diag(np.diag(matrix))
    pairs = sorted(((int(off[t, p]), t, p) for t in range(len(off)) for p in range(len(off)) if off[t, p]),
                   reverse=True)
    metrics = {"setup": {"architecture": "course CNN " + "-".join(map(str, cfg.channels)) + " + regularisers",
                         "parameters": {n: results[(n, e0)]["parameters"] for n in cfg.variants},
                         "optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs,
                         "initializer": cfg.init, "seed": cfg.seed, "dataset": dataset_label(cfg.dataset),
                         "n_train": any_r["n_train"], "n_val": any_r["n_val"], "n_test": any_r["n_test"],
                         "engines": list(cfg.engines), "threads": cfg.threads,
                         "train_curve": "whole training set, end of epoch, eval mode"},
               "runs": rows, "best": {"model": best[0], "engine": best[1], "test_accuracy_pct": best_acc,
                                      "misclassified_shown": len(picks),
                                      "misclassified_classes": sorted({int(test.labels[i]) for i in picks}),
                                      "hardest_pairs": [
                                          {"true": t, "predicted": p, "count": c} for c, t, p in pairs[:3]]},
               "confusion_matrix": matrix.tolist(), "curves": curves}
    write_json(out / "metrics.json", metrics)
    log("\nAnswer: " + describe(metrics, asdict(cfg)))
    return metrics


WHY = {"dropout + weight decay": "dropout trains an ensemble of thinned networks and weight decay pulls the weights "
                                 "toward zero: both lower the capacity the model can spend on memorising",
       "batch norm + cosine": "batch norm re-centres every layer's inputs (faster, steadier steps, a little noise "
                              "from the batch statistics) and the cosine schedule takes smaller steps at the end",
       "augmentation + BN + dropout": "shifted and rotated copies show the model new images every epoch, the "
                                      "strongest guard against memorising on MNIST"}


def describe(metrics: dict, config: dict) -> str:
    runs = {(r["model"], r["engine"]): r for r in metrics["runs"]}
    e0 = metrics["setup"]["engines"][0]
    text = ""
    for (name, e), r in runs.items():
        if e != e0:
            continue
        fit = ("over-fits (training well above validation)" if r["gap_pct"] > 1.0 else
               "under-fits or is still learning (training at or below validation)" if r["gap_pct"] < 0.0 else
               "fits well (training and validation close)")
        text += (f"{name}: {r['train_accuracy_pct']:.2f}% train vs {r['val_accuracy_pct']:.2f}% validation (gap "
                 f"{r['gap_pct']:+.2f}), {r['test_accuracy_pct']:.2f}% test, {r['seconds']:.0f} s — it {fit}")
        others = [runs[(name, x)] for x in metrics["setup"]["engines"] if x != e0]
        text += "".join(f"; {o['engine']}: {o['val_accuracy_pct']:.2f}% validation, {o['test_accuracy_pct']:.2f}% "
                        f"test, {o['seconds']:.0f} s" for o in others)
        text += (f" ({WHY[name]}). " if name in WHY else ". ")
    b = metrics["best"]
    hard = ", ".join(f"{p['true']}→{p['predicted']} ({p['count']})" for p in b["hardest_pairs"])
    text += (f"The best variation by validation accuracy is {b['model']} ({b['engine']}), "
             f"{b['test_accuracy_pct']:.2f}% on the test set; its most frequent confusions are {hard or 'none'}. ")
    if any(r["gap_pct"] < 0 for r in metrics["runs"]):
        text += ("A negative gap with augmentation or dropout is expected: the training images are evaluated clean "
                 "and without dropout, while the model learned from harder, perturbed versions.")
    else:
        worst = max(metrics["runs"], key=lambda r: r["gap_pct"])
        text += (f"Every gap stays at or below {worst['gap_pct']:.2f} points ({worst['model']}, {worst['engine']}) "
                 f"after {metrics['setup']['epochs']} epochs: the CNN hardly over-fits "
                 f"{metrics['setup']['n_train']:,} images this early, "
                 f"so the regularisers mostly change the speed of learning; augmentation, the strongest, needs more "
                 f"epochs than this to pay off.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
