"""The numpy MLP with dropout and Adam on MNIST, no data augmentation: target ≥ 98.3% test.

Run (full: 20 epochs, about 3-5 minutes on 2 cores):

    python -m experiments.studies.mlp.mlp_dropout_adam
    python -m experiments.studies.mlp.mlp_dropout_adam --quick          # a small version, seconds

784-1024-1024-10 ReLU network, dropout after each hidden ReLU, He-uniform weights, Adam
(lr 1e-3) with a cosine learning-rate schedule, batch 128, trained on all 60,000 training
images; the test accuracy reported is the last epoch's (no selection on the test set).

The learning curves (``learning_curves.png``, two panels: cost and accuracy per epoch)
plot the training loss as the **running mean of the batch losses** during each epoch
(dropout active, so it sits above what the trained network scores on the training set),
with the test (and validation, with ``--val-size``) figures of the end-of-epoch model; the
title names the model, the dataset, batch size, learning rate, epochs and training time.

Writes into ``results/mlp_dropout_adam/``: ``config.json``, ``history.json``,
``learning_curves.png``, ``epochs.md/.csv`` (per epoch) and ``summary.md/.csv``,
``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from typing import List, Optional, Tuple, cast

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
from tinygrad_mnist.models import LayerDesc, MLPSpec, build
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
from tinygrad_mnist.optim import Adam
from tinygrad_mnist.optim.schedules import schedule_by_name
from tinygrad_mnist.plots import plot_curves, run_title
from tinygrad_mnist.train import fit

NAME = "mlp_dropout_adam"


@dataclass
class Config:
    hidden: Tuple[int, ...] = (1024, 1024)
    dropout: float = 0.3            # after every hidden ReLU
    input_dropout: float = 0.0      # on the pixels (0: none)
    lr: float = 1e-3
    betas: Tuple[float, ...] = (0.9, 0.999)
    batch_size: int = 128
    epochs: int = 20
    schedule: str = "cosine"        # "cosine" (T_max = epochs), "none"
    warmup_epochs: int = 0
    init: str = "he_uniform"
    seed: int = 0
    dataset: str = "mnist"          # "mnist", "digits" or an IDX / PNG-folder directory
    data_dir: Optional[str] = None  # else $TINYGRAD_MNIST_DATA, then the cache
    train_size: int = 0             # 0: every training image
    val_size: int = 0               # held out of the training set; 0: none
    out: str = "results"

    def quick(self) -> "Config":
        return replace(self, hidden=(128,), epochs=2, train_size=3000)


def layers(cfg: Config, n_features: int, num_classes: int) -> Tuple[LayerDesc, ...]:
    """The MLP's layer descriptions with a Dropout after every hidden activation."""
    out: List[LayerDesc] = []
    if cfg.input_dropout:
        out.append(LayerDesc.make("dropout", p=cfg.input_dropout))
    for desc in MLPSpec((n_features, *cfg.hidden, num_classes), "relu").layers():
        out.append(desc)
        if desc.kind == "activation" and cfg.dropout:
            out.append(LayerDesc.make("dropout", p=cfg.dropout))
    return tuple(out)


def curve_title(cfg: Config, arch: str, history) -> str:
    """The learning curves' title: the model, its last-epoch test accuracy, then
    :func:`~tinygrad_mnist.plots.run_title` (dataset, batch, lr, epochs, training seconds)."""
    schedule = "" if cfg.schedule == "none" else f", {cfg.schedule} schedule"
    model = (f"numpy MLP {arch} ReLU, dropout {cfg.dropout:g}, Adam{schedule}: "
             f"{100 * history.test_accuracy[-1]:.2f}% test")
    return wrap(run_title(dataset_label(cfg.dataset), cfg.batch_size, cfg.lr, history.epochs, history.total_seconds,
                          prefix=model))


def run(cfg: Config, log=print) -> dict:
    out = output_dir(NAME, cfg.out)
    save_config(out, cfg)
    train, val, test = load_splits(cfg, log=None)  # --train-size selects after the validation split
    model = build(layers(cfg, train.n_features, train.num_classes), seed=cfg.seed, init=cfg.init)
    betas = cast(Tuple[float, float], tuple(cfg.betas))  # a pair: Adam checks it
    optimizer = Adam(model.parameters(), lr=cfg.lr, betas=betas)
    kwargs = {"T_max": cfg.epochs} if cfg.schedule == "cosine" else {}
    scheduler = schedule_by_name(cfg.schedule, optimizer, warmup_steps=cfg.warmup_epochs, **kwargs)
    log(f"{train!r}, {test!r}{'' if val is None else ', ' + repr(val)}")
    log(f"model: {model.num_parameters():,} parameters\n{model}")
    log(f"optimizer: {optimizer!r}, schedule: {scheduler!r}, batch {cfg.batch_size}")
    history = fit(model, SoftmaxCrossEntropy(), optimizer, train, val=val, test=test, epochs=cfg.epochs,
                  batch_size=cfg.batch_size, seed=cfg.seed, scheduler=scheduler, log=log,
                  config=asdict(cfg))
    history.save(out / "history.json")

    write_table(out, "epochs", epoch_rows(history))
    final = history.test_accuracy[-1]
    metrics = {
        "test_accuracy": final, "test_loss": history.test_loss[-1], "epochs": history.epochs,
        "total_seconds": history.total_seconds, "median_epoch_seconds": float(np.median(history.epoch_seconds)),
        "parameters": model.num_parameters(), "best_test_accuracy_seen": max(history.test_accuracy),
        "best_val_epoch": history.best_epoch, "dataset": train.name, "n_train": len(train),
        "n_test": len(test),
    }
    write_json(out / "metrics.json", metrics)
    arch = "-".join(map(str, (train.n_features, *cfg.hidden, train.num_classes)))
    write_table(out, "summary", [{
        "model": f"MLP {arch} ReLU, dropout {cfg.dropout:g}", "optimizer": f"Adam lr {cfg.lr:g}, {cfg.schedule}",
        "batch": cfg.batch_size, "epochs": history.epochs, "seconds": round(history.total_seconds, 1),
        "test_accuracy_pct": round(100 * final, 2)}])
    plot_curves({"numpy": history}, out / "learning_curves.png", curve_title(cfg, arch, history), train="running")
    log(f"\nfinal test accuracy {100 * final:.2f}% after {history.epochs} epochs, "
        f"{history.total_seconds:.1f} s; wrote {out}")
    return metrics


def main(argv=None) -> int:
    cfg = parse_config(Config, argv, description=__doc__.splitlines()[0])
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
