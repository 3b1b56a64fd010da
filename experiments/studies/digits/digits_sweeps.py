"""Digits sweeps: how do the learning rate and the hidden width change the 8×8 digits SimpleMLP trained by Adam?

Run (full: 5 learning rates and 6 widths, 50 epochs each, on both engines; 22 s with
``--jobs 2`` on 2 cores):

    python -m experiments run digits_sweeps
    python -m experiments run digits_sweeps --quick          # 20 epochs

The SimpleMLP (64 → hidden → 10, ReLU; 2,410 parameters at hidden 32) on scikit-learn's
8×8 digits (1,437 training images, ``val_size`` of them held out for validation, 360 test
images), Adam (betas 0.9, 0.999; eps 1e-8), batch ``batch_size``, ``epochs`` epochs,
He-uniform weights:

- learning rate in {1e-1, 1e-2, 1e-3, 1e-4, 1e-5} at hidden width ``hidden``;
- hidden width in {16, 32, 64, 128, 256, 512} at learning rate ``lr``.

Writes into ``results/digits_sweeps/``: ``lr_sweep.png`` and ``hidden_sweep.png``
(validation accuracy per epoch, one line per value, one panel per engine),
``lr_summary.md/.csv``, ``hidden_summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any, Dict, Tuple

from experiments.common import DataConfig, output_dir, write_json, write_table
from experiments.parallel import run_tasks
from experiments.recipes import recipe, summary_row, training_time, wrap
from experiments.training import Data, train

NAME = "digits_sweeps"
QUESTION = ("On the 8×8 digits, how do the learning rate (1e-1 … 1e-5) and the hidden width (16 … 512) change the "
            "validation accuracy of the SimpleMLP trained by Adam for 50 epochs?")


@dataclass
class Config(DataConfig):
    dataset: str = "digits"
    val_size: int = 300
    lrs: Tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
    hiddens: Tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    hidden: int = 32                 # the width of the learning-rate sweep
    lr: float = 1e-3                 # the learning rate of the width sweep
    optimizer: str = "adam"
    batch_size: int = 32
    epochs: int = 50
    init: str = "he_uniform"
    engines: Tuple[str, ...] = ("numpy", "torch")
    seed: int = 0
    threads: int = 1                 # BLAS / torch threads per training, both engines (0: library defaults)

    def quick(self) -> "Config":
        return replace(self, epochs=20)

    def smoke(self) -> "Config":
        return replace(self, epochs=2, train_size=300, lrs=(1e-1, 1e-3), hiddens=(16, 64))


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.plots import plot_lines
    from torch_baselines import simple_mlp_layers

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    common = dict(optimizer=cfg.optimizer, batch_size=cfg.batch_size, epochs=cfg.epochs, init=cfg.init,
                  seed=cfg.seed, threads=cfg.threads, eval_train=False)
    plan = {}
    for lr in cfg.lrs:
        for e in cfg.engines:
            plan[("lr", lr, e)] = recipe(e, simple_mlp_layers(64, cfg.hidden), lr=lr, **common)
    for h in cfg.hiddens:
        for e in cfg.engines:
            plan[("hidden", h, e)] = recipe(e, simple_mlp_layers(64, h), lr=cfg.lr, **common)
    results = dict(zip(plan, run_tasks(train, [(r, data) for r in plan.values()], cfg.jobs, cfg.scheduler, log),
                       strict=True))
    any_r = next(iter(results.values()))
    metrics: Dict[str, Any]
    metrics = {"setup": {"architecture": "SimpleMLP 64-hidden-10 relu", "activation": "relu",
                         "optimizer": f"{cfg.optimizer} (betas 0.9, 0.999; eps 1e-8)",
                         "lr": {"swept": list(cfg.lrs), "width sweep": cfg.lr},
                         "hidden": {"swept": list(cfg.hiddens), "lr sweep": cfg.hidden},
                         "batch_size": cfg.batch_size, "epochs": cfg.epochs, "initializer": cfg.init, "seed": cfg.seed,
                         "dataset": "digits 8×8", "n_train": any_r["n_train"], "n_val": any_r["n_val"],
                         "n_test": any_r["n_test"], "engines": list(cfg.engines), "threads": cfg.threads}}
    for sweep, values, fmt in (("lr", cfg.lrs, "lr {:g}"), ("hidden", cfg.hiddens, "hidden {}")):
        rows = []
        for v in values:
            for e in cfg.engines:
                r = results[(sweep, v, e)]
                h = r["history"]
                rows.append(summary_row(r, **{sweep: v}, best_val_accuracy_pct=100 * max(h["val_accuracy"]),
                                        best_epoch=h["best_epoch"]))
        log("\n" + write_table(out, f"{sweep}_summary", rows))
        panels = [(f"{e}", {fmt.format(v): [100 * a for a in results[(sweep, v, e)]["history"]["val_accuracy"]]
                            for v in values}) for e in cfg.engines]
        fixed = f"hidden {cfg.hidden}" if sweep == "lr" else f"lr {cfg.lr:g}"
        plot_lines(panels, out / f"{sweep}_sweep.png", "epoch", "validation accuracy (%)",
                   wrap(f"SimpleMLP on digits 8×8, Adam, {fixed}, batch {cfg.batch_size}, {cfg.epochs} epochs — "
                        f"{'learning rate' if sweep == 'lr' else 'hidden width'} sweep ({any_r['n_train']} training, "
                        f"{any_r['n_val']} validation images), "
                        + training_time(results[(sweep, v, e)] for v in values for e in cfg.engines)))
        metrics[f"{sweep}_sweep"] = rows
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    e0 = metrics["setup"]["engines"][0]
    lr = [r for r in metrics["lr_sweep"] if r["engine"] == e0]
    hid = [r for r in metrics["hidden_sweep"] if r["engine"] == e0]
    best_lr = max(lr, key=lambda r: r["val_accuracy_pct"])
    best_h = max(hid, key=lambda r: r["val_accuracy_pct"])
    text = (f"Learning rate ({e0}, final validation accuracy): "
            + ", ".join(f"{r['lr']:g} → {r['val_accuracy_pct']:.1f}%" for r in lr)
            + f"; the best is {best_lr['lr']:g}. ")
    slow = [r for r in lr if r["val_accuracy_pct"] < best_lr["val_accuracy_pct"] - 10]
    if slow:
        setup = metrics["setup"]
        steps = setup["epochs"] * -(-setup["n_train"] // setup["batch_size"])
        low = min(r["lr"] for r in slow)
        text += ("Too small a rate (" + ", ".join(f"{r['lr']:g}" for r in slow) + ") has not converged after "
                 f"{setup['epochs']} epochs: an Adam step moves each weight by about the learning rate, so in "
                 f"{steps:,} steps a rate of {low:g} moves a weight by at most about {low * steps:.2g}. ")
    text += ("Hidden width: " + ", ".join(f"{r['hidden']} → {r['val_accuracy_pct']:.1f}% ({r['parameters']:,} "
                                          f"parameters)" for r in hid)
             + f"; the best is {best_h['hidden']}. Wider layers help up to a point, then only add parameters to an "
               "already separable problem. ")
    others = [e for e in metrics["setup"]["engines"] if e != e0]
    for e in others:
        d = max(abs(a["val_accuracy_pct"] - b["val_accuracy_pct"]) for a, b in zip(
            lr + hid, [r for r in metrics["lr_sweep"] + metrics["hidden_sweep"] if r["engine"] == e], strict=True))
        text += f"The {e} twin, from the same weights on the same batches, differs by at most {d:.1f} points."
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
