"""Checkpoints that lose nothing: a model and its architecture, the optimiser, the schedule,
the random generators and the history, in one ``.npz`` file written atomically.

One file holds

- every parameter and buffer under the model's own ``state_dict`` names (``"0.weight"``),
  so ``np.load(path)`` and ``model.load_state_dict(..., strict=False)`` still work;
- ``"optimizer/<i>/<key>"``: the optimiser's per-parameter arrays (momentum buffers, Adam
  moments), ``i`` the parameter's position;
- ``"__meta__"``: a JSON document (bytes) with the architecture as a list of
  :class:`~tinygrad_mnist.models.LayerDesc` (so :func:`load` rebuilds the model without the
  code that made it), the dtype, per-layer state that is not an array (each Dropout
  generator's state, BatchNorm counters), the optimiser's class, hyperparameters, step
  counts, the schedule's class and state, the history, the epoch reached, the training
  configuration, and the library versions.

A write goes to a temporary file in the same folder, is flushed and fsync'd, then renamed
over the old file (and the folder fsync'd): a kill at any moment leaves the previous
checkpoint or the new one, never a broken file.  A corrupt file, or one that does not fit
the model or optimiser it is loaded into, raises :class:`CheckpointError` naming what does
not match.

>>> from tinygrad_mnist import build_course_cnn, SGD
>>> model = build_course_cnn(seed=0)
>>> path = save("/tmp/doc-ckpt.npz", model, optimizer=SGD(model.parameters(), lr=0.1, momentum=0.9))
>>> load(path).model.num_parameters()
21578
"""

from __future__ import annotations

import json
import os
import platform
import signal
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .architecture import ArchitectureError, describe_model, layers_from_json, layers_to_json
from .models import LayerDesc, build
from .nn.batchnorm import BatchNorm1d, BatchNorm2d
from .nn.conv import Conv2d
from .nn.linear import Linear
from .nn.module import Module
from .nn.regularization import Dropout

__all__ = ["CheckpointError", "Checkpoint", "save", "load", "load_checkpoint", "describe_model",
           "layers_to_json", "layers_from_json", "atomic_write", "deferred_interrupt", "versions", "FORMAT",
           "VERSION"]

FORMAT = "tinygrad_mnist.checkpoint"
VERSION = 1
META_KEY = "__meta__"
OPTIM_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, not a checkpoint, or does not match what it is loaded into."""


def _describe_or_fail(model: Module):
    try:
        return describe_model(model)
    except ArchitectureError as err:
        raise CheckpointError(str(err)) from None


def _layers_or_fail(data, path):
    try:
        return layers_from_json(data)
    except ArchitectureError as err:
        raise CheckpointError(f"{path}: {err}") from None


# -- atomic writes --------------------------------------------------------------------------
def atomic_write(path, write) -> Path:
    """Write ``path`` through ``write(file_object)`` atomically.

    The bytes go to a temporary file in the same folder (same file system, so the rename
    is atomic), which is flushed and fsync'd before ``os.replace`` puts it in place; the
    folder is fsync'd after so the rename itself survives a power cut.  On any error
    (including KeyboardInterrupt) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return path
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)
    return path


@contextmanager
def deferred_interrupt():
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise ``KeyboardInterrupt``:
    a checkpoint being written is finished first.  Outside the main thread (where signal
    handlers cannot be set) the block runs unprotected; the write stays atomic anyway."""
    caught = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def versions() -> Dict[str, str]:
    """Versions of Python, numpy and this package (recorded in every checkpoint and run)."""
    from . import __version__

    return {"tinygrad_mnist": __version__, "numpy": np.__version__, "python": platform.python_version()}


# -- per-module state that is not an array -------------------------------------------------
def _module_extras(model: Module) -> dict:
    extras = {}
    for name, m in model.named_modules():
        entry = {}
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


def _restore_extras(model: Module, extras: dict, path) -> None:
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
def _hyperparameters(optimizer) -> dict:
    """The optimiser's scalar settings other than the (scheduled) learning rate."""
    skip = {"lr", "step_count", "params", "state", "flush_every"}
    out = {}
    for k, v in vars(optimizer).items():
        if k in skip or k.startswith("_"):
            continue
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v):
            out[k] = list(v)
    return out


