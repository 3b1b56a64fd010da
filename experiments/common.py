"""Helpers every experiment shares: output folder, config and result files, tables.

Each experiment writes into ``results/<experiment>/``: ``config.json`` (the full
configuration and seed), ``metrics.json``, tables as Markdown and CSV, figures as PNG.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

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
    cfg = asdict(config) if is_dataclass(config) else dict(config)
    cfg["_environment"] = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
    }
    return write_json(Path(out) / "config.json", cfg)


def write_table(out: Path, name: str, rows: List[Dict[str, Any]], floatfmt: str = ".4g") -> str:
    """Write ``rows`` (dicts with the same keys) as ``<name>.md`` and ``<name>.csv``.

    Returns the Markdown text.
    """
    if not rows:
        raise ValueError(f"write_table: no rows for {name}")
    columns = list(rows[0].keys())

    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    md = "\n".join(lines) + "\n"
    out = Path(out)
    (out / f"{name}.md").write_text(md)
    with open(out / f"{name}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return md


def load_splits(cfg, log=print):
    """``(train, val, test)`` for an experiment config with ``dataset``, ``data_dir``,
    ``train_size``, ``test_size``, ``val_size`` and ``seed`` (0 sizes mean all / none)."""
    from tinygrad_mnist.data import load_dataset, train_val_split

    train, test = load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.data_dir is None)
    if cfg.train_size:
        train = train.first(min(cfg.train_size, len(train)))
    if cfg.test_size:
        test = test.first(min(cfg.test_size, len(test)))
    val = None
    if cfg.val_size:
        train, val = train_val_split(train, val_size=cfg.val_size, seed=cfg.seed)
    log(f"{train!r}, {test!r}{'' if val is None else ', ' + repr(val)}")
    return train, val, test


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


def parse_config(config_cls, argv: Sequence[str] = None, description: str = ""):
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
