"""save, load and Checkpoint: write a model with its training state to one ``.npz`` file,
read it back, rebuild the model and restore the optimiser and schedule.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

import numpy as np

from ..architecture import layers_to_json
from ..models import LayerDesc, build
from ..nn.module import Module
from ..optim.optimizer import Optimizer
from ..optim.schedules import LRScheduler
from ..types import PathLike
from .atomic import atomic_write
from .layout import (
    FORMAT,
    META_KEY,
    OPTIM_PREFIX,
    VERSION,
    CheckpointError,
    describe_or_fail,
    hyperparameters,
    join_state,
    layers_or_fail,
    module_extras,
    restore_extras,
    split_state,
    versions,
)

if TYPE_CHECKING:  # imported where used, like the method below
    from ..history import History

__all__ = ["Checkpoint", "save", "load", "load_checkpoint"]


def save(path: PathLike, model: Module, optimizer: Optional[Optimizer] = None,
         scheduler: Optional[LRScheduler] = None, history: Optional[History] = None, epoch: Optional[int] = None,
         config: Optional[dict] = None, layers: Optional[Sequence[LayerDesc]] = None,
         extra: Optional[dict] = None) -> Path:
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
    from ..history import json_default

    layers = describe_or_fail(model) if layers is None else tuple(layers)
    state = model.state_dict()
    if any(k == META_KEY or k.startswith(OPTIM_PREFIX) for k in state):
        raise CheckpointError(f"save: the model has a parameter named like a reserved key ({META_KEY}, "
                              f"{OPTIM_PREFIX}...)")
    arrays = dict(state)
    dtype = model.dtype
    meta = {"format": FORMAT, "version": VERSION, "versions": versions(),
            "architecture": layers_to_json(layers), "dtype": None if dtype is None else str(dtype),
            "parameters": {k: list(v.shape) for k, v in state.items()},
            "modules": module_extras(model), "epoch": epoch, "config": dict(config or {}),
            "extra": dict(extra or {})}
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        opt_arrays, scalars = split_state(opt_state)
        arrays.update(opt_arrays)
        meta["optimizer"] = {"class": type(optimizer).__name__, "lr": opt_state["lr"],
                             "step_count": opt_state["step_count"], "hyperparameters": hyperparameters(optimizer),
                             "scalars": scalars}
    if scheduler is not None:
        meta["scheduler"] = {"class": type(scheduler).__name__, "state": scheduler.state_dict()}
    if history is not None:
        meta["history"] = history.to_dict()
    text = json.dumps(meta, default=json_default)
    arrays[META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    # numpy's stub types **kwds as its keyword-only allow_pickle: bool; the arrays are what savez takes
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]


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
        return layers_or_fail(self.meta["architecture"], self.path)

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
    def history(self) -> Optional[History]:
        """The saved :class:`~tinygrad_mnist.train.History`, or None."""
        from ..history import History

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
        restore_extras(model, self.meta.get("modules", {}), self.path)
        return model

    def _saved_state(self, key: str, what: str, obj: object) -> dict:
        """The saved ``meta[key]`` ("optimizer" or "scheduler"), checked to exist and to
        come from ``obj``'s class; else :class:`CheckpointError` naming ``what`` differs."""
        saved = self.meta.get(key)
        if saved is None:
            raise CheckpointError(f"{self.path}: the checkpoint holds no {what} state")
        if saved["class"] != type(obj).__name__:
            raise CheckpointError(f"{self.path}: the {what} is {type(obj).__name__}, the "
                                  f"checkpoint was saved from {saved['class']}")
        return saved

    def restore(self, model: Module, optimizer: Optional[Optimizer] = None,
                scheduler: Optional[LRScheduler] = None) -> None:
        """Put the saved state into ``model``, ``optimizer`` and ``scheduler`` (those given).

        Raises :class:`CheckpointError` naming the mismatch: layer names or shapes, the
        optimiser's class or a hyperparameter, the schedule's class, or an optimiser or
        schedule given where the checkpoint holds none.
        """
        self.restore_model(model)
        if optimizer is not None:
            saved = self._saved_state("optimizer", "optimiser", optimizer)
            now = json.loads(json.dumps(hyperparameters(optimizer)))
            for key in sorted(set(now) | set(saved["hyperparameters"])):
                if now.get(key) != saved["hyperparameters"].get(key):
                    raise CheckpointError(f"{self.path}: optimiser {key} is {now.get(key)!r}, the checkpoint "
                                          f"was saved with {saved['hyperparameters'].get(key)!r}")
            try:
                optimizer.load_state_dict(join_state(saved, self.optimizer_arrays))
            except ValueError as err:
                raise CheckpointError(f"{self.path}: {err}") from None
        if scheduler is not None:
            saved = self._saved_state("scheduler", "schedule", scheduler)
            scheduler.load_state_dict(saved["state"])
        elif self.meta.get("scheduler") is not None and optimizer is not None:
            raise CheckpointError(f"{self.path}: the checkpoint was saved with a "
                                  f"{self.meta['scheduler']['class']} schedule, none was given")


def load(path: PathLike) -> Checkpoint:
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
