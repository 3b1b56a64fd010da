"""The tutorial CNN: LeNet (batch 256, Adam lr 0.001) on 2,000 and on 50,000 MNIST images, on both engines —
does it reach 98%?

Run (full: 15 epochs on 2,000 and on 50,000 training images, 10,000 held out for
validation, on the numpy engine and on torch; 193 s with ``--jobs 2`` on 2 cores, one thread
per training; measured: 98.58% numpy, 98.68% torch test accuracy on the full set):

    python -m experiments run lenet_tutorial
    python -m experiments run lenet_tutorial --quick         # 10,000 images for the large run, 3 epochs

The PyTorch tutorial's CNN adapted to 1×28×28 input (``torch_baselines.lenet_layers``):
conv 6@5×5 → ReLU → max-pool 2×2 → conv 16@5×5 → ReLU → max-pool 2×2 → flatten → 120 →
ReLU → 84 → ReLU → 10; 44,426 parameters without padding.  Adam (lr 0.001, betas 0.9,
0.999, eps 1e-8), batch 256, He-uniform weights drawn by the numpy build and copied into
the torch twin.  Its architecture is printed layer by layer with output shapes and
parameter counts (``architecture.md``, and in the log).

Writes into ``results/lenet_tutorial/``: ``architecture.md/.csv``, ``curves.png`` (train on
the whole set and validation accuracy per epoch; a panel per training size, both
engines), ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from experiments.common import (
    DataConfig,
    dataset_label,
    output_dir,
    write_json,
    write_table,
)
from experiments.parallel import run_tasks
from experiments.recipes import (
    describe_layer,
    image_size,
    recipe,
    summary_row,
    wrap,
)
from experiments.training import Data, train

NAME = "lenet_tutorial"
QUESTION = ("The tutorial CNN (LeNet, batch 256, Adam lr 0.001): its layers, shapes and parameters; how it trains on "
            "2,000 vs 50,000 images; does it reach 98% test accuracy on the full set, on both engines?")


@dataclass
class Config(DataConfig):
    val_size: int = 10000
    small_train: int = 2000
    large_train: int = 0             # 0: every training image left after the validation split
    padding: int = 0                 # 2: the tutorial's 32×32 geometry (61,706 parameters)
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 15
    init: str = "he_uniform"
    target_pct: float = 98.0
    engines: Tuple[str, ...] = ("numpy", "torch")
    seed: int = 0
    threads: int = 1                 # BLAS / torch threads per training, both engines (0: library defaults)

    def quick(self) -> "Config":
        return replace(self, val_size=2000, large_train=10000, test_size=2000, epochs=3)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", val_size=300, small_train=100, large_train=400, test_size=0,
                       epochs=2, padding=6)


def architecture_rows(layers, size: int) -> list:
    """Layer, output shape (one image) and parameter count, by a forward pass of the numpy model."""
    from tinygrad_mnist import build
    from tinygrad_mnist.models import num_parameters

    model = build(layers, seed=0)
    model.eval()
    x = np.zeros((1, 1, size, size), np.float32)
    rows = [{"layer": "input", "kind": "", "output_shape": "×".join(map(str, x.shape[1:])), "parameters": 0}]
    for i, (d, m) in enumerate(zip(layers, model, strict=True)):
        x = m.forward(x)
        rows.append({"layer": i, "kind": describe_layer(d), "output_shape": "×".join(map(str, x.shape[1:])),
                     "parameters": num_parameters((d,))})
    rows.append({"layer": "total", "kind": "", "output_shape": "", "parameters": num_parameters(layers)})
    return rows


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.plots import plot_lines
    from torch_baselines import lenet_layers

    if not cfg.val_size:
        raise ValueError("lenet_tutorial: val_size must be positive")
    out = output_dir(NAME, cfg.out)
    base = Data.of(cfg)
    size = image_size(base)
    layers = lenet_layers(cfg.padding, image_size=size)
    arch = architecture_rows(layers, size)
    log("\nLeNet, layer by layer (output shape of one image):\n" + write_table(out, "architecture", arch))

    sizes = {"small": cfg.small_train, "large": cfg.large_train}
    plan = {(k, e): (recipe(e, layers, init=cfg.init, optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size,
                            epochs=cfg.epochs, seed=cfg.seed, threads=cfg.threads, eval_train=True),
                     replace(base, train_size=n)) for k, n in sizes.items() for e in cfg.engines}
    results = dict(zip(plan, run_tasks(train, list(plan.values()), cfg.jobs, cfg.scheduler, log), strict=True))
    rows = []
    for (_k, _e), r in results.items():
        h = r["history"]
        rows.append(summary_row(r, n_train=r["n_train"],
                                gap_pct=100 * (h["train_eval_accuracy"][-1] - h["val_accuracy"][-1]),
                                best_val_accuracy_pct=100 * max(h["val_accuracy"]), best_epoch=h["best_epoch"]))
    log("\n" + write_table(out, "summary", rows))

    styles, panels = {}, []
    for k in sizes:
        lines = {}
        for e in cfg.engines:
            h = results[(k, e)]["history"]
            lines[f"{e}: train (whole set)"] = [100 * a for a in h["train_eval_accuracy"]]
            lines[f"{e}: validation"] = [100 * a for a in h["val_accuracy"]]
            styles[f"{e}: train (whole set)"] = "-o" if e == cfg.engines[0] else "-x"
            styles[f"{e}: validation"] = "--o" if e == cfg.engines[0] else "--x"
        r0 = results[(k, cfg.engines[0])]
        panels.append((f"{r0['n_train']:,} training images (" + ", ".join(
            f"{e} {results[(k, e)]['seconds']:.0f} s" for e in cfg.engines) + ")", lines))
    plot_lines(panels, out / "curves.png", "epoch", "accuracy (%)",
               wrap(f"LeNet ({arch[-1]['parameters']:,} parameters) — {dataset_label(cfg.dataset)}, "
                    f"Adam lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs, "
                    f"{results[('small', cfg.engines[0])]['n_val']:,} validation images"), styles=styles)
    large = {e: 100 * results[("large", e)]["history"]["test_accuracy"][-1] for e in cfg.engines}
    any_r = results[("large", cfg.engines[0])]
    metrics = {"setup": {"architecture": "LeNet: " + " → ".join(r["kind"] for r in arch[1:-1]),
                         "parameters": arch[-1]["parameters"], "activation": "relu",
                         "optimizer": f"{cfg.optimizer} (betas 0.9, 0.999; eps 1e-8)", "lr": cfg.lr,
                         "batch_size": cfg.batch_size, "epochs": cfg.epochs, "initializer": cfg.init, "seed": cfg.seed,
                         "dataset": dataset_label(cfg.dataset),
                         "n_train": [results[(k, cfg.engines[0])]["n_train"] for k in sizes],
                         "n_val": any_r["n_val"], "n_test": any_r["n_test"], "engines": list(cfg.engines),
                         "threads": cfg.threads},
               "architecture": arch, "runs": rows, "large_test_accuracy_pct": large, "target_pct": cfg.target_pct,
               "reaches_target": {e: v >= cfg.target_pct for e, v in large.items()}}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    text = (f"LeNet has {metrics['setup']['parameters']:,} parameters, "
            + ", ".join(f"{r['kind']} {r['parameters']:,}" for r in metrics["architecture"] if r["parameters"]
                        and r["layer"] != "total") + ". ")
    for r in metrics["runs"]:
        text += (f"{r['engine']} on {r['n_train']:,} images: {r['train_accuracy_pct']:.2f}% train vs "
                 f"{r['val_accuracy_pct']:.2f}% validation (gap {r['gap_pct']:+.2f}), {r['test_accuracy_pct']:.2f}% "
                 f"test, {r['seconds']:.0f} s. ")
    met = [e for e, ok in metrics["reaches_target"].items() if ok]
    text += (f"On the full set the {metrics['target_pct']:g}% test target is "
             f"{'met by ' + ' and '.join(met) if met else 'not met in this run'}. ")
    small, large = (min(metrics["runs"], key=lambda r: r["n_train"]), max(metrics["runs"], key=lambda r: r["n_train"]))
    text += (f"On {small['n_train']:,} images the {metrics['setup']['batch_size']}-image batches give only "
             f"{-(-small['n_train'] // metrics['setup']['batch_size'])} steps per epoch; the gap between training and "
             f"validation accuracy is {small['gap_pct']:+.2f} points against {large['gap_pct']:+.2f} on "
             f"{large['n_train']:,} images" + (", the mark of over-fitting a small set."
                                               if small["gap_pct"] > large["gap_pct"] + 1 else "."))
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
