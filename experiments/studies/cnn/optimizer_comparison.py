"""Optimisers: how do Adam and SGD train the course CNN, and six optimisers the 8×8 digits MLP?

Run (full: the course CNN with Adam and with SGD, 5 epochs each on all 60,000 MNIST
training images, and the digits MLP with six optimisers for 50 epochs, all on both
engines; 180 s with ``--jobs 2`` on 2 cores, one thread per training):

    python -m experiments run optimizers
    python -m experiments run optimizers --quick             # 10,000 images, 2 epochs; digits 20 epochs

Part A, the course CNN (21,578 parameters, He-uniform weights): Adam with torch's
defaults (lr 0.001, betas (0.9, 0.999), eps 1e-8, no weight decay) against plain SGD
(lr ``sgd_lr``), from the same initial weights on the same batches.

Part B, the SimpleMLP on scikit-learn's 8×8 digits (64-32-10, ReLU, 2,410 parameters),
``digits_val_size`` training images held out for validation, batch ``digits_batch_size``,
50 epochs: SGD, SGD with momentum 0.9, Adam, AdamW, RMSprop and Adagrad, each at torch's
default learning rate where it has one (Adam/AdamW 0.001, RMSprop/Adagrad 0.01; AdamW's
decoupled weight decay 0.01, RMSprop's alpha 0.99) and ``digits_sgd_lr`` for SGD, which has
none.  The numpy optimisers implement the same update rules with the same defaults.

Writes into ``results/optimizers/``: ``cnn_curves.png`` (Adam vs SGD overlaid, cost;
accuracy), ``digits_val_accuracy.png`` (validation accuracy per epoch, one panel per
engine), ``cnn_summary.md/.csv``, ``digits_summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

from experiments.common import (
    DataConfig,
    dataset_label,
    output_dir,
    write_json,
    write_table,
)
from experiments.parallel import run_tasks
from experiments.recipes import (
    histories,
    image_size,
    recipe,
    summary_row,
    training_time,
    wrap,
)
from experiments.training import Data, train

NAME = "optimizers"
QUESTION = ("How do Adam (torch defaults) and SGD train the course CNN, and how do SGD, momentum, Adam, AdamW, "
            "RMSprop and Adagrad train the 8×8 digits MLP?")
#: Torch's default learning rates (SGD has none; momentum is SGD with momentum 0.9).
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2, "adagrad": 1e-2}


@dataclass
class Config(DataConfig):
    # part A: the course CNN on MNIST
    cnn_optimizers: Tuple[str, ...] = ("adam", "sgd")
    sgd_lr: float = 0.05
    adam_lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 5
    init: str = "he_uniform"
    channels: Tuple[int, ...] = (8, 16, 32)
    # part B: the SimpleMLP on the 8×8 digits
    digits: bool = True
    digits_optimizers: Tuple[str, ...] = ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad")
    digits_hidden: int = 32
    digits_sgd_lr: float = 0.01
    digits_batch_size: int = 32
    digits_epochs: int = 50
    digits_val_size: int = 300
    engines: Tuple[str, ...] = ("numpy", "torch")
    seed: int = 0
    threads: int = 1                 # BLAS / torch threads per training, both engines (0: library defaults)

    def quick(self) -> "Config":
        return replace(self, train_size=10000, test_size=2000, epochs=2, digits_epochs=20)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=300, test_size=0, epochs=2, channels=(4, 8, 8),
                       digits_epochs=3, digits_optimizers=("sgd", "momentum", "adam"))


def optimizer_fields(name: str, sgd_lr: float, adam_lr: Optional[float] = None) -> dict:
    """``Recipe`` fields of a named optimiser: ``"momentum"`` is SGD with momentum 0.9."""
    if name == "sgd":
        return {"optimizer": "sgd", "lr": sgd_lr}
    if name == "momentum":
        return {"optimizer": "sgd", "lr": sgd_lr, "momentum": 0.9}
    if name not in DEFAULT_LR:
        raise ValueError(f"optimizers: unknown optimiser {name!r}; choose sgd, momentum or one of {sorted(DEFAULT_LR)}")
    return {"optimizer": name, "lr": adam_lr if (adam_lr and name == "adam") else DEFAULT_LR[name]}


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.models import CourseCNNSpec
    from tinygrad_mnist.plots import plot_curves, plot_lines
    from torch_baselines import simple_mlp_layers

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    size = image_size(data)
    cnn = CourseCNNSpec(channels=tuple(cfg.channels), image_size=size).layers()
    plan = {}
    for o in cfg.cnn_optimizers:
        for e in cfg.engines:
            plan[("cnn", o, e)] = (recipe(e, cnn, init=cfg.init, batch_size=cfg.batch_size, epochs=cfg.epochs,
                                          seed=cfg.seed, threads=cfg.threads, eval_train=False,
                                          **optimizer_fields(o, cfg.sgd_lr, cfg.adam_lr)), data)
    digits = Data(dataset="digits", val_size=cfg.digits_val_size, split_seed=cfg.split_seed)
    if cfg.digits:
        mlp = simple_mlp_layers(64, cfg.digits_hidden, 10)
        for o in cfg.digits_optimizers:
            for e in cfg.engines:
                plan[("digits", o, e)] = (recipe(e, mlp, batch_size=cfg.digits_batch_size, epochs=cfg.digits_epochs,
                                                 seed=cfg.seed, threads=cfg.threads, eval_train=False,
                                                 **optimizer_fields(o, cfg.digits_sgd_lr)), digits)
    results = dict(zip(plan, run_tasks(train, list(plan.values()), cfg.jobs, cfg.scheduler, log), strict=True))

    cnn_res = {f"{o}, {e}": r for (part, o, e), r in results.items() if part == "cnn"}
    cnn_rows = [summary_row(r, optimizer=o, lr=r["run"]["lr"],
                            first_epoch_test_accuracy_pct=100 * r["history"]["test_accuracy"][0])
                for (p, o, e), r in results.items() if p == "cnn"]
    log("\n" + write_table(out, "cnn_summary", cnn_rows))
    title = (f"Course CNN, Adam (lr {cfg.adam_lr:g}, torch defaults) vs SGD (lr {cfg.sgd_lr:g}) — "
             f"{dataset_label(cfg.dataset)}, batch {cfg.batch_size}, {cfg.epochs} epochs; training "
             + ", ".join(f"{k} {r['seconds']:.0f} s" for k, r in cnn_res.items()))
    title = wrap(title)
    plot_curves(histories(cnn_res), out / "cnn_curves.png", title, train="running", splits=("train", "test"))

    metrics: Dict[str, Any]
    metrics = {"setup": {"architecture": f"course CNN {'-'.join(map(str, cfg.channels))} / SimpleMLP 64-"
                                         f"{cfg.digits_hidden}-10 relu",
                         "parameters": {"CNN": next(iter(cnn_res.values()))["parameters"]},
                         "optimizer": {"CNN": list(cfg.cnn_optimizers), "digits": list(cfg.digits_optimizers)},
                         "lr": {"adam": cfg.adam_lr, "sgd (CNN)": cfg.sgd_lr, "sgd (digits)": cfg.digits_sgd_lr,
                                **{k: v for k, v in DEFAULT_LR.items() if k != "adam"}},
                         "batch_size": {"CNN": cfg.batch_size, "digits": cfg.digits_batch_size},
                         "epochs": {"CNN": cfg.epochs, "digits": cfg.digits_epochs}, "initializer": cfg.init,
                         "seed": cfg.seed, "dataset": f"{dataset_label(cfg.dataset)} (CNN), digits 8×8 (MLP)",
                         "n_train": next(iter(cnn_res.values()))["n_train"], "engines": list(cfg.engines),
                         "threads": cfg.threads},
               "cnn": cnn_rows}
    if cfg.digits:
        dig = {(o, e): r for (p, o, e), r in results.items() if p == "digits"}
        rows = [summary_row(r, optimizer=o, lr=r["run"]["lr"], momentum=r["run"]["momentum"],
                            best_val_accuracy_pct=100 * max(r["history"]["val_accuracy"]),
                            best_epoch=r["history"]["best_epoch"]) for (o, e), r in dig.items()]
        log("\n" + write_table(out, "digits_summary", rows))
        panels = [(f"{e}: SimpleMLP 64-{cfg.digits_hidden}-10",
                   {f"{o} (lr {r['run']['lr']:g})": [100 * a for a in r["history"]["val_accuracy"]]
                    for (o, ee), r in dig.items() if ee == e})
                  for e in cfg.engines]
        first = next(iter(dig.values()))
        plot_lines(panels, out / "digits_val_accuracy.png", "epoch", "validation accuracy (%)",
                   wrap(f"Validation accuracy per optimiser — digits 8×8 ({first['n_train']} training, "
                        f"{first['n_val']} "
                        f"validation images), batch {cfg.digits_batch_size}, {cfg.digits_epochs} epochs, "
                        f"{training_time(dig.values())}"))
        metrics["digits"] = rows
        metrics["setup"]["parameters"]["digits MLP"] = first["parameters"]
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    cnn = metrics["cnn"]
    text = "Course CNN: " + "; ".join(
        f"{r['optimizer']} (lr {r['lr']:g}, {r['engine']}) {r['test_accuracy_pct']:.2f}% test accuracy, final test "
        f"cost {r['test_loss']:.3f}, {r['seconds']:.0f} s" for r in cnn) + ". "
    by = {(r["optimizer"], r["engine"]): r for r in cnn}
    if ("adam", "numpy") in by and ("sgd", "numpy") in by:
        d = by[("adam", "numpy")]["test_accuracy_pct"] - by[("sgd", "numpy")]["test_accuracy_pct"]
        level = abs(d) < 0.1
        text += ((f"Adam and SGD end level (within {abs(d):.2f} points, numpy engine). " if level else
                  f"Adam ends {abs(d):.2f} points {'above' if d > 0 else 'below'} SGD (numpy engine). ")
                 + "Adam scales each weight's step by its running gradient size, so weights with small or rare "
                   "gradients move as fast as steep ones; SGD's single learning rate must suit the steepest direction")
        first = [by[(o, "numpy")].get("first_epoch_test_accuracy_pct") for o in ("adam", "sgd")]
        text += (f" (after one epoch: Adam {first[0]:.2f}%, SGD {first[1]:.2f}%). " if None not in first else ". ")
    if "digits" in metrics:
        rows = [r for r in metrics["digits"] if r["engine"] == metrics["setup"]["engines"][0]]
        rows.sort(key=lambda r: -r["val_accuracy_pct"])
        text += (f"Digits MLP ({rows[0]['engine']}), final validation accuracy: "
                 + ", ".join(f"{r['optimizer']} {r['val_accuracy_pct']:.1f}% (best {r['best_val_accuracy_pct']:.1f}% "
                             f"at epoch {r['best_epoch']})" for r in rows) + ". ")
        worst = rows[-1]
        why = {"sgd": "plain gradient steps at a small learning rate",
               "adagrad": "steps that shrink as the squared gradients accumulate",
               "momentum": "momentum overshooting at this learning rate",
               }.get(worst["optimizer"], "its default step size")
        text += (f"The weakest here, {worst['optimizer']}, is held back by {why}; with "
                 f"{metrics['setup']['epochs']['digits']} "
                 f"epochs on 8×8 images the spread between optimisers is mostly a matter of speed.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
