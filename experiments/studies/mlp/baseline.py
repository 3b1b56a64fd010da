"""Baseline: how well does a two-layer fully connected network classify MNIST, and which digits does it get wrong?

Run (full: 20 epochs on all 60,000 training images, both engines, under a minute on 2 cores):

    python -m experiments run baseline
    python -m experiments run baseline --quick               # 5,000 images, 5 epochs

The classic network 784-64-10 (sigmoid hidden layer, N(0, 0.1²) weights, zero biases,
softmax cross-entropy) trained by plain SGD, on the numpy engine and on its torch twin
from the same initial weights and the same batches.  Per epoch: the training cost and
error of the end-of-epoch model on the whole training set (``History.train_eval_*``),
and the test cost and error.  The final test error is the last epoch's (no selection on
the test set); the misclassified test images are the numpy model's.

Writes into ``results/baseline/``: ``learning_curves.png`` (cost; accuracy),
``error_curves.png`` (train/test error per epoch), ``misclassified.png``,
``epochs.md/.csv``, ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from experiments.common import (DataConfig, dataset_label, error_pct, output_dir, per_epoch_rows, setup_info,
                                write_json, write_table)
from experiments.parallel import run_tasks
from experiments.training import Data, Run, history_of, train

NAME = "baseline"
QUESTION = ("How well does a two-layer fully connected network (784-64-10, sigmoid) classify MNIST, "
            "epoch by epoch, and which test digits does it get wrong?")


@dataclass
class Config(DataConfig):
    hidden: Tuple[int, ...] = (64,)
    activation: str = "sigmoid"
    init: str = "normal"
    init_std: float = 0.1
    optimizer: str = "sgd"
    lr: float = 0.5
    momentum: float = 0.0
    batch_size: int = 64
    epochs: int = 20
    seed: int = 0
    engines: Tuple[str, ...] = ("numpy", "torch")
    misclassified: int = 32          # how many misclassified test images to show

    def quick(self) -> "Config":
        return replace(self, train_size=5000, test_size=2000, epochs=5)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16,), epochs=2, misclassified=8)


def make_run(cfg: Config, engine: str, **changes) -> Run:
    """The :class:`Run` of this config on ``engine`` (``changes`` override fields)."""
    run = Run(engine=engine, hidden=tuple(cfg.hidden), activation=cfg.activation, init=cfg.init,
              init_std=cfg.init_std, optimizer=cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
              batch_size=cfg.batch_size, epochs=cfg.epochs, seed=cfg.seed)
    return replace(run, **changes)


def run(cfg: Config, log=print) -> dict:
    from experiments.common import load_splits
    from tinygrad_mnist.plots import plot_curves, plot_misclassified

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    tasks = [(make_run(cfg, e, extras=("test_outputs",)), data) for e in cfg.engines]
    results = dict(zip(cfg.engines, run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)))
    histories = {e: history_of(r) for e, r in results.items()}
    first = results[cfg.engines[0]]
    times = ", ".join(f"{e} {r['seconds']:.1f} s" for e, r in results.items())
    title = (f"MLP {first['architecture']} — {dataset_label(cfg.dataset)}, batch {cfg.batch_size}, "
             f"lr {cfg.lr:g}, {cfg.epochs} epochs, training {times}")
    plot_curves(histories, out / "learning_curves.png", title, train="full", splits=("train", "test"))
    plot_curves(histories, out / "error_curves.png", title, train="full", splits=("train", "test"), error=True)
    write_table(out, "epochs", per_epoch_rows(histories))

    rows, finals = [], {}
    for e, r in results.items():
        h = histories[e]
        finals[e] = {"test_error_pct": error_pct(h.test_accuracy[-1]), "test_loss": h.test_loss[-1],
                     "train_error_pct": error_pct(h.train_eval_accuracy[-1]), "train_loss": h.train_eval_loss[-1],
                     "seconds": r["seconds"]}
        rows.append({"engine": e, "architecture": r["architecture"], "parameters": r["parameters"],
                     "epochs": h.epochs, "train_error_pct": finals[e]["train_error_pct"],
                     "test_error_pct": finals[e]["test_error_pct"],
                     "test_accuracy_pct": 100 * h.test_accuracy[-1], "seconds": r["seconds"]})
    log("\n" + write_table(out, "summary", rows))

    _, _, test = load_splits(data, log=None)
    predicted = results[cfg.engines[0]]["test_outputs"].argmax(axis=1)
    n_wrong = int((predicted != test.labels).sum())
    plot_misclassified(test.images, test.labels, predicted, out / "misclassified.png", limit=cfg.misclassified,
                       title=f"{cfg.engines[0]} MLP {first['architecture']}: the first {min(cfg.misclassified, n_wrong)} "
                             f"of {n_wrong} misclassified test images (true → predicted)")
    wrong_by_class = np.bincount(test.labels[predicted != test.labels], minlength=test.num_classes)
    metrics = {"setup": setup_info(cfg, first, engines=list(cfg.engines), train_curve="whole training set, end of epoch"),
               "final": finals, "n_misclassified": n_wrong,
               "misclassified_by_true_class": wrong_by_class.tolist()}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    """The report's reading of the numbers."""
    finals = metrics["final"]
    parts = [f"{e}: {f['test_error_pct']:.2f}% test error ({f['train_error_pct']:.2f}% on the training set) "
             f"after {metrics['setup']['epochs']} epochs in {f['seconds']:.1f} s" for e, f in finals.items()]
    by_class = metrics["misclassified_by_true_class"]
    worst = int(np.argmax(by_class))
    text = (f"The {metrics['setup']['architecture']} network ({metrics['setup']['parameters']:,} parameters) reaches "
            + "; ".join(parts) + ". ")
    if len(finals) == 2:
        a, b = (f["test_error_pct"] for f in finals.values())
        text += f"The two engines, started from the same weights on the same batches, differ by {abs(a - b):.2f} points. "
    gap = [f["test_error_pct"] - f["train_error_pct"] for f in finals.values()][0]
    text += (f"The test error is {gap:+.2f} points from the training error, "
             f"{'a small generalisation gap' if abs(gap) < 1.5 else 'a visible generalisation gap'}. "
             f"Of the {metrics['n_misclassified']} misclassified test images, the true digit {worst} is the most "
             f"frequent ({by_class[worst]}). The curves plot the training cost of the end-of-epoch model on the "
             f"whole training set, directly comparable with the test cost.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
