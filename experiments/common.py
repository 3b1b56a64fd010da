"""Helpers every experiment shares: output folder, config and result files, tables, the
data splits, the base config of the MLP studies and the report's setup block.

Each experiment writes into ``results/<experiment>/``: ``metrics.json``, tables as
Markdown and CSV, figures as PNG; the runner adds ``manifest.json``
(:mod:`experiments.manifest`).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from tinygrad_mnist.train import json_default

RESULTS_ROOT = Path("results")


def _json_default_with_dataclasses(obj):
    if is_dataclass(obj):
        return asdict(obj)
    try:
        return json_default(obj)
    except TypeError:
        return str(obj)


def output_dir(name: str, root=None) -> Path:
    """``results/<name>/`` (or ``<root>/<name>``), created."""
    path = Path(root if root is not None else RESULTS_ROOT) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path, obj) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=_json_default_with_dataclasses))
    return path


def save_config(out: Path, config) -> Path:
    """Save the configuration (a dataclass or dict) with the environment it ran in."""
    cfg = asdict(config) if is_dataclass(config) and not isinstance(config, type) else dict(config)
    cfg["_environment"] = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
    }
    return write_json(Path(out) / "config.json", cfg)


def write_table(out: Path, name: str, rows: List[Dict[str, Any]], floatfmt: str = ".4g",
                bold_row: Optional[int] = None) -> str:
    """Write ``rows`` (dicts with the same keys) as ``<name>.md`` and ``<name>.csv``.

    ``bold_row`` (an index) is set in bold in the Markdown.  Returns the Markdown text.
    """
    if not rows:
        raise ValueError(f"write_table: no rows for {name}")
    columns = list(rows[0].keys())
    md = markdown_table(rows, floatfmt, bold_row)
    out = Path(out)
    (out / f"{name}.md").write_text(md)
    with open(out / f"{name}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return md


_SPLITS: Dict[tuple, tuple] = {}  # (dataset, data_dir, sizes, split seed) -> (train, val, test)


def load_splits(cfg, log=print):
    """``(train, val, test)`` for an experiment config with ``dataset``, ``data_dir``,
    ``train_size``, ``val_size``, optional ``test_size`` and ``split_seed`` (else ``seed``).

    The validation set is drawn first (``val_size`` images, a seeded random split of the
    whole training set), then ``train_size`` selects the first images of what remains, so
    "2,000 training images + 10,000 validation images" is ``train_size=2000,
    val_size=10000``.  Sizes of 0 mean "all" (train, test) and "none" (validation).
    Splits are cached per process (images are read-only views, never copied per run).
    """
    from tinygrad_mnist.data import load_dataset, train_val_split

    split_seed = getattr(cfg, "split_seed", getattr(cfg, "seed", 0))
    train_size, val_size, test_size = (int(getattr(cfg, k, 0) or 0) for k in ("train_size", "val_size", "test_size"))
    for name, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if value < 0:
            raise ValueError(f"load_splits: {name} must be >= 0, got {value}")
    key = (str(cfg.dataset), cfg.data_dir, train_size, val_size, test_size, split_seed)
    if key not in _SPLITS:
        train, test = load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.data_dir is None)
        val = None
        if val_size:
            train, val = train_val_split(train, val_size=val_size, seed=split_seed)
        if train_size:
            train = train.first(min(train_size, len(train)))
        if test_size:
            test = test.first(min(test_size, len(test)))
        _SPLITS[key] = (train, val, test)
    train, val, test = _SPLITS[key]
    if log is not None:
        log(f"{train!r}, {test!r}{'' if val is None else ', ' + repr(val)}")
    return train, val, test


def dataset_label(dataset: str) -> str:
    """A dataset's name for titles: "MNIST", "digits 8×8", or a directory's base name."""
    key = str(dataset).lower()
    if key == "mnist":
        return "MNIST"
    if key == "digits":
        return "digits 8×8"
    return Path(str(dataset)).expanduser().name or str(dataset)


def epoch_rows(history) -> List[Dict[str, Any]]:
    """One table row per epoch of a ``History``: train loss and accuracy, validation and
    test figures when recorded (accuracies in percent), seconds."""
    rows = []
    for e in range(history.epochs):
        row = {"epoch": e + 1, "train_loss": history.train_loss[e],
               "train_accuracy_pct": 100 * history.train_accuracy[e]}
        for split in ("val", "test"):
            losses, accs = getattr(history, f"{split}_loss"), getattr(history, f"{split}_accuracy")
            if losses:
                row[f"{split}_loss"] = losses[e]
                row[f"{split}_accuracy_pct"] = 100 * accs[e]
        row["seconds"] = history.epoch_seconds[e]
        rows.append(row)
    return rows


def add_dataclass_args(parser: argparse.ArgumentParser, config_cls) -> None:
    """One ``--flag`` per dataclass field (``foo_bar`` → ``--foo-bar``), defaults kept."""
    for f in fields(config_cls):
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, (list, tuple)):
            elem = type(default[0]) if default else str
            parser.add_argument(flag, dest=f.name, nargs="+", type=elem, default=list(default))
        elif default is None:
            parser.add_argument(flag, dest=f.name, default=None)
        else:
            parser.add_argument(flag, dest=f.name, type=type(default), default=default)


def config_from_args(config_cls, args: argparse.Namespace):
    return config_cls(**{f.name: getattr(args, f.name) for f in fields(config_cls)})


def parse_config(config_cls, argv: Optional[Sequence[str]] = None, description: str = ""):
    """Build ``config_cls`` from the command line; ``--quick`` applies ``config_cls.quick()``."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small, fast version of the experiment")
    add_dataclass_args(parser, config_cls)
    args = parser.parse_args(argv)
    config = config_from_args(config_cls, args)
    if args.quick and hasattr(config, "quick"):
        config = config.quick()
    return config


