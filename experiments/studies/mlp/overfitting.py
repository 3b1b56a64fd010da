"""Overfitting: how do training and validation accuracy drift apart with 2,000 training images instead of 50,000?

Run (full: the numpy MLP for 30 epochs and the torch LeNet for 15 epochs, each on 2,000
and on 50,000 images with 10,000 validation images, at the assignment's settings and at
the project's tuned settings; several minutes on 2 cores):

    python -m experiments run overfitting --jobs 2
    python -m experiments run overfitting --quick
    python -m experiments run overfitting --settings assignment   # the assignment's settings only

10,000 training images are held out as the validation set; the models train on the
first ``small_train`` (2,000) of the remaining images and on all of them (50,000).
Training accuracy is the end-of-epoch model's on its whole training set
(``History.train_eval_accuracy``), so it is comparable with the validation accuracy.

Two settings, labelled so everywhere (figures, tables, metrics):

- **assignment settings** (MLP-from-scratch project, §2.4–2.5 and §3.2–3.3): the MLP
  784-64-10 sigmoid, N(0, 0.1²) weights, zero biases, plain SGD with batch 256 and lr
  0.001 on the cross-entropy *summed* over the batch (the engine's ``--reduction sum``);
  the tutorial CNN with batch 256, lr 0.001 and the PyTorch tutorial's optimiser, SGD
  with momentum 0.9, on the (mean) cross-entropy.  The studies' training loop
  (``experiments.training.train``) takes the mean over the batch, so the summed-loss step
  is run as its equivalent on the mean, lr × batch = 0.256: the same step for every full
  batch; only the one short batch at the end of an epoch (208 of 2,000 images, 80 of
  50,000) takes a step 256/208 or 256/80 times longer than the summed loss would give.
- **tuned settings** (what this project trains with): the MLP as in ``baseline`` (SGD
  lr 0.5, batch 64, mean cross-entropy); the tutorial CNN with Adam (lr 0.001, batch 256).

The MLP runs on the numpy engine (and its torch twin when ``mlp_engines`` has both); the
tutorial CNN is LeNet (``torch_baselines.lenet_layers``: conv 6@5×5 → pool → conv
16@5×5 → pool → 120 → 84 → 10, ReLU) on torch, initial weights drawn by the numpy build
(He-uniform) and copied over.

Writes into ``results/overfitting/``: ``mlp_accuracy_assignment.png``,
``mlp_accuracy_tuned.png``, ``lenet_accuracy_assignment.png`` and
``lenet_accuracy_tuned.png`` (two panels each: 2,000 and 50,000 images; training and
validation accuracy per epoch), ``summary.md/.csv`` (final and best accuracies and the
train–validation gap per model, setting and training size), ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Tuple

import numpy as np

from experiments.common import dataset_label, output_dir, write_json, write_table
from experiments.parallel import run_tasks
from experiments.studies.mlp import baseline
from experiments.training import Data, Run, train

NAME = "overfitting"
QUESTION = ("How far do training and validation accuracy drift apart when the numpy MLP and the tutorial CNN "
            "(LeNet) train on 2,000 images instead of 50,000, at the assignment's settings and at tuned settings?")
SETTINGS = ("assignment", "tuned")


@dataclass
class Config(baseline.Config):
    # the baseline's fields: the MLP (784-64-10 sigmoid, N(0, 0.1²) weights) with its tuned
    # optimiser (SGD lr 0.5, batch 64, mean cross-entropy) and the data; plus:
    val_size: int = 10000
    small_train: int = 2000
    large_train: int = 0               # 0: every training image left after the validation split
    epochs: int = 30                   # the MLP's, both settings
    settings: Tuple[str, ...] = SETTINGS
    assignment_lr: float = 0.001       # both models; the MLP's on the summed cross-entropy
    assignment_batch_size: int = 256
    mlp_engines: Tuple[str, ...] = ("numpy",)
    cnn: bool = True                   # also the tutorial CNN (torch LeNet)
    cnn_epochs: int = 15               # both settings
    cnn_optimizer: str = "adam"        # tuned settings
    cnn_lr: float = 0.001
    cnn_batch_size: int = 256
    cnn_assignment_optimizer: str = "sgd"    # the PyTorch tutorial's optimiser ...
    cnn_assignment_momentum: float = 0.9     # ... and its momentum
    lenet_padding: int = 0

    def quick(self) -> "Config":
        return replace(self, val_size=5000, large_train=10000, test_size=2000, epochs=10, cnn_epochs=3)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", val_size=300, small_train=200, large_train=0, test_size=0,
                       hidden=(16,), epochs=3, cnn_epochs=2, lenet_padding=6)


def summed_lr_as_mean(lr: float, batch_size: int) -> float:
    """The learning rate on the batch-mean loss that takes the step of ``lr`` on the batch-summed
    loss: ∇(Σ_i ℓ_i) = B ∇(mean_i ℓ_i), so lr_mean = lr_sum · B for a batch of B images."""
    if batch_size < 1:
        raise ValueError(f"summed_lr_as_mean: batch_size must be at least 1, got {batch_size}")
    return float(lr) * int(batch_size)


def mlp_run(cfg: Config, engine: str, setting: str) -> Run:
    """The MLP's :class:`Run` at ``setting`` ("assignment" or "tuned") on ``engine``."""
    tuned = baseline.make_run(cfg, engine, eval_train=True)
    if setting == "tuned":
        return tuned
    if setting == "assignment":
        return replace(tuned, optimizer="sgd", momentum=0.0, batch_size=cfg.assignment_batch_size,
                       lr=summed_lr_as_mean(cfg.assignment_lr, cfg.assignment_batch_size))
    raise ValueError(f"overfitting: unknown setting {setting!r}; choose from {SETTINGS}")


