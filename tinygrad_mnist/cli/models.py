"""The models ``tinygrad-mnist train --model NAME`` builds, their per-model defaults, and
the shift augmentation.

=============  ===========================================================================
name           layers
=============  ===========================================================================
mlp            ``MLPSpec``: Linear/activation stack (``--hidden``), the classic 784-64-10
course-cnn     ``CourseCNNSpec``: 3×3 convolutions ``--channels``, max-pools, a Linear head;
               ``--pool-first``, ``--residual-depth``, ``--batch-norm``, ``--dropout``
lenet          the PyTorch tutorial's LeNet (5×5 convolutions 6 and 16, fc 120-84-10),
               ``--padding 2`` for the 32×32 geometry
=============  ===========================================================================
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

MODEL_NAMES = ("mlp", "course-cnn", "lenet")

#: Defaults that depend on the model; a flag or config key overrides them.
MODEL_DEFAULTS = {
    "mlp": {"activation": "sigmoid", "output": "softmax", "init": "normal", "reduction": "sum",
            "optimizer": "sgd", "lr": 0.001},
    "course-cnn": {"activation": "relu", "output": "logits", "init": "he_uniform", "reduction": "mean",
                   "optimizer": "adam", "lr": 0.001},
    "lenet": {"activation": "relu", "output": "logits", "init": "he_uniform", "reduction": "mean",
              "optimizer": "adam", "lr": 0.001},
}


def is_image_model(name: str) -> bool:
    """True for the models that take (N, 1, H, W) images instead of flat vectors."""
    return name != "mlp"


def lenet_layers(padding: int = 0, activation: str = "relu", image_size: int = 28,
                 num_classes: int = 10) -> Tuple[LayerDesc, ...]:
    """LeNet on 1×H×H images, the same description as ``torch_baselines.lenet_layers``
    (44,426 parameters on 28×28 with ``padding=0``; 61,706 with ``padding=2``)::

        conv 1→6 5×5 (padding p) → act → pool 2 → conv 6→16 5×5 → act → pool 2 → flatten
        → linear 16·s²→120 → act → linear 120→84 → act → linear 84→C
    """
    s = (((image_size + 2 * padding - 4) // 2) - 4) // 2
    if s < 1:
        raise ValueError(f"lenet: image size {image_size} with padding {padding} is too small "
                         "for two 5×5 convolutions and two 2×2 pools")
    act = LayerDesc.make("activation", name=activation)
    pool = LayerDesc.make("maxpool2d", kernel_size=2, stride=2)
    return (
        LayerDesc.make("conv2d", in_channels=1, out_channels=6, kernel_size=5, stride=1, padding=padding),
        act, pool,
        LayerDesc.make("conv2d", in_channels=6, out_channels=16, kernel_size=5, stride=1, padding=0),
        act, pool, LayerDesc.make("flatten"),
        LayerDesc.make("linear", in_features=16 * s * s, out_features=120), act,
        LayerDesc.make("linear", in_features=120, out_features=84), act,
        LayerDesc.make("linear", in_features=84, out_features=num_classes),
    )


def model_layers(args: argparse.Namespace, image_shape: Tuple[int, int],
                 num_classes: int) -> Tuple[Tuple[LayerDesc, ...], dict, str, dict]:
    """``(layers, spec dict, init, init_kwargs)`` for ``args.model`` on images of ``image_shape``
    (``--dropout`` is added after building, by :func:`with_dropout`)."""
    h, w = image_shape
    if args.model == "mlp":
        spec = MLPSpec((h * w, *args.hidden, num_classes), args.activation, args.output, args.init,
                       {"std": args.init_std} if args.init == "normal" else {})
        return spec.layers(), spec.to_dict(), spec.init, spec.init_kwargs
    if h != w:
        raise ValueError(f"--model {args.model} needs square images, got {h}x{w}")
    if args.activation not in ("relu", "tanh", "sigmoid"):
        raise ValueError(f"--model {args.model}: --activation must be relu, tanh or sigmoid, got {args.activation!r}")
    if args.model == "course-cnn":
        cnn = CourseCNNSpec(activation=args.activation, pool_first=args.pool_first,
                             residual_depth=args.residual_depth, channels=tuple(args.channels),
                             image_size=h, num_classes=num_classes, output=args.output)
        layers = list(cnn.layers())
        spec_dict = cnn.to_dict()
    else:
        layers = list(lenet_layers(args.padding, args.activation, h, num_classes))
        if args.output == "softmax":
            layers.append(LayerDesc.make("activation", name="softmax"))
        spec_dict = {"name": "lenet", "padding": args.padding, "activation": args.activation,
                     "image_size": h, "num_classes": num_classes, "output": args.output}
    if args.batch_norm:  # BatchNorm2d after every convolution outside residual blocks
        out = []
        for d in layers:
            out.append(d)
            if d.kind == "conv2d":
                out.append(LayerDesc.make("batchnorm2d", num_features=d.kwargs["out_channels"]))
        layers = out
    spec_dict.update(batch_norm=args.batch_norm, dropout=args.dropout)
    return tuple(layers), spec_dict, args.init, {"std": args.init_std} if args.init == "normal" else {}


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