#: What the fields many studies share mean, one line each: the ``--help`` of
#: ``python -m experiments run NAME`` (a ``# comment`` after a study's own field wins).
FIELD_HELP = {
    "dataset": "'mnist', 'digits' (scikit-learn's 8x8, no download) or an IDX / PNG-folder directory",
    "data_dir": "where MNIST lives (none: $TINYGRAD_MNIST_DATA, then the cache)",
    "train_size": "training images to use (0: all)",
    "val_size": "validation images held out of the training set (0: none)",
    "test_size": "test images to evaluate on (0: all)",
    "split_seed": "seeds the validation split (kept apart from the training seeds)",
    "jobs": "independent trainings run in this many local processes (joblib)",
    "scheduler": "a dask.distributed scheduler address, e.g. tcp://host:8786 (none: local); overrides --jobs",
    "out": "results go to OUT/<study>/",
    "hidden": "hidden layer widths of the MLP",
    "activation": "hidden activation: sigmoid, tanh, relu",
    "init": "weight initialiser (tinygrad_mnist.nn.init)",
    "init_std": "standard deviation of the 'normal' initialiser",
    "optimizer": "optimiser: sgd, adam, adamw, rmsprop, adagrad",
    "lr": "learning rate",
    "momentum": "SGD momentum (0: plain SGD)",
    "weight_decay": "weight decay of the optimiser (0: none)",
    "batch_size": "training mini-batch size",
    "epochs": "training epochs",
    "seed": "seeds the weights and the batch order",
    "seeds": "one training per seed",
    "engines": "which engines train: numpy, torch",
    "threads": "BLAS / torch threads",
    "device": "torch device: cpu, cuda or auto",
    "run": "name of the results subfolder",
    "schedule": "learning-rate schedule (none: constant)",
    "reduction": "loss over the batch: mean or sum",
    "dropout": "dropout probability (0: none)",
    "models": "the models to train",
    "archs": "the architectures to train",
    "channels": "channels of the CNN's convolutions",
    "lrs": "learning rates to sweep",
    "batch_sizes": "batch sizes to sweep",
    "hidden_sizes": "hidden widths to sweep",
    "hiddens": "hidden widths to sweep",
    "inits": "weight initialisers to compare",
    "activations": "activations to compare",
    "optimizers": "optimisers to compare",
    "depths": "residual depths to compare",
    "variants": "variants to compare",
    "configs": "hidden-layer configurations to compare",
    "tolerance": "allowed relative difference in parameter count",
    "perplexity": "t-SNE perplexity",
    "pool_first": "max-pool before the activation",
    "l1": "L1 penalty weight added to the loss (0: none)",
    "l2": "L2 penalty weight added to the loss (0: none)",
    "stop_at_target": "stop at the first epoch that reaches --target",
    "small_train": "training images of the small-data runs",
    "settings": "training settings to compare (assignment, tuned)",
    "lenet_padding": "padding of LeNet's first convolution",
    "max_shift": "largest shift of the shift augmentation, in pixels",
    "max_degrees": "largest rotation of the rotation augmentation, in degrees",
    "target_pct": "test accuracy target, in percent",
    "ns": "numbers of checked entries",
    "dtypes": "floating-point types to compare",
    "betas": "Adam's beta1 and beta2",
    "warmup_epochs": "linear warm-up epochs",
    "sgd_lr": "SGD learning rate",
    "batchnorm": "BatchNorm2d after each convolution",
    "hidden_act": "hidden activation",
    "digits": "also run the 8x8 digits part",
}