def lenet_run(cfg: Config, layers, setting: str) -> Run:
    """The tutorial CNN's :class:`Run` (torch) at ``setting``."""
    common: Dict[str, Any]
    common = dict(engine="torch", layers=tuple(layers), init="he_uniform", epochs=cfg.cnn_epochs, seed=cfg.seed)
    if setting == "tuned":
        return Run(optimizer=cfg.cnn_optimizer, lr=cfg.cnn_lr, batch_size=cfg.cnn_batch_size, **common)
    if setting == "assignment":
        return Run(optimizer=cfg.cnn_assignment_optimizer, lr=cfg.assignment_lr,
                   momentum=cfg.cnn_assignment_momentum, batch_size=cfg.assignment_batch_size, **common)
    raise ValueError(f"overfitting: unknown setting {setting!r}; choose from {SETTINGS}")


def setting_text(cfg: Config, model: str, setting: str) -> str:
    """What a setting trains ``model`` ("mlp" or "lenet") with, in words, for titles and tables."""
    if model == "mlp" and setting == "assignment":
        return (f"assignment settings: SGD, batch {cfg.assignment_batch_size}, lr {cfg.assignment_lr:g} on the "
                f"cross-entropy summed over the batch (= lr "
                f"{summed_lr_as_mean(cfg.assignment_lr, cfg.assignment_batch_size):g} on the mean)")
    if model == "mlp":
        momentum = f", momentum {cfg.momentum:g}" if cfg.momentum else ""
        return (f"tuned settings: {cfg.optimizer.upper()}{momentum}, batch {cfg.batch_size}, lr {cfg.lr:g}, "
                "mean cross-entropy")
    if setting == "assignment":
        return (f"assignment settings: {cfg.cnn_assignment_optimizer.upper()}, momentum "
                f"{cfg.cnn_assignment_momentum:g} (the PyTorch tutorial's), batch {cfg.assignment_batch_size}, "
                f"lr {cfg.assignment_lr:g}, mean cross-entropy")
    return (f"tuned settings: {cfg.cnn_optimizer.capitalize()}, batch {cfg.cnn_batch_size}, lr {cfg.cnn_lr:g}, "
            "mean cross-entropy")


