"""The numpy course CNN and a stronger numpy CNN variant, trained from scratch on MNIST.

Run (full: both models, about 9 minutes on 2 cores):

    python -m experiments.studies.cnn.numpy_cnn
    python -m experiments.studies.cnn.numpy_cnn --models course   # one model
    python -m experiments.studies.cnn.numpy_cnn --quick           # seconds

Targets: the course CNN ≥ 98.8% test accuracy, the best variant ≥ 99.3%, each in under 15
minutes on this machine.  Both train on all 60,000 training images (``--val-size`` holds
some out to watch) and report the **last** epoch's test accuracy: nothing is selected on
the test set.

- ``course``: ``CourseCNNSpec()`` exactly (conv 8 → pool → conv 16 → pool → conv 32 → fc,
  ReLU, 21,578 parameters), Adam with a cosine schedule, batch 64, no augmentation.
- ``best``: the same three-stage shape, wider (16, 32, 64 channels), a BatchNorm2d after
  every convolution, dropout before the classifier, and random shifts of up to ±2 pixels
  (each image moved independently, zeros shifted in; a seeded numpy generator per
  epoch), Adam with a cosine schedule.

Each ``<model>_learning_curves.png`` (two panels: cost and accuracy per epoch) plots the
training loss as the **running mean of the batch losses** during each epoch (over the
shifted, dropped-out batches for ``best``), with the test (and validation) figures of the
end-of-epoch model; its title names the model, the dataset, batch size, learning rate,
epochs and training time.

Writes into ``results/numpy_cnn/<run>/``: ``config.json``, per model ``<model>_history.json``,
``<model>_epochs.md/.csv`` and ``<model>_learning_curves.png``; ``summary.md/.csv``
(epochs, seconds, accuracy), ``test_accuracy.png`` (both models per epoch) and
``metrics.json``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

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
from tinygrad_mnist.data import DataLoader
from tinygrad_mnist.data.augment import AugmentedLoader
from tinygrad_mnist.models import CourseCNNSpec, LayerDesc, build
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
from tinygrad_mnist.plots import plot_curves, run_title
from tinygrad_mnist.train import fit

NAME = "numpy_cnn"
MODELS = ("course", "best")


@dataclass
class Config:
    models: Tuple[str, ...] = MODELS
    batch_size: int = 64
    # the course CNN
    course_epochs: int = 12
    course_lr: float = 1e-3
    # the best variant
    best_channels: Tuple[int, ...] = (16, 32, 64)
    best_batchnorm: bool = True
    best_dropout: float = 0.25      # before the final Linear; 0: none
    best_shift: int = 2             # random translation of up to ±shift pixels; 0: none
    best_epochs: int = 15
    best_lr: float = 2e-3
    # shared
    optimizer: str = "adam"         # "adam" or "sgd" (momentum 0.9)
    schedule: str = "cosine"        # "cosine" (T_max = epochs) or "none"
    init: str = "he_uniform"
    seed: int = 0
    dataset: str = "mnist"
    data_dir: Optional[str] = None  # else $TINYGRAD_MNIST_DATA, then the cache
    train_size: int = 0             # 0: all training images
    test_size: int = 0              # 0: all test images
    val_size: int = 0               # held out of the training set to watch; 0: none
    run: str = "full"               # results/numpy_cnn/<run>/
    out: str = "results"

    def quick(self) -> "Config":
        return replace(self, course_epochs=2, best_epochs=2, best_channels=(4, 8, 8), train_size=2000,
                       test_size=1000, run="quick")


# -- the models --------------------------------------------------------------------------------
def course_layers(image_size: int = 28, num_classes: int = 10) -> Tuple[LayerDesc, ...]:
    """The course CNN, exactly: ``CourseCNNSpec().layers()`` (for 28×28 input)."""
    return CourseCNNSpec(image_size=image_size, num_classes=num_classes).layers()


def best_layers(channels=(16, 32, 64), batchnorm: bool = True, dropout: float = 0.25,
                image_size: int = 28, num_classes: int = 10) -> Tuple[LayerDesc, ...]:
    """The course CNN's shape, widened, with BatchNorm2d after each convolution::

        [conv 3×3 p1 → BN → ReLU → maxpool 2×2] × (stages − 1) → conv 3×3 p1 → BN → ReLU
        → flatten → dropout → linear
    """
    out: List[LayerDesc] = []
    c_in, size = 1, image_size
    for i, c in enumerate(channels):
        out.append(LayerDesc.make("conv2d", in_channels=c_in, out_channels=c, kernel_size=3, stride=1, padding=1))
        if batchnorm:
            out.append(LayerDesc.make("batchnorm2d", num_features=c))
        out.append(LayerDesc.make("activation", name="relu"))
        if i < len(channels) - 1:
            out.append(LayerDesc.make("maxpool2d", kernel_size=2, stride=2))
            size //= 2
        c_in = c
    out.append(LayerDesc.make("flatten"))
    if dropout:
        out.append(LayerDesc.make("dropout", p=dropout))
    out.append(LayerDesc.make("linear", in_features=c_in * size * size, out_features=num_classes))
    return tuple(out)


# -- one training run --------------------------------------------------------------------------
def _optimizer(cfg: Config, params, lr: float):
    if cfg.optimizer == "adam":
        from tinygrad_mnist.optim import Adam

        return Adam(params, lr=lr)
    if cfg.optimizer == "sgd":
        from tinygrad_mnist.optim import SGD

        return SGD(params, lr=lr, momentum=0.9)
    raise ValueError(f"numpy_cnn: optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}")


def _scheduler(cfg: Config, optimizer, epochs: int):
    if cfg.schedule == "none":
        return None
    if cfg.schedule == "cosine":
        from tinygrad_mnist.optim.schedules import CosineAnnealingLR

        return CosineAnnealingLR(optimizer, T_max=epochs)
    raise ValueError(f"numpy_cnn: schedule must be 'cosine' or 'none', got {cfg.schedule!r}")


def train_model(name: str, cfg: Config, train, val, test, out, log=print) -> dict:
    size, classes = train.image_shape[0], train.num_classes
    if name == "course":
        layers, epochs, lr = course_layers(size, classes), cfg.course_epochs, cfg.course_lr
        shift, what = 0, "course CNN"
    elif name == "best":
        layers = best_layers(tuple(cfg.best_channels), cfg.best_batchnorm, cfg.best_dropout, size, classes)
        epochs, lr, shift = cfg.best_epochs, cfg.best_lr, cfg.best_shift
        what = (f"CNN {'-'.join(map(str, cfg.best_channels))}{' + BN' if cfg.best_batchnorm else ''}"
                f"{f' + dropout {cfg.best_dropout:g}' if cfg.best_dropout else ''}"
                f"{f' + shifts ±{shift}px' if shift else ''}")
    else:
        raise ValueError(f"numpy_cnn: unknown model {name!r}; choose from {MODELS}")
    model = build(layers, seed=cfg.seed, init=cfg.init, needs_input_grad=False)  # no ∂L/∂images
    optimizer = _optimizer(cfg, model.parameters(), lr)
    scheduler = _scheduler(cfg, optimizer, epochs)
    loader_kwargs: Dict[str, Any] = dict(batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed, flatten=False)
    loader = (AugmentedLoader(train, max_shift=shift, shift_order="per_axis", **loader_kwargs) if shift
              else DataLoader(train, **loader_kwargs))
    log(f"\n== {name}: {what}, {model.num_parameters():,} parameters, {cfg.optimizer} lr {lr:g}, "
        f"{cfg.schedule} schedule, {epochs} epochs of {len(loader)} batches of {cfg.batch_size}")
    t0 = time.perf_counter()
    history = fit(model, SoftmaxCrossEntropy(), optimizer, loader, val=val, test=test, epochs=epochs,
                  seed=cfg.seed, flatten=False, scheduler=scheduler, log=log,
                  config={**asdict(cfg), "model": name, "layers": [repr(d) for d in layers]})
    wall = time.perf_counter() - t0
    history.save(out / f"{name}_history.json")
    write_table(out, f"{name}_epochs", epoch_rows(history))
    final = history.test_accuracy[-1]
    schedule = "" if cfg.schedule == "none" else f", {cfg.schedule} schedule"
    title = run_title(dataset_label(cfg.dataset), cfg.batch_size, lr, history.epochs, wall,
                      prefix=f"numpy {what}, {cfg.optimizer}{schedule}: {100 * final:.2f}% test")
    plot_curves({name: history}, out / f"{name}_learning_curves.png", wrap(title), train="running")
    log(f"{name}: {100 * final:.2f}% test accuracy after {history.epochs} epochs, {wall:.0f} s "
        f"(median {np.median(history.epoch_seconds):.1f} s per epoch incl. evaluation)")
    return {"model": name, "description": what, "parameters": model.num_parameters(), "lr": lr,
            "epochs": history.epochs,
            "seconds": wall, "median_epoch_seconds": float(np.median(history.epoch_seconds)),
            "test_accuracy": final, "test_loss": history.test_loss[-1],
            "best_test_accuracy_seen": max(history.test_accuracy), "history": history}


def _plot_comparison(results, path, cfg: Config):
    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lowest = 100.0
    for r in results:
        h = r["history"]
        accs = [100 * a for a in h.test_accuracy]
        lowest = min(lowest, *accs)
        ax.plot(range(1, h.epochs + 1), accs, "-o", markersize=3,
                label=f"{r['model']}: {r['description']} ({r['parameters']:,} params), lr {r['lr']:g}, "
                      f"{r['epochs']} epochs, {r['seconds']:.1f} s training")
    for target in (98.8, 99.3):
        ax.axhline(target, color="grey", lw=0.8, ls="--")
    schedule = "" if cfg.schedule == "none" else f", {cfg.schedule} schedule"
    title = run_title(dataset_label(cfg.dataset), cfg.batch_size, prefix=f"numpy CNNs, {cfg.optimizer}{schedule}")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(min(97.5, lowest - 0.5), 100))
    ax.set_title(title, fontsize=10)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: Config, log=print) -> dict:
    out = output_dir(f"{NAME}/{cfg.run}", cfg.out)
    save_config(out, cfg)
    train, val, test = load_splits(cfg, log)
    results = [train_model(name, cfg, train, val, test, out, log) for name in cfg.models]
    rows = [{"model": r["model"], "architecture": r["description"], "parameters": r["parameters"],
             "epochs": r["epochs"], "seconds": round(r["seconds"], 1),
             "test_accuracy_pct": round(100 * r["test_accuracy"], 2)} for r in results]
    log("\n" + write_table(out, "summary", rows))
    _plot_comparison(results, out / "test_accuracy.png", cfg)
    metrics: Dict[str, Any] = {r["model"]: {k: v for k, v in r.items() if k != "history"} for r in results}
    metrics.update(n_train=len(train), n_test=len(test), n_val=0 if val is None else len(val))
    write_json(out / "metrics.json", metrics)
    log(f"wrote {out}")
    return metrics


def main(argv=None) -> int:
    run(parse_config(Config, argv, description=__doc__.splitlines()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