def _split_state(state: dict):
    """Optimiser state → (arrays for the npz, JSON-able scalars)."""
    arrays, scalars = {}, {}
    for i, s in state["state"].items():
        for key, value in s.items():
            if isinstance(value, np.ndarray):
                arrays[f"{OPTIM_PREFIX}{int(i)}/{key}"] = value
            elif isinstance(value, (np.integer, np.floating)):
                scalars.setdefault(str(int(i)), {})[key] = value.item()
            else:
                scalars.setdefault(str(int(i)), {})[key] = value
    return arrays, scalars


def _join_state(meta_opt: dict, arrays: dict) -> dict:
    state: Dict[int, dict] = {}
    for i, s in meta_opt.get("scalars", {}).items():
        state.setdefault(int(i), {}).update(s)
    for key, value in arrays.items():
        i, _, name = key[len(OPTIM_PREFIX):].partition("/")
        state.setdefault(int(i), {})[name] = value
    return {"lr": meta_opt["lr"], "step_count": meta_opt["step_count"], "state": state}


# -- save / load -----------------------------------------------------------------------------
def save(path, model: Module, optimizer=None, scheduler=None, history=None, epoch: Optional[int] = None,
         config: Optional[dict] = None, layers=None, extra: Optional[dict] = None) -> Path:
    """Write a checkpoint of ``model`` (and whatever else is given) to ``path``, atomically.

    Parameters
    ----------
    path : str or Path
        Usually ending in ``.npz``.
    model : Sequential
        Its architecture is recorded from the model itself (:func:`describe_model`) unless
        ``layers`` is given.
    optimizer : Optimizer, optional
        Class, hyperparameters, learning rate, step count and every per-parameter state.
    scheduler : LRScheduler, optional
        Class and ``state_dict()``.
    history : History, optional
    epoch : int, optional
        The last finished epoch (what a resumed run continues after).
    config : dict, optional
        The training configuration (JSON values), e.g. seed and batch size.
    layers : sequence of LayerDesc, optional
    extra : dict, optional
        Anything else JSON-able (e.g. the dataset name, input layout, class count).

    Returns
    -------
    Path
    """
    from .history import json_default

    layers = _describe_or_fail(model) if layers is None else tuple(layers)
    state = model.state_dict()
    if any(k == META_KEY or k.startswith(OPTIM_PREFIX) for k in state):
        raise CheckpointError(f"save: the model has a parameter named like a reserved key ({META_KEY}, {OPTIM_PREFIX}...)")
    arrays = dict(state)
    dtype = model.dtype
    meta = {"format": FORMAT, "version": VERSION, "versions": versions(),
            "architecture": layers_to_json(layers), "dtype": None if dtype is None else str(dtype),
            "parameters": {k: list(v.shape) for k, v in state.items()},
            "modules": _module_extras(model), "epoch": epoch, "config": dict(config or {}),
            "extra": dict(extra or {})}
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        opt_arrays, scalars = _split_state(opt_state)
        arrays.update(opt_arrays)
        meta["optimizer"] = {"class": type(optimizer).__name__, "lr": opt_state["lr"],
                             "step_count": opt_state["step_count"], "hyperparameters": _hyperparameters(optimizer),
                             "scalars": scalars}
    if scheduler is not None:
        meta["scheduler"] = {"class": type(scheduler).__name__, "state": scheduler.state_dict()}
    if history is not None:
        meta["history"] = history.to_dict()
    text = json.dumps(meta, default=json_default)
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