def summary_rows(plan, results) -> list:
    """A row per (model, setting, engine, training size): final and best accuracies, the gap."""
    rows = []
    for (model, e, setting, _), r in zip(plan, results, strict=True):
        h = r["history"]
        rows.append({"model": model, "setting": setting, "engine": e, "n_train": r["n_train"],
                     "optimizer": r["run"]["optimizer"], "momentum": r["run"]["momentum"],
                     "batch_size": r["run"]["batch_size"], "lr_on_mean_loss": r["run"]["lr"],
                     "parameters": r["parameters"], "epochs": len(h["val_accuracy"]),
                     "final_train_accuracy_pct": 100 * h["train_eval_accuracy"][-1],
                     "final_val_accuracy_pct": 100 * h["val_accuracy"][-1],
                     "gap_pct": 100 * (h["train_eval_accuracy"][-1] - h["val_accuracy"][-1]),
                     "best_train_accuracy_pct": 100 * max(h["train_eval_accuracy"]),
                     "best_val_accuracy_pct": 100 * max(h["val_accuracy"]),
                     "best_val_epoch": int(np.argmax(h["val_accuracy"])) + 1,
                     "test_accuracy_pct": 100 * h["test_accuracy"][-1], "seconds": r["seconds"]})
    return rows


def accuracy_panels(chosen, sizes, several_engines: bool) -> list:
    """``plot_lines`` panels, one per training size: training (whole set) and validation
    accuracy per epoch of the chosen ``((model, engine, setting, size), result)`` pairs."""
    panels = []
    for k in sizes:
        lines, n_train, secs = {}, 0, []
        for (_, e, _, kk), r in chosen:
            if kk != k:
                continue
            tag = f"{e}: " if several_engines else ""
            lines[f"{tag}train ({r['n_train']:,} images)"] = [100 * a for a in r["history"]["train_eval_accuracy"]]
            lines[f"{tag}validation ({r['n_val']:,} images)"] = [100 * a for a in r["history"]["val_accuracy"]]
            n_train = r["n_train"]
            secs.append(f"{e} {r['seconds']:.1f} s" if several_engines else f"{r['seconds']:.1f} s")
        panels.append((f"{n_train:,} training images (training {', '.join(secs)})", lines))
    return panels


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.plots import plot_lines
    from torch_baselines import lenet_layers

    if not cfg.val_size:
        raise ValueError("overfitting: val_size must be positive")
    unknown = set(cfg.settings) - set(SETTINGS)
    if unknown or not cfg.settings:
        raise ValueError(f"overfitting: settings must be among {SETTINGS}, got {cfg.settings}")
    out = output_dir(NAME, cfg.out)
    sizes = {"small": cfg.small_train, "large": cfg.large_train}
    datas = {k: replace(Data.of(cfg), train_size=v) for k, v in sizes.items()}
    plan, tasks = [], []
    for setting in cfg.settings:
        for e in cfg.mlp_engines:
            for k in sizes:
                plan.append(("mlp", e, setting, k))
                tasks.append((mlp_run(cfg, e, setting), datas[k]))
    if cfg.cnn:
        from experiments.common import load_splits

        image_size = load_splits(datas["small"], log=None)[0].image_shape[0]
        layers = lenet_layers(cfg.lenet_padding, image_size=image_size)
        for setting in cfg.settings:
            for k in sizes:
                plan.append(("lenet", "torch", setting, k))
                tasks.append((lenet_run(cfg, layers, setting), datas[k]))
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)

    rows = summary_rows(plan, results)
    log("\n" + write_table(out, "summary", rows))
    figures = {}
    for model in ("mlp", "lenet"):
        for setting in cfg.settings:
            chosen = [(p, r) for p, r in zip(plan, results, strict=True) if p[0] == model and p[2] == setting]
            if not chosen:
                continue
            r0 = chosen[0][1]
            several = model == "mlp" and len(cfg.mlp_engines) > 1
            what = (f"numpy MLP {r0['architecture']}, {cfg.epochs} epochs" if model == "mlp" else
                    f"torch LeNet ({r0['parameters']:,} parameters), {cfg.cnn_epochs} epochs")
            title = f"{what} — {dataset_label(cfg.dataset)}\n{setting_text(cfg, model, setting)}"
            fname = f"{model}_accuracy_{setting}.png"
            plot_lines(accuracy_panels(chosen, sizes, several), out / fname, "epoch", "accuracy (%)", title)
            figures[f"{model}, {setting} settings"] = fname
    first = results[0]
    models = ("mlp", "lenet") if cfg.cnn else ("mlp",)
    metrics = {"setup": {"architecture": {"mlp": first["architecture"], "lenet": "LeNet (torch)" if cfg.cnn else None},
                         "activation": {"mlp": cfg.activation, "lenet": "relu"},
                         "initializer": {"mlp": f"{cfg.init} (std {cfg.init_std:g}), zero biases",
                                         "lenet": "he_uniform, zero biases"},
                         "settings": {s: {m: setting_text(cfg, m, s) for m in models} for s in cfg.settings},
                         "epochs": {"mlp": cfg.epochs, "lenet": cfg.cnn_epochs}, "seed": cfg.seed,
                         "dataset": dataset_label(cfg.dataset),
                         "train_sizes": sorted({r["n_train"] for r in results}), "n_val": first["n_val"],
                         "n_test": first["n_test"], "train_curve": "whole training set, end of epoch"},
               "runs": rows, "figures": figures}
    write_json(out / "metrics.json", metrics)
    log("\nAnswer: " + describe(metrics, asdict(cfg)))
    return metrics


