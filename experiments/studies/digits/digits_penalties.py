"""Digits penalties: what do L1 and L2 penalties (λ = 0.001) and a ComplexMLP with dropout and batch norm change
on the 8×8 digits?

Run (full: 4 models, 50 epochs each, on both engines; 15 s with ``--jobs 2`` on 2 cores):

    python -m experiments run digits_penalties
    python -m experiments run digits_penalties --quick       # 20 epochs

Models, all Adam (lr ``lr``; betas 0.9, 0.999; eps 1e-8), batch ``batch_size``, He-uniform
weights, on scikit-learn's 8×8 digits with ``val_size`` training images held out:

- ``plain``: the SimpleMLP 64-32-10, ReLU (2,410 parameters), no penalty;
- ``L1``: the same with ``λ Σ|w|`` added to the loss (weights only, not biases);
- ``L2``: the same with ``λ Σw²`` added to the loss;
- ``ComplexMLP``: 64-128-64-10 with ``Linear → BatchNorm1d → ReLU → Dropout(p)`` per
  hidden layer (17,610 parameters).

The penalty is the numpy ``Penalty`` object on both engines (``torch_baselines.fit``
adds the same sum to the torch loss).  Besides the curves the study counts how many
weights each model drives to near zero (``|w| < 1e-3``): L1's subgradient ``λ sign(w)``
pushes small weights to exactly zero, L2's ``2λw`` only shrinks them.

The classification results are shown as in ``digits_lab`` (Lab 4 step 5, repeated for
the ComplexMLP in step 10): the first ``show`` test images with the predicted and the
true label, errors in red, for the SimpleMLP (``plain``) and the ComplexMLP, on the
first engine.

Writes into ``results/digits_penalties/``: ``curves.png`` (training vs validation
accuracy per model, both engines), ``val_accuracy.png``, ``weights.png`` (histogram of
the trained first-layer weights), ``predictions_simple_mlp.png`` and
``predictions_complex_mlp.png`` (test images with predicted and true labels, errors in
red), ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from typing import Tuple

import numpy as np

from experiments.common import DataConfig, output_dir, write_json, write_table
from experiments.parallel import run_tasks
from experiments.recipes import recipe, summary_row, training_time, wrap
from experiments.training import Data, train

NAME = "digits_penalties"
QUESTION = ("On the 8×8 digits, do L1 or L2 penalties (λ = 0.001) improve the SimpleMLP, and does a ComplexMLP with "
            "dropout and batch norm beat it?")
MODELS = ("plain", "L1", "L2", "ComplexMLP")
#: The models whose classification results are drawn, and the file each goes to.
PREDICTION_FIGURES = {"plain": "predictions_simple_mlp.png", "ComplexMLP": "predictions_complex_mlp.png"}


@dataclass
class Config(DataConfig):
    dataset: str = "digits"
    val_size: int = 300
    models: Tuple[str, ...] = MODELS
    hidden: int = 32
    complex_hidden: Tuple[int, ...] = (128, 64)
    dropout: float = 0.2
    penalty: float = 1e-3            # λ of L1 and of L2
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 50
    init: str = "he_uniform"
    engines: Tuple[str, ...] = ("numpy", "torch")
    seed: int = 0
    threads: int = 1                 # BLAS / torch threads per training, both engines (0: library defaults)
    show: int = 24                   # test images shown with their predictions

    def quick(self) -> "Config":
        return replace(self, epochs=20)

    def smoke(self) -> "Config":
        return replace(self, epochs=2, train_size=300)


def model(cfg: Config, name: str):
    """``(layers, recipe fields)`` of a named model."""
    from torch_baselines import complex_mlp_layers, simple_mlp_layers

    if name == "plain":
        return simple_mlp_layers(64, cfg.hidden), {}
    if name == "L1":
        return simple_mlp_layers(64, cfg.hidden), {"l1": cfg.penalty}
    if name == "L2":
        return simple_mlp_layers(64, cfg.hidden), {"l2": cfg.penalty}
    if name == "ComplexMLP":
        return complex_mlp_layers(64, tuple(cfg.complex_hidden), cfg.dropout), {}
    raise ValueError(f"digits_penalties: unknown model {name!r}; choose from {MODELS}")


def plot_predictions(images, labels, predicted, path, title: str, show: int = 24):
    """The first ``show`` test images captioned "pred p / true t", errors in red — the
    classification results as ``digits_lab`` draws them (``tinygrad_mnist.plots.plot_image_grid``)."""
    from tinygrad_mnist.plots import plot_image_grid

    n = min(show, len(labels))
    pairs = list(zip(predicted[:n], labels[:n], strict=True))
    return plot_image_grid(images[:n], [f"pred {p} / true {t}" for p, t in pairs], path,
                           colors=["black" if p == t else "red" for p, t in pairs], title=title)


def run(cfg: Config, log=print) -> dict:
    from experiments.common import load_splits
    from tinygrad_mnist.plots import plot_lines, pyplot

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    plan = {}
    for name in cfg.models:
        layers, extra = model(cfg, name)
        for e in cfg.engines:
            plan[(name, e)] = recipe(e, layers, optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size,
                                     epochs=cfg.epochs, init=cfg.init, seed=cfg.seed, threads=cfg.threads,
                                     eval_train=True, extras=("weights", "test_outputs"), **extra)
    results = dict(zip(plan, run_tasks(train, [(r, data) for r in plan.values()], cfg.jobs, cfg.scheduler, log),
                       strict=True))
    rows = []
    for (name, _e), r in results.items():
        w = np.concatenate([v.ravel() for k, v in r["weights"].items() if k.endswith("weight") and v.ndim == 2])
        h = r["history"]
        rows.append(summary_row(r, model=name, gap_pct=100 * (h["train_eval_accuracy"][-1] - h["val_accuracy"][-1]),
                                best_val_accuracy_pct=100 * max(h["val_accuracy"]),
                                near_zero_weights_pct=100 * float(np.mean(np.abs(w) < 1e-3)),
                                mean_abs_weight=float(np.abs(w).mean())))
    log("\n" + write_table(out, "summary", rows))

    any_r = next(iter(results.values()))
    title = (f"digits 8×8 ({any_r['n_train']} training, {any_r['n_val']} validation images), Adam lr {cfg.lr:g}, "
             f"batch {cfg.batch_size}, {cfg.epochs} epochs, λ = {cfg.penalty:g}, {training_time(results.values())}")
    title = wrap(title)
    styles, panels = {}, []
    for name in cfg.models:
        lines = {}
        for e in cfg.engines:
            h = results[(name, e)]["history"]
            lines[f"{e}: train (whole set)"] = [100 * a for a in h["train_eval_accuracy"]]
            lines[f"{e}: validation"] = [100 * a for a in h["val_accuracy"]]
            styles[f"{e}: train (whole set)"] = "-" if e == cfg.engines[0] else "-."
            styles[f"{e}: validation"] = "--" if e == cfg.engines[0] else ":"
        panels.append((f"{name} ({results[(name, cfg.engines[0])]['parameters']:,} parameters)", lines))
    plot_lines(panels, out / "curves.png", "epoch", "accuracy (%)", title, styles=styles)
    plot_lines([(f"{e}: validation accuracy", {n: [100 * a for a in results[(n, e)]["history"]["val_accuracy"]]
                                               for n in cfg.models}) for e in cfg.engines],
               out / "val_accuracy.png", "epoch", "validation accuracy (%)", title)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in cfg.models:
        w0 = results[(name, cfg.engines[0])]["weights"]["0.weight"].ravel()
        ax.hist(w0, bins=80, histtype="step", label=f"{name} (first layer, {cfg.engines[0]})", log=True)
    ax.set(xlabel="weight", ylabel="count (log)",
           title=wrap("Trained first-layer weights — " + title.replace("\n", " "), 90))
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "weights.png", dpi=110)
    plt.close(fig)

    _, _, test = load_splits(data, log=None)
    e0 = cfg.engines[0]
    predictions = {}
    for name, fname in PREDICTION_FIGURES.items():
        if name not in cfg.models:
            continue
        r = results[(name, e0)]
        predicted = r["test_outputs"].argmax(axis=1)
        n = min(cfg.show, len(test))
        wrong = int((predicted[:n] != test.labels[:n]).sum())
        label = "SimpleMLP" if name == "plain" else name
        accuracy = 100 * r["history"]["test_accuracy"][-1]
        title = wrap(f"{e0} {label} ({r['parameters']:,} parameters, {accuracy:.1f}% test accuracy): predictions on "
                     f"the first {n} test images, {wrong} error{'' if wrong == 1 else 's'} in red", 80)
        plot_predictions(test.images, test.labels, predicted, out / fname, title, show=cfg.show)
        predictions[label] = {"file": fname, "shown": n, "errors_shown": wrong}

    complex_sizes = "-".join(map(str, cfg.complex_hidden))
    metrics = {"setup": {"architecture": f"SimpleMLP 64-{cfg.hidden}-10 relu / ComplexMLP 64-{complex_sizes}-10 + BN "
                                         f"+ dropout {cfg.dropout:g}",
                         "parameters": {n: results[(n, cfg.engines[0])]["parameters"] for n in cfg.models},
                         "activation": "relu", "optimizer": f"{cfg.optimizer} (betas 0.9, 0.999; eps 1e-8)",
                         "lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "initializer": cfg.init,
                         "seed": cfg.seed, "dataset": "digits 8×8", "n_train": any_r["n_train"],
                         "n_val": any_r["n_val"], "n_test": any_r["n_test"], "penalty_lambda": cfg.penalty,
                         "engines": list(cfg.engines), "threads": cfg.threads},
               "runs": rows, "predictions": predictions}
    write_json(out / "metrics.json", metrics)
    log("\nAnswer: " + describe(metrics, asdict(cfg)))
    return metrics


def describe(metrics: dict, config: dict) -> str:
    e0 = metrics["setup"]["engines"][0]
    runs = {r["model"]: r for r in metrics["runs"] if r["engine"] == e0}
    text = f"Final figures ({e0}): " + "; ".join(
        f"{n}: {r['val_accuracy_pct']:.1f}% validation (best {r['best_val_accuracy_pct']:.1f}%), "
        f"{r['test_accuracy_pct']:.1f}% test, train–validation gap {r['gap_pct']:+.1f}, "
        f"{r['near_zero_weights_pct']:.0f}% of weights below 1e-3"
        for n, r in runs.items()) + ". "
    if "plain" in runs:
        p = runs["plain"]
        for n in ("L1", "L2", "ComplexMLP"):
            if n in runs:
                d = runs[n]["val_accuracy_pct"] - p["val_accuracy_pct"]
                text += f"{n} is {d:+.1f} points from plain on validation. "
    if "L1" in runs and "L2" in runs:
        text += (f"L1 leaves {runs['L1']['near_zero_weights_pct']:.0f}% of the weights near zero against "
                 f"{runs['L2']['near_zero_weights_pct']:.0f}% for L2: its constant pull λ·sign(w) zeroes small weights "
                 f"(a sparse model), while L2's pull 2λw fades as a weight shrinks. ")
    if "plain" in runs:
        gap = runs["plain"]["gap_pct"]
        text += (f"The plain model's train–validation gap is {gap:+.1f} points: "
                 + ("it over-fits, which is what a penalty counters. " if gap > 2 else
                    "it hardly over-fits, so a penalty has little to correct. "))
    shown = metrics.get("predictions", {})
    if shown:
        text += "Of the first test images drawn with their predictions, " + ", ".join(
            f"the {k} misclassifies {v['errors_shown']} of {v['shown']}" for k, v in shown.items()) + ". "
    if "ComplexMLP" in runs and "plain" in runs:
        c = runs["ComplexMLP"]
        text += (f"The ComplexMLP has {c['parameters'] / runs['plain']['parameters']:.1f}× the parameters; dropout and "
                 f"batch norm keep its gap at {c['gap_pct']:+.1f} points.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