@dataclass
class Checkpoint:
    """What :func:`load` read.  ``model`` is rebuilt from the architecture; ``restore``
    copies the optimiser, schedule and generators into live objects, checking they match."""

    path: Path
    meta: dict
    model_state: Dict[str, np.ndarray]
    optimizer_arrays: Dict[str, np.ndarray] = field(default_factory=dict)
    _model: Optional[Module] = None

    @property
    def layers(self) -> Tuple[LayerDesc, ...]:
        return _layers_or_fail(self.meta["architecture"], self.path)

    @property
    def epoch(self) -> Optional[int]:
        return self.meta.get("epoch")

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    @property
    def extra(self) -> dict:
        return self.meta.get("extra", {})

    def state_dict(self) -> Dict[str, np.ndarray]:
        return dict(self.model_state)

    @property
    def history(self):
        """The saved :class:`~tinygrad_mnist.train.History`, or None."""
        from .history import History

        h = self.meta.get("history")
        return None if h is None else History.from_dict(h)

    @property
    def model(self) -> Module:
        """The model rebuilt from the architecture, with the saved weights, buffers and generators."""
        if self._model is None:
            dtype = self.meta.get("dtype") or "float32"
            try:
                model = build(self.layers, dtype=np.dtype(dtype))
            except (ValueError, TypeError, KeyError) as err:
                raise CheckpointError(f"{self.path}: the architecture cannot be built: {err}") from None
            self.restore_model(model)
            self._model = model
        return self._model

    def restore_model(self, model: Module) -> Module:
        """Load the weights, buffers and per-layer state into ``model``; names and shapes must match."""
        own = model.state_dict()
        saved = self.model_state
        missing = [k for k in own if k not in saved]
        unexpected = [k for k in saved if k not in own]
        if missing or unexpected:
            raise CheckpointError(f"{self.path}: the checkpoint does not match the model: missing "
                                  f"{missing or 'nothing'}, unexpected {unexpected or 'nothing'}")
        for k, v in own.items():
            if saved[k].shape != v.shape:
                raise CheckpointError(f"{self.path}: {k} has shape {saved[k].shape} in the checkpoint, "
                                      f"{v.shape} in the model")
            if saved[k].dtype != v.dtype:
                raise CheckpointError(f"{self.path}: {k} is {saved[k].dtype} in the checkpoint, "
                                      f"{v.dtype} in the model")
        model.load_state_dict(saved)
        _restore_extras(model, self.meta.get("modules", {}), self.path)
        return model

    def restore(self, model: Module, optimizer=None, scheduler=None) -> None:
        """Put the saved state into ``model``, ``optimizer`` and ``scheduler`` (those given).

        Raises :class:`CheckpointError` naming the mismatch: layer names or shapes, the
        optimiser's class or a hyperparameter, the schedule's class, or an optimiser or
        schedule given where the checkpoint holds none.
        """
        self.restore_model(model)
        if optimizer is not None:
            saved = self.meta.get("optimizer")
            if saved is None:
                raise CheckpointError(f"{self.path}: the checkpoint holds no optimiser state")
            if saved["class"] != type(optimizer).__name__:
                raise CheckpointError(f"{self.path}: the optimiser is {type(optimizer).__name__}, the "
                                      f"checkpoint was saved from {saved['class']}")
            now = json.loads(json.dumps(_hyperparameters(optimizer)))
            for key in sorted(set(now) | set(saved["hyperparameters"])):
                if now.get(key) != saved["hyperparameters"].get(key):
                    raise CheckpointError(f"{self.path}: optimiser {key} is {now.get(key)!r}, the checkpoint "
                                          f"was saved with {saved['hyperparameters'].get(key)!r}")
            try:
                optimizer.load_state_dict(_join_state(saved, self.optimizer_arrays))
            except ValueError as err:
                raise CheckpointError(f"{self.path}: {err}") from None
        if scheduler is not None:
            saved = self.meta.get("scheduler")
            if saved is None:
                raise CheckpointError(f"{self.path}: the checkpoint holds no schedule state")
            if saved["class"] != type(scheduler).__name__:
                raise CheckpointError(f"{self.path}: the schedule is {type(scheduler).__name__}, the "
                                      f"checkpoint was saved from {saved['class']}")
            scheduler.load_state_dict(saved["state"])
        elif self.meta.get("scheduler") is not None and optimizer is not None:
            raise CheckpointError(f"{self.path}: the checkpoint was saved with a "
                                  f"{self.meta['scheduler']['class']} schedule, none was given")


def load(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save`; every array is read (and CRC-checked) now.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file is truncated or corrupt, not a checkpoint, or of a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in data.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(err).__name__}: {err})") from None
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: not a tinygrad_mnist checkpoint (no {META_KEY} entry; "
                              f"a plain state dict? load it with np.load)")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint description ({err})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad_mnist checkpoint (format {meta.get('format')!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta['version']} is newer than this "
                              f"library reads ({VERSION}); upgrade tinygrad_mnist")
    optim = {k: v for k, v in arrays.items() if k.startswith(OPTIM_PREFIX)}
    model_state = {k: v for k, v in arrays.items() if not k.startswith(OPTIM_PREFIX)}
    expected = meta.get("parameters", {})
    if set(expected) != set(model_state):
        raise CheckpointError(f"{path}: the arrays do not match the description: missing "
                              f"{sorted(set(expected) - set(model_state))}, unexpected "
                              f"{sorted(set(model_state) - set(expected))}")
    return Checkpoint(path=path, meta=meta, model_state=model_state, optimizer_arrays=optim)


#: The name other tools look for.
load_checkpoint = load
