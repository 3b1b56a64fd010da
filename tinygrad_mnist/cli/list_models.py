"""``tinygrad-mnist models``: every named model (:mod:`tinygrad_mnist.presets`) with its
layers and parameter count, the names ``train``, ``explore``, ``gradcheck`` and ``bench`` accept.

    tinygrad-mnist models
    tinygrad-mnist models --json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..models import num_parameters
from ..presets import ALIASES, PRESETS, describe_layer
from .common import DefaultsFormatter


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models", help="list the named models every command accepts, with layers and parameter counts",
        description="List the model registry (tinygrad_mnist.presets): each name, what it is, its layers on "
                    "28x28 images with 10 classes, its parameter count and the recipe `train` uses for it. "
                    "train --model, explore --model, gradcheck --model and bench --models take these names.",
        formatter_class=DefaultsFormatter)
    p.add_argument("--json", action="store_true", help="one JSON object per model, one per line")
    p.set_defaults(func=run_models)
    return p


def model_rows() -> list:
    """One dict per preset: name, description, input, layers, parameters, train recipe."""
    rows = []
    for p in PRESETS.values():
        layers = p.layers()
        rows.append({"name": p.name, "description": p.description,
                     "input": "784 (flattened)" if p.flat_input else "1x28x28",
                     "layers": [describe_layer(d) for d in layers], "parameters": num_parameters(layers),
                     "init": p.init, "recipe": {"name": p.recipe.name, "optimizer": p.recipe.optimizer,
                                                "lr": p.recipe.lr, "batch_size": p.recipe.batch_size,
                                                "reduction": p.recipe.reduction}})
    return rows


def run_models(args: argparse.Namespace) -> int:
    rows = model_rows()
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    for row in rows:
        r = row["recipe"]
        print(f"{row['name']:<12} {row['parameters']:>9,} parameters  {row['description']}")
        print(f"{'':<12} input {row['input']}: {' -> '.join(row['layers'])}")
        reduction = "summed" if r["reduction"] == "sum" else "mean"
        print(f"{'':<12} train: {r['optimizer']} lr {r['lr']:g} on the {reduction} loss, batch "
              f"{r['batch_size']} ({r['name']} recipe); weights {row['init']}\n")
    print("old spellings still accepted: " + ", ".join(f"{old} = {new}" for old, new in ALIASES.items()))
    return 0
