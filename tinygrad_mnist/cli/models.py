"""How ``tinygrad-mnist train --model NAME`` builds a preset of :mod:`tinygrad_mnist.presets`
with the command's options, the per-model defaults, and the shift augmentation.

The model options apply where the preset has them: ``--hidden`` to the MLPs; ``--channels``,
``--pool-first``, ``--residual-depth`` to ``course-cnn`` and ``small-cnn``; ``--padding`` to
``lenet``; ``--activation``, ``--output``, ``--init``, ``--batch-norm``, ``--dropout`` to all.
"""

from __future__ import annotations

import argparse
from typing import Any, Iterator, List, Tuple

import numpy as np

from ..data import DataLoader, Dataset
from ..data.loader import Batch
from ..models import CourseCNNSpec, LayerDesc, MLPSpec
from ..nn.linear import Linear
from ..nn.module import Module, Sequential
from ..nn.regularization import Dropout
from ..presets import NAMES, PRESETS

MODEL_NAMES = NAMES

#: Defaults that depend on the model (its preset and recipe); a flag or config key overrides them.
MODEL_DEFAULTS = {
    name: {"hidden": list(p.hidden) or None, "channels": list(getattr(p.spec, "channels", ())) or None,
           "activation": p.spec.activation, "output": p.spec.output, "init": p.init,
           "reduction": p.recipe.reduction, "optimizer": p.recipe.optimizer, "lr": p.recipe.lr}
    for name, p in PRESETS.items()
}


def is_image_model(name: str) -> bool:
    """True for the models that take (N, 1, H, W) images instead of flat vectors."""
    return not PRESETS[name].flat_input


def model_layers(args: argparse.Namespace, image_shape: Tuple[int, int],
                 num_classes: int) -> Tuple[Tuple[LayerDesc, ...], dict, str, dict]:
    """``(layers, spec dict, init, init_kwargs)`` for ``args.model`` on images of ``image_shape``
    (``--dropout`` is added after building, by :func:`with_dropout`)."""
    preset = PRESETS[args.model]
    init_kwargs = {"std": args.init_std} if args.init == "normal" else {}
    changes = {"activation": args.activation, "output": args.output}
    if isinstance(preset.spec, MLPSpec):
        changes.update(hidden=tuple(args.hidden), init=args.init, init_kwargs=init_kwargs)
    elif isinstance(preset.spec, CourseCNNSpec):
        changes.update(channels=tuple(args.channels), pool_first=args.pool_first, residual_depth=args.residual_depth)
    else:
        changes.update(padding=args.padding)
    if not isinstance(preset.spec, MLPSpec) and args.activation not in ("relu", "tanh", "sigmoid"):
        raise ValueError(f"--model {args.model}: --activation must be relu, tanh or sigmoid, got {args.activation!r}")
    spec = preset.spec_for(image_shape, num_classes, **changes)
    layers = list(spec.layers())
    spec_dict = {"preset": args.model, **spec.to_dict()}
    if isinstance(spec, MLPSpec):
        return tuple(layers), spec_dict, spec.init, spec.init_kwargs
    if args.batch_norm:  # BatchNorm2d after every convolution outside residual blocks
        out = []
        for d in layers:
            out.append(d)
            if d.kind == "conv2d":
                out.append(LayerDesc.make("batchnorm2d", num_features=d.kwargs["out_channels"]))
        layers = out
    spec_dict.update(batch_norm=args.batch_norm, dropout=args.dropout)
    return tuple(layers), spec_dict, args.init, init_kwargs


def with_dropout(model: Sequential, p: float, image_model: bool, seed: int = 0) -> Sequential:
    """The same layers (and weights) with ``Dropout(p)`` inserted: after every hidden
    activation of an MLP, before the last Linear of a CNN.  The masks come from one
    generator seeded ``[seed, 1]``, so the weights equal those of the model without dropout."""
    layers, rng = list(model), np.random.default_rng([seed, 1])
    linears = [i for i, m in enumerate(layers) if isinstance(m, Linear)]
    out: List[Module] = []
    for i, layer in enumerate(layers):
        if image_model and i == linears[-1]:
            out.append(Dropout(p, rng=rng))
        out.append(layer)
        if not image_model and 0 < i < len(layers) - 1 and not layer.parameters() and any(
                m.parameters() for m in layers[i + 1:]):
            out.append(Dropout(p, rng=rng))
    return Sequential(*out)


# -- augmentation ------------------------------------------------------------------------------
def random_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate every image of ``x`` (N, C, H, W) by its own ``(dy, dx)`` uniform in
    ``[-s, s]²``, filling with 0: ``out[n, :, i, j] = x[n, :, i + dy_n, j + dx_n]``.

    Done for the batch at once: zero-pad by ``s``, view every H×W window of the padded
    batch, pick window ``(s + dy_n, s + dx_n)`` for image ``n``.  Returns a new array.
    """
    n, c, h, w = x.shape
    s = int(max_shift)
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    return np.ascontiguousarray(windows[np.arange(n), :, dy, dx])


class ShiftedLoader(DataLoader):
    """A DataLoader whose training batches are randomly shifted by up to ``max_shift`` pixels.

    The shifts of epoch ``e`` come from ``np.random.default_rng([seed, e, 1])``: a run is
    reproducible and a resumed run (which replays from ``set_epoch``) draws the same shifts.
    """

    def __init__(self, dataset: Dataset, max_shift: int, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        if int(max_shift) < 1:
            raise ValueError(f"ShiftedLoader: max_shift must be at least 1, got {max_shift}")
        self.max_shift = int(max_shift)

    def __iter__(self) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        h, w = self.dataset.image_shape
        for x, y in super().__iter__():
            shifted = random_shift(x.reshape(-1, 1, h, w), self.max_shift, rng)
            yield shifted.reshape(x.shape), y
