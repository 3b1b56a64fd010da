"""Overfitting: how do training and validation accuracy drift apart with 2,000 training images instead of 50,000?

Run (full: the numpy MLP for 30 epochs and the torch LeNet for 15 epochs, each on 2,000
and on 50,000 images, with 10,000 validation images; several minutes on 2 cores):

    python -m experiments run overfitting --jobs 2
    python -m experiments run overfitting --quick

10,000 training images are held out as the validation set; the models train on the
first ``small_train`` (2,000) of the remaining images and on all of them (50,000).
Training accuracy is the end-of-epoch model's on its whole training set
(``History.train_eval_accuracy``), so it is comparable with the validation accuracy.

- the MLP: the baseline network (784-64-10 sigmoid, SGD) on the numpy engine (and its
  torch twin when ``mlp_engines`` has both);
- the tutorial CNN: LeNet (``torch_baselines.lenet_layers``: conv 6@5×5 → pool → conv
  16@5×5 → pool → 120 → 84 → 10, ReLU), Adam lr 0.001, batch 256, on torch, initial
  weights drawn by the numpy build (He-uniform) and copied over.

Writes into ``results/overfitting/``: ``mlp_accuracy.png`` and ``lenet_accuracy.png``
(two panels each: 2,000 and 50,000 images; training and validation accuracy per epoch),
``summary.md/.csv`` (final and best accuracies, the gap), ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from experiments.studies.mlp import baseline
from experiments.common import dataset_label, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.training import Data, Run, train

NAME = "overfitting"
QUESTION = ("How far do training and validation accuracy drift apart when the numpy MLP and the tutorial CNN "
            "(LeNet) train on 2,000 images instead of 50,000?")


@dataclass
class Config(baseline.Config):
    # the baseline's fields (the MLP and its optimiser; data), plus:
    val_size: int = 10000
    small_train: int = 2000
    large_train: int = 0               # 0: every training image left after the validation split
    epochs: int = 30                   # the MLP's
    mlp_engines: Tuple[str, ...] = ("numpy",)
    cnn: bool = True                   # also the tutorial CNN (torch LeNet)
    cnn_epochs: int = 15
    cnn_lr: float = 0.001
    cnn_batch_size: int = 256
    lenet_padding: int = 0

    def quick(self) -> "Config":
        return replace(self, val_size=5000, large_train=10000, test_size=2000, epochs=10, cnn_epochs=3)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", val_size=300, small_train=200, large_train=0, test_size=0,
                       hidden=(16,), epochs=3, cnn_epochs=2, lenet_padding=6)


def run(cfg: Config, log=print) -> dict:
    from torch_baselines import lenet_layers

    from tinygrad_mnist.plots import plot_lines

    if not cfg.val_size:
        raise ValueError("overfitting: val_size must be positive")
    out = output_dir(NAME, cfg.out)
    sizes = {"small": cfg.small_train, "large": cfg.large_train}
    datas = {k: replace(Data.of(cfg), train_size=v) for k, v in sizes.items()}
    plan, tasks = [], []
    for e in cfg.mlp_engines:
        for k in sizes:
            plan.append(("mlp", e, k))
            tasks.append((baseline.make_run(cfg, e), datas[k]))
    if cfg.cnn:
        from experiments.common import load_splits

        image_size = load_splits(datas["small"], log=None)[0].image_shape[0]
        layers = lenet_layers(cfg.lenet_padding, image_size=image_size)
        for k in sizes:
            plan.append(("lenet", "torch", k))
            tasks.append((Run(engine="torch", layers=layers, init="he_uniform", optimizer="adam", lr=cfg.cnn_lr,
                              batch_size=cfg.cnn_batch_size, epochs=cfg.cnn_epochs, seed=cfg.seed), datas[k]))
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)

    rows = []
    for (model, e, k), r in zip(plan, results):
        h = r["history"]
        rows.append({"model": model, "engine": e, "n_train": r["n_train"], "parameters": r["parameters"],
                     "epochs": len(h["val_accuracy"]),
                     "final_train_accuracy_pct": 100 * h["train_eval_accuracy"][-1],
                     "final_val_accuracy_pct": 100 * h["val_accuracy"][-1],
                     "gap_pct": 100 * (h["train_eval_accuracy"][-1] - h["val_accuracy"][-1]),
                     "best_val_accuracy_pct": 100 * max(h["val_accuracy"]),
                     "best_val_epoch": int(np.argmax(h["val_accuracy"])) + 1, "seconds": r["seconds"]})
    log("\n" + write_table(out, "summary", rows))
    for model, fname in (("mlp", "mlp_accuracy.png"), ("lenet", "lenet_accuracy.png")):
        chosen = [(p, r) for p, r in zip(plan, results) if p[0] == model]
        if not chosen:
            continue
        panels = []
        for k in sizes:
            lines = {}
            for (m, e, kk), r in chosen:
                if kk == k:
                    tag = "" if model == "lenet" or len(cfg.mlp_engines) == 1 else f"{e}: "
                    lines[f"{tag}train ({r['n_train']:,} images)"] = [100 * a for a in r["history"]["train_eval_accuracy"]]
                    lines[f"{tag}validation ({r['n_val']:,} images)"] = [100 * a for a in r["history"]["val_accuracy"]]
            n_train = next(r["n_train"] for (m, e, kk), r in chosen if kk == k)
            secs = next(r["seconds"] for (m, e, kk), r in chosen if kk == k)
            panels.append((f"{n_train:,} training images ({secs:.1f} s)", lines))
        r0 = chosen[0][1]
        what = (f"numpy MLP {r0['architecture']}, SGD, batch {cfg.batch_size}, lr {cfg.lr:g}, {cfg.epochs} epochs"
                if model == "mlp" else
                f"torch LeNet ({r0['parameters']:,} parameters), Adam, batch {cfg.cnn_batch_size}, lr {cfg.cnn_lr:g}, "
                f"{cfg.cnn_epochs} epochs")
        plot_lines(panels, out / fname, "epoch", "accuracy (%)", f"{what} — {dataset_label(cfg.dataset)}")
    metrics = {"setup": setup_info(cfg, results[0], train_sizes=[results[i]["n_train"] for i in range(len(sizes))],
                                   cnn="LeNet (torch), Adam" if cfg.cnn else None),
               "runs": rows}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    parts = []
    for r in metrics["runs"]:
        parts.append(f"{r['model']} ({r['engine']}) on {r['n_train']:,} images: {r['final_train_accuracy_pct']:.2f}% "
                     f"train vs {r['final_val_accuracy_pct']:.2f}% validation (gap {r['gap_pct']:+.2f} points, best "
                     f"validation {r['best_val_accuracy_pct']:.2f}% at epoch {r['best_val_epoch']})")
    text = "After training: " + "; ".join(parts) + ". "
    by_model = {}
    for r in metrics["runs"]:
        by_model.setdefault((r["model"], r["engine"]), []).append(r)
    for (model, engine), rs in by_model.items():
        if len(rs) == 2:
            small, large = sorted(rs, key=lambda r: r["n_train"])
            text += (f"For the {model}, the small training set {'widens' if small['gap_pct'] > large['gap_pct'] else 'does not widen'} "
                     f"the train–validation gap ({small['gap_pct']:.2f} vs {large['gap_pct']:.2f} points) and costs "
                     f"{large['best_val_accuracy_pct'] - small['best_val_accuracy_pct']:.2f} points of validation accuracy. ")
    text += "A growing gap while the validation accuracy stalls or falls is overfitting: the model memorises the few images it has."
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
