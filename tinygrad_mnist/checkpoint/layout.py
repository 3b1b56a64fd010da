"""What a checkpoint file holds besides the model's arrays: its reserved keys and format
version, and how per-layer state and optimiser state become arrays and JSON.

The model's ``state_dict`` arrays are stored under their own names; the optimiser's
per-parameter arrays under ``"optimizer/<i>/<key>"`` (:func:`split_state` /
:func:`join_state`); everything else in the JSON document under ``"__meta__"``, including
per-layer state that is not an array (:func:`module_extras` / :func:`restore_extras`) and
the optimiser's hyperparameters (:func:`hyperparameters`).
"""

from __future__ import annotations

import platform
from typing import Any, Dict, Tuple

import numpy as np

from ..architecture import ArchitectureError, describe_model, layers_from_json
from ..models import LayerDesc
from ..nn.batchnorm import BatchNorm1d, BatchNorm2d
from ..nn.conv import Conv2d
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.regularization import Dropout
from ..optim.optimizer import Optimizer
from ..types import PathLike

FORMAT = "tinygrad_mnist.checkpoint"
VERSION = 1
META_KEY = "__meta__"
OPTIM_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, not a checkpoint, or does not match what it is loaded into."""


def describe_or_fail(model: Module) -> Tuple[LayerDesc, ...]:
    try:
        return describe_model(model)
    except ArchitectureError as err:
        raise CheckpointError(str(err)) from None


def layers_or_fail(data: Any, path: PathLike) -> Tuple[LayerDesc, ...]:
    try:
        return layers_from_json(data)
    except ArchitectureError as err:
        raise CheckpointError(f"{path}: {err}") from None

def versions() -> Dict[str, str]:
    """Versions of Python, numpy and this package (recorded in every checkpoint and run)."""
    from .. import __version__

    return {"tinygrad_mnist": __version__, "numpy": np.__version__, "python": platform.python_version()}


# -- per-module state that is not an array -------------------------------------------------
def module_extras(model: Module) -> dict:
    extras: Dict[str, Dict[str, Any]] = {}
    for name, m in model.named_modules():
        entry: Dict[str, Any] = {}
        if isinstance(m, Dropout):
            entry["rng"] = m.rng.bit_generator.state
            entry["bit_generator"] = type(m.rng.bit_generator).__name__
        if isinstance(m, (BatchNorm1d, BatchNorm2d)):
            entry["num_batches_tracked"] = int(m.num_batches_tracked)
        if isinstance(m, (Linear, Conv2d)) and not m.needs_input_grad:
            entry["needs_input_grad"] = False
        if entry:
            extras[name] = entry
    return extras


def restore_extras(model: Module, extras: dict, path: PathLike) -> None:
    modules = dict(model.named_modules())
    for name, entry in extras.items():
        m = modules.get(name)
        if m is None:
            raise CheckpointError(f"{path}: the checkpoint has state for layer {name!r}, which the model lacks")
        if "rng" in entry:
            if not isinstance(m, Dropout):
                raise CheckpointError(f"{path}: layer {name!r} is a {type(m).__name__} in the model but "
                                      "a Dropout in the checkpoint")
            if type(m.rng.bit_generator).__name__ != entry.get("bit_generator", "PCG64"):
                raise CheckpointError(f"{path}: layer {name!r} draws from a {type(m.rng.bit_generator).__name__} "
                                      f"generator, the checkpoint saved a {entry.get('bit_generator')}")
            m.rng.bit_generator.state = entry["rng"]
        if "num_batches_tracked" in entry:
            m.num_batches_tracked = int(entry["num_batches_tracked"])
        if "needs_input_grad" in entry:
            m.needs_input_grad = bool(entry["needs_input_grad"])


# -- the optimiser and schedule --------------------------------------------------------------
def hyperparameters(optimizer: Optimizer) -> dict:
    """The optimiser's scalar settings other than the (scheduled) learning rate."""
    skip = {"lr", "step_count", "params", "state", "flush_every"}
    out: Dict[str, Any] = {}
    for k, v in vars(optimizer).items():
        if k in skip or k.startswith("_"):
            continue
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v):
            out[k] = list(v)
    return out


def split_state(state: dict) -> Tuple[Dict[str, np.ndarray], Dict[str, Dict[str, Any]]]:
    """Optimiser state → (arrays for the npz, JSON-able scalars)."""
    arrays: Dict[str, np.ndarray] = {}
    scalars: Dict[str, Dict[str, Any]] = {}
    for i, s in state["state"].items():
        for key, value in s.items():
            if isinstance(value, np.ndarray):
                arrays[f"{OPTIM_PREFIX}{int(i)}/{key}"] = value
            elif isinstance(value, (np.integer, np.floating)):
                scalars.setdefault(str(int(i)), {})[key] = value.item()
            else:
                scalars.setdefault(str(int(i)), {})[key] = value
    return arrays, scalars


def join_state(meta_opt: dict, arrays: dict) -> dict:
    state: Dict[int, dict] = {}
    for i, s in meta_opt.get("scalars", {}).items():
        state.setdefault(int(i), {}).update(s)
    for key, value in arrays.items():
        i, _, name = key[len(OPTIM_PREFIX):].partition("/")
        state.setdefault(int(i), {})[name] = value
    return {"lr": meta_opt["lr"], "step_count": meta_opt["step_count"], "state": state}
