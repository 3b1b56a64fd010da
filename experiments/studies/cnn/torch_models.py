"""PyTorch baselines on MNIST: the course CNN (and its variants), the tutorial LeNet, MLPs.

Run (each full run is a few minutes on 2 CPU cores):

    # the course CNN, plain SGD (torch.optim.SGD, no momentum), target >= 98.5%
    python -m experiments.studies.cnn.torch_models --archs course-cnn \\
        --optimizer sgd --lr 0.1 --batch-size 64 --epochs 12 --run course_sgd
    # the course CNN, Adam, target >= 98.8% (the numpy_cnn experiment's settings)
    python -m experiments.studies.cnn.torch_models --archs course-cnn \\
        --optimizer adam --lr 0.001 --schedule cosine --batch-size 64 --epochs 12 --run course_adam
    # the tutorial LeNet, batch 256, lr 0.001, Adam, target >= 98%
    python -m experiments.studies.cnn.torch_models --archs lenet \\
        --optimizer adam --lr 0.001 --batch-size 256 --epochs 10 --run lenet_adam
    python -m experiments.studies.cnn.torch_models --quick            # 4 architectures, 2 epochs, ~1.5 min
    python -m experiments.studies.cnn.torch_models --archs course-cnn --device cuda   # on a GPU

Every model trains on all 60,000 training images (``--val-size`` holds some out to
watch) through the numpy engine's seeded ``DataLoader``, so the numpy and torch runs see
the same batches in the same order; the accuracy reported is the **last** epoch's (no
selection on the test set).  ``--target`` only records the first epoch whose test
accuracy reaches it; ``--stop-at-target`` also stops there (an "epochs to X%" measurement,
which by construction looks at the test set).

Architectures (``--archs``): the registry's names (``tinygrad-mnist models``: ``classic-mlp``,
``deep-mlp``, ``wide-mlp``, ``course-cnn``, ``small-cnn``, ``lenet``), where ``course-cnn``
takes ``--activation``, ``--pool-first``, ``--residual-depth`` and ``lenet`` takes
``--lenet-padding``; and this study's own: ``mlp`` (``--hidden``, ``--activation``,
``--init``), ``matched-cnn`` (a course-style CNN with that MLP's parameter count, ±10%),
``simple-mlp`` and ``complex-mlp`` (for ``--dataset digits``).  The old spellings with an
underscore (``course_cnn``, ``matched_cnn``, ...) still work, with a note.

Each ``<arch>_learning_curves.png`` (two panels: cost and accuracy per epoch) plots the
training loss as the **running mean of the batch losses** during each epoch (the torch
``fit`` records no end-of-epoch pass over the training set), with the test (and
validation) figures of the end-of-epoch model; its title names the model, the dataset,
batch size, learning rate, epochs and training time.

Writes into ``results/torch_baselines/<run>/``: ``config.json``; per architecture
``<arch>_history.json``, ``<arch>_epochs.md/.csv``, ``<arch>_learning_curves.png`` and
``<arch>_parameters.md`` (per-layer counts); ``summary.md/.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import List, Optional, Tuple

import numpy as np

from experiments.common import (
    dataset_label,
    epoch_rows,
    load_splits,
    output_dir,
    parse_config,
    save_config,
    write_json,
    write_table,
)
from experiments.recipes import wrap
from tinygrad_mnist.models import CourseCNNSpec, MLPSpec
from tinygrad_mnist.presets import NAMES, PRESETS

NAME = "torch_baselines"
#: This study's own architectures, beside the registry's presets (tinygrad_mnist.presets).
OWN_ARCHS = ("mlp", "matched-cnn", "simple-mlp", "complex-mlp")
ARCHS = NAMES + OWN_ARCHS
FLAT = ("mlp", "simple-mlp", "complex-mlp") + tuple(n for n in NAMES if PRESETS[n].flat_input)


def arch_name(arch: str) -> str:
    """The hyphenated name of ``arch`` (an old ``course_cnn`` spelling is mapped, with a note)."""
    if arch in ARCHS:
        return arch
    new = arch.replace("_", "-")
    if new in ARCHS:
        print(f"note: --archs {arch} is deprecated; use {new}", file=sys.stderr)
        return new
    raise ValueError(f"torch_baselines: unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")


@dataclass
class Config:
    archs: Tuple[str, ...] = ("course-cnn",)  # registry names, or mlp, matched-cnn, simple-mlp, complex-mlp
    # the course CNN
    activation: str = "relu"        # course CNN and mlp hidden activation
    pool_first: bool = False
    residual_depth: int = 0         # 0, 2 or 3
    # LeNet
    lenet_padding: int = 0          # 0: 28x28 input as is; 2: the tutorial's 32x32 geometry
    # MLP (and the CNN matched to its parameter count)
    hidden: Tuple[int, ...] = (64,)
    init: str = "glorot_uniform"
    # training
    optimizer: str = "adam"         # sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad
    lr: float = 1e-3
    momentum: float = 0.0           # for "sgd" (plain SGD when 0)
    weight_decay: float = 0.0
    l1: float = 0.0                 # penalties added to the loss (the classic lab: 0.001)
    l2: float = 0.0
    schedule: str = "none"          # none, step, exponential, cosine, warmup, warmup_cosine
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    target: float = 0.0             # test accuracy (fraction) whose first epoch is recorded
    stop_at_target: bool = False
    # data and machine
    dataset: str = "mnist"          # "mnist", "digits" or a directory
    data_dir: Optional[str] = None  # else $TINYGRAD_MNIST_DATA, then the cache
    train_size: int = 0             # 0: all training images
    test_size: int = 0              # 0: all test images
    val_size: int = 0               # held out of the training set to watch; 0: none
    device: str = "cpu"             # cpu, cuda or auto
    threads: int = 2                # torch.set_num_threads (CPU)
    run: str = "default"            # results/torch_baselines/<run>/
    out: str = "results"

    def quick(self) -> "Config":
        return replace(self, archs=("course-cnn", "lenet", "mlp", "matched-cnn"), epochs=2, train_size=2000,
                       test_size=1000, run="quick")

    def smoke(self) -> "Config":  # tiny data for the test suite (LeNet needs 28×28 input)
        return replace(self, archs=("course-cnn", "mlp"), dataset="digits", epochs=1, train_size=500, test_size=0,
                       threads=1)


# -- models ------------------------------------------------------------------------------------
def build_model(arch: str, cfg: Config, image_size: int, num_classes: int):
    """``(torch model, description)`` for one architecture name."""
    from torch_baselines import models

    n_in = image_size * image_size
    mlp_spec = MLPSpec((n_in, *cfg.hidden, num_classes), cfg.activation, "logits", cfg.init)
    arch = arch_name(arch)
    if arch == "course-cnn":
        spec = CourseCNNSpec(cfg.activation, cfg.pool_first, cfg.residual_depth, image_size=image_size,
                             num_classes=num_classes)
        what = (f"course CNN ({cfg.activation}{', pool first' if cfg.pool_first else ''}"
                f"{f', residual blocks of {cfg.residual_depth}' if cfg.residual_depth else ''})")
        return models.build_course_cnn(spec, seed=cfg.seed), what
    if arch == "lenet":
        return models.LeNet(padding=cfg.lenet_padding, num_classes=num_classes, seed=cfg.seed), \
            f"tutorial LeNet (padding {cfg.lenet_padding})"
    if arch == "mlp":
        return models.build_mlp(mlp_spec, seed=cfg.seed), f"MLP {'-'.join(map(str, mlp_spec.sizes))} {cfg.activation}"
    if arch == "matched-cnn":
        spec = models.param_matched_cnn_spec(mlp_spec, image_size=image_size, num_classes=num_classes)
        return (models.build_course_cnn(spec, seed=cfg.seed),
                f"CNN {'-'.join(map(str, spec.channels))} matched to the MLP's "
                f"{mlp_spec.num_parameters():,} parameters")
    if arch == "simple-mlp":
        return models.SimpleMLP(n_in, num_classes=num_classes, seed=cfg.seed), "SimpleMLP"
    if arch == "complex-mlp":
        return models.ComplexMLP(n_in, num_classes=num_classes, seed=cfg.seed), "ComplexMLP (BatchNorm, dropout)"
    # the registry's other presets: their layers, torch's default initialisation, and logits
    # (a final Softmax of classic-mlp is folded into torch's CrossEntropyLoss)
    preset = PRESETS[arch]
    layers = preset.layers((image_size, image_size), num_classes, output="logits")
    return models.build(layers, seed=cfg.seed), preset.description


# -- one training run --------------------------------------------------------------------------
def train_arch(arch: str, cfg: Config, train, val, test, out, log=print) -> dict:
    import torch

    from tinygrad_mnist.nn.regularization import Penalty
    from tinygrad_mnist.plots import plot_curves, run_title
    from torch_baselines import train as ttrain
    from torch_baselines import utils

    utils.seed_everything(cfg.seed)
    model, what = build_model(arch, cfg, train.image_shape[0], train.num_classes)
    n_params = utils.num_parameters(model)
    (out / f"{arch}_parameters.md").write_text("```\n" + utils.parameter_table(model) + "\n```\n")
    opt_kw = {"weight_decay": cfg.weight_decay}
    if cfg.optimizer in ("sgd", "momentum", "nesterov") and cfg.momentum:
        opt_kw["momentum"] = cfg.momentum
    optimizer = ttrain.optimizer_by_name(cfg.optimizer, model.parameters(), cfg.lr, **opt_kw)
    scheduler = ttrain.schedule_by_name(cfg.schedule, optimizer, cfg.epochs)
    device = utils.resolve_device(cfg.device)
    reached: List[Tuple[int, float]] = []

    def watch(epoch, history):
        if cfg.target and not reached and history.test_accuracy and history.test_accuracy[-1] >= cfg.target:
            reached.append((epoch, history.total_seconds))
            return cfg.stop_at_target
        return False

    log(f"\n== {arch}: {what}, {n_params:,} parameters, {cfg.optimizer} lr {cfg.lr:g}"
        f"{f' momentum {cfg.momentum:g}' if cfg.optimizer == 'sgd' else ''}, {cfg.schedule} schedule, "
        f"batch {cfg.batch_size}, {cfg.epochs} epochs, {device}, {torch.get_num_threads()} threads")
    flatten = arch in FLAT
    t0 = time.perf_counter()
    history = ttrain.fit(model, torch.nn.CrossEntropyLoss(), optimizer, train, val=val, test=test, epochs=cfg.epochs,
                         batch_size=cfg.batch_size, seed=cfg.seed, flatten=flatten,
                         regularizer=Penalty(l1=cfg.l1, l2=cfg.l2) if (cfg.l1 or cfg.l2) else None,
                         scheduler=scheduler, log=log, callbacks=[watch], device=device,
                         config={**asdict(cfg), "arch": arch, "description": what, "parameters": n_params})
    wall = time.perf_counter() - t0
    history.save(out / f"{arch}_history.json")
    write_table(out, f"{arch}_epochs", epoch_rows(history))
    final = history.test_accuracy[-1]
    optimizer_text = cfg.optimizer + (f" momentum {cfg.momentum:g}" if cfg.optimizer == "sgd" and cfg.momentum else "")
    schedule = "" if cfg.schedule == "none" else f", {cfg.schedule} schedule"
    title = run_title(dataset_label(cfg.dataset), cfg.batch_size, cfg.lr, history.epochs, wall,
                      prefix=f"torch {what}, {optimizer_text}{schedule}: {100 * final:.2f}% test")
    plot_curves({arch: history}, out / f"{arch}_learning_curves.png", wrap(title), train="running")
    log(f"{arch}: {100 * final:.2f}% test accuracy after {history.epochs} epochs, {wall:.0f} s "
        f"(median {np.median(history.epoch_seconds):.1f} s per epoch incl. evaluation)"
        + (f"; reached {100 * cfg.target:.2f}% at epoch {reached[0][0]} ({reached[0][1]:.0f} s)" if reached else ""))
    return {"arch": arch, "description": what, "parameters": n_params, "optimizer": cfg.optimizer, "lr": cfg.lr,
            "batch_size": cfg.batch_size, "epochs": history.epochs, "seconds": wall,
            "median_epoch_seconds": float(np.median(history.epoch_seconds)), "test_accuracy": final,
            "test_loss": history.test_loss[-1], "target": cfg.target or None,
            "target_epoch": reached[0][0] if reached else None,
            "target_seconds": reached[0][1] if reached else None, "device": str(device)}


def run(cfg: Config, log=print) -> dict:
    import torch

    torch.set_num_threads(cfg.threads)
    out = output_dir(f"{NAME}/{cfg.run}", cfg.out)
    save_config(out, {**asdict(cfg), "torch": torch.__version__})
    train, val, test = load_splits(cfg, log)
    cfg = replace(cfg, archs=tuple(arch_name(a) for a in cfg.archs))
    results = [train_arch(arch, cfg, train, val, test, out, log) for arch in cfg.archs]
    rows = [{"arch": r["arch"], "architecture": r["description"], "parameters": r["parameters"],
             "optimizer": r["optimizer"], "lr": r["lr"], "batch": r["batch_size"], "epochs": r["epochs"],
             "seconds": round(r["seconds"], 1), "test_accuracy_pct": round(100 * r["test_accuracy"], 2),
             "target_epoch": r["target_epoch"] if r["target_epoch"] is not None else ""} for r in results]
    log("\n" + write_table(out, "summary", rows))
    write_json(out / "metrics.json", {"results": results, "n_train": len(train), "n_test": len(test),
                                      "n_val": 0 if val is None else len(val)})
    log(f"wrote {out}")
    return {"results": results}


def main(argv=None) -> int:
    run(parse_config(Config, argv, description=__doc__.splitlines()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