def describe(metrics: dict, config: dict) -> str:
    text = "After training: " + "; ".join(
        f"{r['model']} ({r.get('setting', 'tuned')} settings, {r['engine']}) on {r['n_train']:,} images: "
        f"{r['final_train_accuracy_pct']:.2f}% train vs {r['final_val_accuracy_pct']:.2f}% validation (gap "
        f"{r['gap_pct']:+.2f} points, best validation {r['best_val_accuracy_pct']:.2f}% at epoch {r['best_val_epoch']})"
        for r in metrics["runs"]) + ". "
    groups: Dict[Tuple[str, str, str], List[dict]] = {}
    for r in metrics["runs"]:
        groups.setdefault((r["model"], r.get("setting", "tuned"), r["engine"]), []).append(r)
    for (model, setting, engine), rs in groups.items():
        if len(rs) == 2:
            small, large = sorted(rs, key=lambda r: r["n_train"])
            text += (f"For the {model} at the {setting} settings ({engine}), the small training set "
                     f"{'widens' if small['gap_pct'] > large['gap_pct'] else 'does not widen'} the train–validation "
                     f"gap ({small['gap_pct']:+.2f} vs {large['gap_pct']:+.2f} points) and costs "
                     f"{large['best_val_accuracy_pct'] - small['best_val_accuracy_pct']:.2f} points of validation "
                     f"accuracy. ")
    text += ("A growing gap while the validation accuracy stalls or falls is overfitting: the model memorises the few "
             "images it has. ")
    slow = [r for r in metrics["runs"] if r.get("setting") == "assignment"]
    if slow:
        small = min(slow, key=lambda r: r["n_train"])
        steps = -(-small["n_train"] // small["batch_size"])
        text += (f"At the assignment's settings the {small['n_train']:,}-image runs take only {steps} steps per epoch "
                 f"({steps * small['epochs']} in all for the {small['model']}), so they may still be under-fitting "
                 f"when the epochs run out: the gap then says little until both curves have levelled off.")
    return text
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
