"""The models the explorer can show: named presets, checkpoints, a moment of training.

An :class:`ExploreModel` is a numpy ``Sequential`` together with the
framework-neutral description it was built from (``torch_baselines.build`` makes the
torch twin from the same description) and what the explorer needs to feed it: the image
shape and whether the first layer takes flattened images.

==============  =====================================================================
preset          layers (for an ``H×W`` image, ``D = H·W``)
==============  =====================================================================
``mlp``         Linear D→64, Tanh, Linear 64→32, Tanh, Linear 32→10 (logits)
``classic-mlp`` Linear D→64, Sigmoid, Linear 64→10, Softmax (the course assignment)
``course-cnn``  the course CNN (:class:`~tinygrad_mnist.models.CourseCNNSpec`)
``small-cnn``   the course CNN with channels (4, 8): one pool, two convolutions
==============  =====================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Optional, Sequence, Tuple, cast

import numpy as np

from ..data import Dataset
from ..models import CourseCNNSpec, LayerDesc, MLPSpec, build
from ..nn.module import Sequential
from ..types import PathLike

PRESETS = ("mlp", "classic-mlp", "course-cnn", "small-cnn")


@dataclass
class ExploreModel:
    """A model ready to explore.

    Attributes
    ----------
    name : str
        Preset name or a description (shown in the page title).
    layers : tuple of LayerDesc
        The description the numpy model (and its torch twin) is built from.
    model : Sequential
        The numpy model, float64, eval mode.
    image_shape : (int, int)
        ``(H, W)`` of one input image.
    flat_input : bool
        True when the first layer takes ``(n, H·W)`` rows, False for ``(n, 1, H, W)``.
    source : str
        Where the weights come from ("fresh initialisation, seed 0", a checkpoint path, ...).
    trained : bool
        False for a fresh initialisation that was never trained (the page then says its
        prediction is chance); True after :func:`train_briefly` or for a checkpoint.
    """

    name: str
    layers: Tuple[LayerDesc, ...]
    model: Sequential
    image_shape: Tuple[int, int]
    flat_input: bool
    source: str
    trained: bool = False

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """Shape of one example as the model takes it: ``(H·W,)`` or ``(1, H, W)``."""
        h, w = self.image_shape
        return (h * w,) if self.flat_input else (1, h, w)

    @property
    def ends_with_softmax(self) -> bool:
        last = self.layers[-1]
        return last.kind == "activation" and str(last.kwargs.get("name", "")).lower() == "softmax"


def preset_layers(name: str, image_shape: Tuple[int, int] = (28, 28), num_classes: int = 10,
                  hidden: Optional[Sequence[int]] = None, activation: Optional[str] = None
                  ) -> Tuple[Tuple[LayerDesc, ...], dict]:
    """The layer description of a preset and its initialiser arguments for :func:`build`.

    Parameters
    ----------
    name : {"mlp", "classic-mlp", "course-cnn", "small-cnn"}
    image_shape : (int, int), default=(28, 28)
    num_classes : int, default=10
    hidden : sequence of int, optional
        Hidden widths of the MLP presets (default 64, 32 for "mlp" and 64 for "classic-mlp").
    activation : str, optional
        Hidden activation (default tanh for "mlp", sigmoid for "classic-mlp", relu for the CNNs).

    Returns
    -------
    (tuple of LayerDesc, dict)
        The layers and ``{"init": ..., "init_kwargs": ...}``.
    """
    h, w = (int(s) for s in image_shape)
    if name == "mlp":
        spec = MLPSpec((h * w, *(hidden or (64, 32)), num_classes), activation or "tanh", "logits",
                       "glorot_uniform")
        return spec.layers(), {"init": spec.init, "init_kwargs": {}}
    if name == "classic-mlp":
        spec = MLPSpec((h * w, *(hidden or (64,)), num_classes), activation or "sigmoid", "softmax",
                       "normal", {"std": 0.1})
        return spec.layers(), {"init": spec.init, "init_kwargs": dict(spec.init_kwargs)}
    if name in ("course-cnn", "small-cnn"):
        if h != w:
            raise ValueError(f"explore: the CNN presets need square images, got {h}x{w}")
        channels = (8, 16, 32) if name == "course-cnn" else (4, 8)
        cnn = CourseCNNSpec(activation=activation or "relu", channels=channels, image_size=h,
                            num_classes=num_classes)
        return cnn.layers(), {"init": "he_uniform", "init_kwargs": {}}
    raise ValueError(f"explore: unknown model {name!r}; choose one of {PRESETS}")


def read_checkpoint(path: PathLike) -> Tuple[Optional[Tuple[LayerDesc, ...]], dict]:
    """``(layers, state_dict)`` from a checkpoint file.

    A checkpoint of :mod:`tinygrad_mnist.checkpoint` (``checkpoint.npz`` of ``tinygrad-mnist
    train``) carries its architecture: ``layers`` is that description.  A plain ``.npz``
    state dict (``np.savez(path, **model.state_dict())``, e.g. ``model.npz``) gives
    ``layers=None``: the caller supplies the architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"explore: checkpoint {path} does not exist")
    ckpt: Optional[ModuleType]
    try:
        from .. import checkpoint as ckpt
    except ImportError:  # a library without the checkpoint format: plain state dicts only
        ckpt = None
    if ckpt is not None:
        try:
            loaded = ckpt.load(path)
        except ckpt.CheckpointError:
            pass  # not that format (a plain state dict, or not a checkpoint at all: np.load says which)
        else:
            return tuple(loaded.layers), {k: np.asarray(v) for k, v in loaded.state_dict().items()}
    try:
        with np.load(path, allow_pickle=False) as data:
            return None, {k: np.asarray(data[k]) for k in data.files}
    except (ValueError, OSError) as err:
        raise ValueError(f"explore: {path} is neither a checkpoint nor a .npz state dict ({err})") from None


