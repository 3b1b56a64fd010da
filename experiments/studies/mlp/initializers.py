"""Initialisers: how do zero, N(0, 1) and Glorot initial weights change the training of a 2-hidden-layer MLP?

Run (full: 784-512-512-10 sigmoid, 10 epochs per initialiser on 60,000 images, both
engines; several minutes on 2 cores):

    python -m experiments run initializers --jobs 2
    python -m experiments run initializers --quick

Each initialiser draws the weights of every Linear layer (biases start at zero) of the
numpy model; the torch twin starts from a copy.  The figure is the mean training loss
per epoch (the running mean of the batch losses, as the classic assignment defines it).
Two numbers explain the curves:

- symmetry: zero weights give every hidden unit of a layer the same input, the same
  output and the same gradient, so the units stay identical copies forever; the number
  of distinct first-layer weight rows after training counts them;
- saturation: N(0, 1) weights on 784 inputs give pre-activations with a standard
  deviation in the tens, so most sigmoid units sit at 0 or 1 where σ' ≈ 0 and learning
  crawls; the share of first-layer activations outside [0.01, 0.99] at initialisation
  measures it.  Glorot scales the variance by 2 / (fan_in + fan_out) to avoid both.

Writes into ``results/initializers/``: ``training_loss.png``, ``losses.md/.csv`` (mean
training loss per epoch), ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from experiments.common import DataConfig, dataset_label, error_pct, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.training import Data, Run, train

NAME = "initializers"
QUESTION = ("How do zero, N(0, 1) and Glorot initial weights change the training loss of a 2-hidden-layer MLP, "
            "and why (symmetry, saturation)?")
INITS = {"zero": ("zeros", 0.0), "normal(0,1)": ("normal", 1.0), "glorot": ("glorot_uniform", 0.0)}


@dataclass
class Config(DataConfig):
    inits: Tuple[str, ...] = tuple(INITS)
    hidden: Tuple[int, ...] = (512, 512)
    activation: str = "sigmoid"
    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 64
    epochs: int = 10
    seed: int = 0
    engines: Tuple[str, ...] = ("numpy", "torch")

    def quick(self) -> "Config":
        return replace(self, train_size=5000, test_size=2000, hidden=(256, 256), epochs=5)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16, 16), epochs=2)


def distinct_rows(w: np.ndarray, rtol: float = 1e-5) -> int:
    """How many different rows (hidden units) a weight matrix has, up to ``rtol`` of its scale."""
    w = np.asarray(w, dtype=np.float64)
    scale = float(np.abs(w).max()) or 1.0
    return int(len(np.unique(np.round(w / (scale * rtol)), axis=0)))


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.plots import plot_lines

    unknown = set(cfg.inits) - set(INITS)
    if unknown:
        raise ValueError(f"initializers: unknown initialiser(s) {sorted(unknown)}; choose from {list(INITS)}")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    plan = [(i, e) for i in cfg.inits for e in cfg.engines]
    tasks = [(Run(engine=e, hidden=tuple(cfg.hidden), activation=cfg.activation, init=INITS[i][0],
                  init_std=INITS[i][1] or 0.1, optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size,
                  epochs=cfg.epochs, seed=cfg.seed, eval_train=False, extras=("weights", "initial_hidden")), data)
             for i, e in plan]
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)
    loss_rows, summary, lines, styles = [], [], {}, {}
    for (i, e), r in zip(plan, results, strict=True):
        h = r["history"]
        label = f"{i} ({e})"
        lines[label] = h["train_loss"]
        styles[label] = ("-o" if e == cfg.engines[0] else "--x")
        for k, v in enumerate(h["train_loss"]):
            loss_rows.append({"initializer": i, "engine": e, "epoch": k + 1, "mean_training_loss": v})
        w1 = next(v for k, v in r["weights"].items() if k.endswith("weight"))
        a0 = r["initial_hidden"]
        summary.append({"initializer": i, "engine": e, "loss_epoch_1": h["train_loss"][0],
                        "loss_last_epoch": h["train_loss"][-1], "test_error_pct": error_pct(h["test_accuracy"][-1]),
                        "distinct_first_layer_units": distinct_rows(w1), "hidden_units": w1.shape[0],
                        "saturated_at_init_pct": 100 * float(np.mean((a0 < 0.01) | (a0 > 0.99))),
                        "seconds": r["seconds"]})
    write_table(out, "losses", loss_rows)
    log("\n" + write_table(out, "summary", summary))
    r0 = results[0]
    plot_lines([("mean training loss per epoch (running mean of the batch losses)", lines)], out / "training_loss.png",
               "epoch", "mean training loss (cross-entropy)",
               f"Initialisers — MLP {r0['architecture']}, {dataset_label(cfg.dataset)}, {cfg.optimizer} lr {cfg.lr:g}, "
               f"batch {cfg.batch_size}, {cfg.epochs} epochs, {np.mean([r['seconds'] for r in results]):.1f} s per run",
               styles=styles)
    metrics = {"setup": setup_info(cfg, r0, initializer="zero, N(0, 1), Glorot uniform", engines=list(cfg.engines)),
               "summary": summary,
               "losses": {f"{i} ({e})": r["history"]["train_loss"] for (i, e), r in zip(plan, results, strict=True)}}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    rows = {(r["initializer"], r["engine"]): r for r in metrics["summary"]}
    engine = metrics["summary"][0]["engine"]
    parts = [f"{i}: {r['loss_epoch_1']:.3f} → {r['loss_last_epoch']:.3f} ({r['test_error_pct']:.2f}% test error)"
             for (i, e), r in rows.items() if e == engine]
    text = f"Mean training loss, first → last epoch ({engine}): " + "; ".join(parts) + ". "
    z, n = rows.get(("zero", engine)), rows.get(("normal(0,1)", engine))
    if z:
        text += (f"With zero weights the {z['hidden_units']} first-layer units end training as "
                 f"{z['distinct_first_layer_units']} distinct unit(s): every unit gets the same gradient, the symmetry "
                 f"is never broken and the network is as weak as one unit per layer. ")
    g = rows.get(("glorot", engine))
    if n:
        text += (f"With N(0, 1) weights {n['saturated_at_init_pct']:.0f}% of the first-layer sigmoid outputs start "
                 f"saturated (outside [0.01, 0.99], where σ' ≈ 0), so their gradients vanish"
                 + (f" and the first epoch ends at a higher loss than Glorot's ({n['loss_epoch_1']:.3f} vs "
                    f"{g['loss_epoch_1']:.3f})" if g and n["loss_epoch_1"] > g["loss_epoch_1"] else "") + ". ")
    if g:
        text += (f"Glorot keeps the pre-activations in the sigmoid's working range ({g['saturated_at_init_pct']:.0f}% "
                 f"saturated) with {g['distinct_first_layer_units']} distinct units. ")
    ours = [r for (i, e), r in rows.items() if e == engine]
    best = min(ours, key=lambda r: r["loss_last_epoch"])
    best_test = min(ours, key=lambda r: r["test_error_pct"])
    text += (f"The lowest final training loss is {best['initializer']}'s ({best['loss_last_epoch']:.3f}); the lowest "
             f"test error is {best_test['initializer']}'s ({best_test['test_error_pct']:.2f}%).")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