#: Prefixes of a study's fields that qualify a shared meaning (``mlp_lr``: "MLP: learning rate").
FIELD_PREFIXES = {"mlp": "MLP", "cnn": "CNN", "digits": "digits part", "deep": "deep MLPs", "course": "course CNN",
                  "best": "best CNN", "assignment": "assignment setting", "complex": "ComplexMLP",
                  "conv": "CNN", "sgd": "SGD", "adam": "Adam"}


# -- the base configuration of the MLP studies -----------------------------------------------
@dataclass
class DataConfig:
    """The data and execution fields every study shares (each study's ``Config`` adds its own).

    dataset : str, default="mnist"
        "mnist", "digits" (scikit-learn's 8×8, no download) or an IDX / PNG-folder directory.
    data_dir : str, optional
        Where MNIST lives; else ``$TINYGRAD_MNIST_DATA``, then the cache.
    train_size, val_size, test_size : int, default=0
        ``val_size`` images are held out of the training set first, then ``train_size``
        selects from the rest (0: all training images, no validation set, all test images).
    split_seed : int, default=0
        Seeds the validation split (kept apart from the training seeds).
    jobs : int, default=1
        Independent trainings run in this many local processes (joblib).
    scheduler : str, optional
        A dask.distributed scheduler address ("tcp://host:8786"); overrides ``jobs``.
    out : str, default="results"
        Results go to ``<out>/<study>/``.
    """

    dataset: str = "mnist"
    data_dir: Optional[str] = None
    train_size: int = 0
    val_size: int = 0
    test_size: int = 0
    split_seed: int = 0
    jobs: int = 1
    scheduler: Optional[str] = None
    out: str = "results"


def markdown_table(rows: List[Dict[str, Any]], floatfmt: str = ".4g", bold_row: Optional[int] = None) -> str:
    """``rows`` as a Markdown table; row ``bold_row`` (index) in bold."""
    columns = list(rows[0].keys())

    def fmt(v):
        return format(float(v), floatfmt) if isinstance(v, (float, np.floating)) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for i, r in enumerate(rows):
        cells = [fmt(r.get(c, "")) for c in columns]
        if i == bold_row:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def error_pct(accuracy: float) -> float:
    """Error rate in percent from an accuracy fraction."""
    return 100.0 * (1.0 - float(accuracy))


def mean_std(values) -> Dict[str, float]:
    """``{"mean", "std", "n"}`` with the sample standard deviation (ddof 1; 0 for one value)."""
    v = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def setup_info(cfg, result: dict, **extra) -> Dict[str, Any]:
    """The report's setup block from a study config and one training result: architecture,
    parameter count, activation, optimiser, lr, batch size, epochs, initialiser, seed(s), data."""
    run = result["run"]
    init = run["init"] + (f" (std {run['init_std']:g})" if run["init"] == "normal" else "")
    optimizer = run["optimizer"] + (f", momentum {run['momentum']:g}"
                                    if run["optimizer"] == "sgd" and run["momentum"] else "")
    info = {"architecture": result["architecture"], "parameters": result["parameters"],
            "activation": run["activation"], "optimizer": optimizer, "lr": run["lr"],
            "batch_size": run["batch_size"], "epochs": run["epochs"], "initializer": init,
            "seed": getattr(cfg, "seed", run["seed"]), "dataset": dataset_label(cfg.dataset),
            "n_train": result["n_train"], "n_val": result["n_val"], "n_test": result["n_test"]}
    info.update(extra)
    return info


def per_epoch_rows(histories: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per (run label, epoch): both training losses, accuracies and errors in percent."""
    rows = []
    for label, h in histories.items():
        for e in range(h.epochs):
            row = {"run": label, "epoch": e + 1, "train_loss_running": h.train_loss[e]}
            if h.train_eval_loss:
                row["train_loss_full"] = h.train_eval_loss[e]
                row["train_error_pct"] = error_pct(h.train_eval_accuracy[e])
            else:
                row["train_error_pct"] = error_pct(h.train_accuracy[e])
            for split in ("val", "test"):
                if getattr(h, f"{split}_loss"):
                    row[f"{split}_loss"] = getattr(h, f"{split}_loss")[e]
                    row[f"{split}_error_pct"] = error_pct(getattr(h, f"{split}_accuracy")[e])
            row["seconds"] = h.epoch_seconds[e]
            rows.append(row)
    return rows