def checkpoint_spec(path: PathLike) -> Optional[MLPSpec]:
    """The MLP spec saved next to a ``tinygrad-mnist train`` checkpoint (``config.json``), if any."""
    config = Path(path).with_name("config.json")
    if not config.is_file():
        return None
    try:
        spec = json.loads(config.read_text()).get("spec")
    except (ValueError, OSError):
        return None
    if not isinstance(spec, dict) or "sizes" not in spec:
        return None
    return MLPSpec(**spec)


def make_model(name: str = "mlp", image_shape: Tuple[int, int] = (28, 28), num_classes: int = 10,
               hidden: Optional[Sequence[int]] = None, activation: Optional[str] = None,
               checkpoint: Optional[PathLike] = None, seed: int = 0) -> ExploreModel:
    """Build a preset (or the model a checkpoint describes) in float64, eval mode.

    Parameters
    ----------
    name : str, default="mlp"
        A preset (see the module docstring).  A ``checkpoint`` that records its
        architecture, or a state dict with a ``config.json`` holding an MLP spec beside
        it, overrides the preset.
    image_shape : (int, int), default=(28, 28)
    num_classes : int, default=10
    hidden, activation : optional
        Preset overrides, see :func:`preset_layers`.
    checkpoint : path, optional
        A checkpoint of :mod:`tinygrad_mnist.checkpoint` (its architecture replaces the
        preset) or a plain ``.npz`` state dict whose names and shapes fit the model.
    seed : int, default=0
        Seeds the fresh initialisation.
    """
    saved_layers, state = read_checkpoint(checkpoint) if checkpoint is not None else (None, None)
    spec = checkpoint_spec(checkpoint) if checkpoint is not None and saved_layers is None else None
    init: Dict[str, Any]
    if saved_layers is not None:
        layers, init = saved_layers, {}
        label = f"{Path(cast(PathLike, checkpoint)).name} ({len(layers)} layers)"  # saved_layers: from it
    elif spec is not None:
        layers, init = spec.layers(), {"init": spec.init, "init_kwargs": dict(spec.init_kwargs)}
        label = f"MLP {'-'.join(map(str, spec.sizes))} {spec.activation}"
    else:
        layers, init = preset_layers(name, image_shape, num_classes, hidden, activation)
        label = name
    first = layers[0].kwargs
    if layers[0].kind == "linear" and first["in_features"] != image_shape[0] * image_shape[1]:
        raise ValueError(f"explore: the model takes {first['in_features']} inputs but the images are "
                         f"{image_shape[0]}x{image_shape[1]}; pick the dataset it was trained on")
    model = build(layers, seed=seed, dtype=np.float64, **init)
    source = f"fresh initialisation ({init.get('init', 'he_uniform')}, seed {seed})"
    if checkpoint is not None and state is not None:  # state: read from the checkpoint
        try:
            model.load_state_dict({k: np.asarray(v, dtype=np.float64) for k, v in state.items()})
        except KeyError as err:
            raise ValueError(f"explore: {checkpoint} does not fit the {label!r} model: {err.args[0]}; "
                             "choose the --model it was trained as") from None
        except ValueError as err:
            raise ValueError(f"explore: {checkpoint} does not fit the {label!r} model: {err}") from None
        source = f"checkpoint {checkpoint}" + (" (architecture from the checkpoint)" if saved_layers else "")
    model.eval()
    return ExploreModel(label, tuple(layers), model, (int(image_shape[0]), int(image_shape[1])),
                        layers[0].kind == "linear", source, trained=checkpoint is not None)


def train_briefly(em: ExploreModel, train: Dataset, n_images: int, epochs: int = 1, batch_size: int = 64,
                  lr: float = 1e-3, seed: int = 0) -> ExploreModel:
    """Train ``em`` for a moment with Adam on the first ``n_images`` training images.

    The model is trained in float32 (the engine's speed dtype), then converted back to
    float64; ``em`` is updated in place and returned.
    """
    from ..nn.losses import CrossEntropy, SoftmaxCrossEntropy
    from ..optim import Adam
    from ..train import fit

    if n_images < 1:
        return em
    model = em.model.astype(np.float32).train()
    loss = CrossEntropy() if em.ends_with_softmax else SoftmaxCrossEntropy()
    history = fit(model, loss, Adam(model.parameters(), lr=lr), train.first(min(n_images, len(train))),
                  epochs=epochs, batch_size=batch_size, seed=seed, flatten=em.flat_input, progress=False)
    em.model = model.astype(np.float64).eval()
    em.trained = True
    em.source += (f", then Adam lr {lr:g} for {history.epochs} epoch(s) on the first {min(n_images, len(train))} "
                  f"training images (batch {batch_size})")
    return em
