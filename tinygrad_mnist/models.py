"""Model descriptions and the one ``build`` that turns them into numpy models.

A model is described once, framework-neutrally, as a tuple of :class:`LayerDesc`
(``MLPSpec(...).layers()``, ``CourseCNNSpec(...).layers()``, ...).  :func:`build` turns the
description into a numpy :class:`~tinygrad_mnist.nn.Sequential` here and
``torch_baselines.build`` into a ``torch.nn.Sequential`` there: one module per description,
parameters in the same order with the same shapes and names (``weight``
``(out, in[, kh, kw])``, ``bias``), so ``torch_baselines.bridge`` copies weights across by
position and both frameworks compute the same function.  :func:`build_mlp` and
:func:`build_course_cnn` are :func:`build` applied to a spec's layers.

>>> model = build_course_cnn(CourseCNNSpec(), seed=0)
>>> model.num_parameters()
21578
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import DTypeLike

from .nn.activations import ACTIVATIONS, activation_by_name, activation_name
from .nn.batchnorm import BatchNorm1d, BatchNorm2d
from .nn.conv import Conv2d
from .nn.linear import Linear
from .nn.module import Module, Sequential, resolve_dtype, resolve_rng
from .nn.pool import AvgPool2d, MaxPool2d
from .nn.regularization import Dropout
from .nn.reshape import Flatten
from .nn.residual import Residual

OUTPUTS = ("logits", "softmax")


@dataclass
class MLPSpec:
    """Description of an MLP ``sizes[0] → sizes[1] → ... → sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths including input and output, e.g. ``(784, 64, 10)``.
    activation : str, default="sigmoid"
        Hidden activation: "sigmoid", "tanh", "relu" or "identity".
    output : {"logits", "softmax"}, default="logits"
        "softmax" ends the network with a Softmax layer (train it with ``CrossEntropy``);
        "logits" leaves the last Linear bare (train it with ``SoftmaxCrossEntropy``).
    init : str, default="glorot_uniform"
        Weight initialiser name; biases start at zero.
    init_kwargs : dict
        E.g. ``{"std": 0.1}`` for ``init="normal"``.
    """

    sizes: Tuple[int, ...] = (784, 64, 10)
    activation: str = "sigmoid"
    output: str = "logits"
    init: str = "glorot_uniform"
    init_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"MLPSpec: sizes needs at least two positive widths, got {self.sizes}")
        if activation_name(self.activation, warn=False) not in ACTIVATIONS:
            raise ValueError(f"MLPSpec: unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if self.output not in OUTPUTS:
            raise ValueError(f"MLPSpec: output must be one of {OUTPUTS}, got {self.output!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def num_parameters(self) -> int:
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    def layers(self) -> Tuple["LayerDesc", ...]:
        """The layer description: Linear, activation, ..., Linear [, Softmax]."""
        out = []
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        for i, (n_in, n_out) in enumerate(pairs):
            out.append(LayerDesc.make("linear", in_features=n_in, out_features=n_out))
            if i < len(pairs) - 1:
                out.append(LayerDesc.make("activation", name=self.activation))
        if self.output == "softmax":
            out.append(LayerDesc.make("activation", name="softmax"))
        return tuple(out)


#: The classic assignment's network: 784-64-10, sigmoid, softmax output, N(0, 0.1²) weights.
CLASSIC_MLP = MLPSpec((784, 64, 10), "sigmoid", "softmax", "normal", {"std": 0.1})


# -- framework-neutral layer descriptions ---------------------------------------------
# A model is described as a list of ``LayerDesc``; :func:`build` turns it
# into numpy modules and ``torch_baselines.models.build`` into torch modules, with the
# same parameters in the same order, so weights copy over by position.
@dataclass(frozen=True)
class LayerDesc:
    """One layer: ``kind`` and its keyword arguments.

    Kinds and their arguments:

    - ``"conv2d"``: in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True
    - ``"maxpool2d"`` / ``"avgpool2d"``: kernel_size, stride
    - ``"activation"``: name ("relu", "tanh", "sigmoid", "softmax", "identity")
    - ``"flatten"``: no arguments
    - ``"linear"``: in_features, out_features
    - ``"dropout"``: p
    - ``"batchnorm1d"`` / ``"batchnorm2d"``: num_features
    - ``"residual"``: block (tuple of LayerDesc), projection (LayerDesc or None);
      computes ``block(x) + projection(x)`` (identity when projection is None)
    """

    kind: str
    args: Tuple[Tuple[str, object], ...] = ()

    @classmethod
    def make(cls, kind: str, **args: Any) -> "LayerDesc":
        return cls(kind, tuple(args.items()))

    @property
    def kwargs(self) -> dict:
        return dict(self.args)


@dataclass
class CourseCNNSpec:
    """The course CNN: three 3×3 convolutions (8, 16, 32 channels, stride 1, padding 1)
    with an activation each, a 2×2/2 max-pool after the first two, and a fully connected
    layer to 10 classes (21,578 parameters for 1×28×28 input)::

        conv 1→8  → act → pool → conv 8→16 → act → pool → conv 16→32 → act → flatten
        → linear 32·7·7→10 [→ softmax]

    Parameters
    ----------
    activation : {"relu", "tanh", "sigmoid"}, default="relu"
    pool_first : bool, default=False
        Put each max-pool before its activation (``conv → pool → act``).
    residual_depth : int, default=0
        0 for plain layers; 2 or 3 replaces each conv+activation pair by a block of that
        many pairs with a skip over the block (``Residual``; a 1×1 convolution projects
        the skip where the channel count changes).
    channels : tuple of int, default=(8, 16, 32)
    in_channels, image_size, num_classes : int
    output : {"logits", "softmax"}, default="logits"
    skip : bool, default=True
        With ``residual_depth`` 2 or 3: False gives the plain deep control, the same
        blocks of pairs one after the other without the skip (and without projections).
    batch_norm : bool, default=False
        A ``batchnorm2d`` after every convolution, before its activation (and pooling).
    dropout : float, default=0
        A ``dropout`` of this rate before the final linear layer (0: none).
    """

    activation: str = "relu"
    pool_first: bool = False
    residual_depth: int = 0
    channels: Tuple[int, ...] = (8, 16, 32)
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    output: str = "logits"
    skip: bool = True
    batch_norm: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.residual_depth not in (0, 2, 3):
            raise ValueError(f"CourseCNNSpec: residual_depth must be 0, 2 or 3, got {self.residual_depth}")
        if self.activation not in ("relu", "tanh", "sigmoid"):
            raise ValueError(f"CourseCNNSpec: activation must be relu, tanh or sigmoid, got {self.activation!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"CourseCNNSpec: output must be one of {OUTPUTS}, got {self.output!r}")
        if not self.skip and self.residual_depth == 0:
            raise ValueError("CourseCNNSpec: skip = False is the plain control of residual blocks; "
                             "give residual_depth 2 or 3")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"CourseCNNSpec: dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    def _conv(self, c_in: int, c_out: int) -> Tuple[LayerDesc, ...]:
        conv = LayerDesc.make("conv2d", in_channels=c_in, out_channels=c_out, kernel_size=3, stride=1, padding=1)
        return (conv, LayerDesc.make("batchnorm2d", num_features=c_out)) if self.batch_norm else (conv,)

    def layers(self) -> Tuple[LayerDesc, ...]:
        act = LayerDesc.make("activation", name=self.activation)
        pool = LayerDesc.make("maxpool2d", kernel_size=2, stride=2)
        out, size, c_in = [], self.image_size, self.in_channels
        for i, c_out in enumerate(self.channels):
            pooled = i < len(self.channels) - 1
            if self.residual_depth >= 2:
                block = []
                for j in range(self.residual_depth):
                    block += [*self._conv(c_in if j == 0 else c_out, c_out), act]
                if self.skip:
                    proj = None if c_in == c_out else LayerDesc.make(
                        "conv2d", in_channels=c_in, out_channels=c_out, kernel_size=1, stride=1, padding=0)
                    out.append(LayerDesc.make("residual", block=tuple(block), projection=proj))
                else:
                    out += block
                if pooled:
                    out.append(pool)
            else:
                out += self._conv(c_in, c_out)
                out += [pool, act] if (pooled and self.pool_first) else [act] + ([pool] if pooled else [])
            if pooled:
                size //= 2
            c_in = c_out
        out.append(LayerDesc.make("flatten"))
        if self.dropout:
            out.append(LayerDesc.make("dropout", p=float(self.dropout)))
        out.append(LayerDesc.make("linear", in_features=c_in * size * size, out_features=self.num_classes))
        if self.output == "softmax":
            out.append(LayerDesc.make("activation", name="softmax"))
        return tuple(out)


@dataclass
class LeNetSpec:
    """The PyTorch tutorial's LeNet on 1×H×H images (``torch_baselines.lenet_layers`` is the
    same description): 44,426 parameters on 28×28 with ``padding=0``, 61,706 with
    ``padding=2`` (the tutorial's 32×32 geometry)::

        conv 1→6 5×5 (padding p) → act → pool 2 → conv 6→16 5×5 → act → pool 2 → flatten
        → linear 16·s²→120 → act → linear 120→84 → act → linear 84→C [→ softmax]

    Parameters
    ----------
    padding : int, default=0
    activation : {"relu", "tanh", "sigmoid"}, default="relu"
    image_size, num_classes : int, default=28, 10
    output : {"logits", "softmax"}, default="logits"
    """

    padding: int = 0
    activation: str = "relu"
    image_size: int = 28
    num_classes: int = 10
    output: str = "logits"

    def __post_init__(self) -> None:
        if self.activation not in ("relu", "tanh", "sigmoid"):
            raise ValueError(f"LeNetSpec: activation must be relu, tanh or sigmoid, got {self.activation!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"LeNetSpec: output must be one of {OUTPUTS}, got {self.output!r}")
        if self._side() < 1:
            raise ValueError(f"lenet: image size {self.image_size} with padding {self.padding} is too small "
                             "for two 5×5 convolutions and two 2×2 pools")

    def _side(self) -> int:
        return (((self.image_size + 2 * self.padding - 4) // 2) - 4) // 2

    def to_dict(self) -> dict:
        return asdict(self)

    def layers(self) -> Tuple[LayerDesc, ...]:
        s = self._side()
        act = LayerDesc.make("activation", name=self.activation)
        pool = LayerDesc.make("maxpool2d", kernel_size=2, stride=2)
        out = (
            LayerDesc.make("conv2d", in_channels=1, out_channels=6, kernel_size=5, stride=1, padding=self.padding),
            act, pool,
            LayerDesc.make("conv2d", in_channels=6, out_channels=16, kernel_size=5, stride=1, padding=0),
            act, pool, LayerDesc.make("flatten"),
            LayerDesc.make("linear", in_features=16 * s * s, out_features=120), act,
            LayerDesc.make("linear", in_features=120, out_features=84), act,
            LayerDesc.make("linear", in_features=84, out_features=self.num_classes),
        )
        return out + ((LayerDesc.make("activation", name="softmax"),) if self.output == "softmax" else ())


def num_parameters(layers: Iterable[LayerDesc]) -> int:
    """Learnable scalars of a described model, counted from the descriptions alone.

    conv2d: ``C_out·C_in·k² + C_out``; linear: ``out·in + out``; batchnorm: ``2·C``;
    residual: its block plus its projection; everything else: 0.
    """
    total = 0
    for d in layers:
        a = d.kwargs
        if d.kind == "conv2d":
            k = a["kernel_size"]
            kh, kw = (k, k) if isinstance(k, int) else k
            total += a["out_channels"] * a["in_channels"] * kh * kw + (a["out_channels"] if a.get("bias", True) else 0)
        elif d.kind == "linear":
            total += a["out_features"] * a["in_features"] + (a["out_features"] if a.get("bias", True) else 0)
        elif d.kind in ("batchnorm1d", "batchnorm2d"):
            total += 2 * a["num_features"]
        elif d.kind == "residual":
            total += num_parameters(a["block"])
            if a.get("projection") is not None:
                total += num_parameters((a["projection"],))
    return total


# -- numpy models from descriptions ------------------------------------------------------
#: The layer kinds :func:`build` understands (see :class:`LayerDesc`).
KINDS = ("conv2d", "maxpool2d", "avgpool2d", "activation", "flatten", "linear", "dropout",
         "batchnorm1d", "batchnorm2d", "residual")


def _layer(desc: LayerDesc, rng: np.random.Generator, dtype: DTypeLike, init: str, init_kwargs: dict) -> Module:
    """One numpy module for one description; parameters drawn from ``rng`` in order."""
    if not isinstance(desc, LayerDesc):
        raise TypeError(f"build: expected a LayerDesc, got {type(desc).__name__}")
    kind, a = desc.kind, desc.kwargs
    try:
        if kind == "conv2d":
            return Conv2d(a["in_channels"], a["out_channels"], a["kernel_size"], stride=a.get("stride", 1),
                          padding=a.get("padding", 0), bias=a.get("bias", True), init=init,
                          init_kwargs=init_kwargs, rng=rng, dtype=dtype)
        if kind == "maxpool2d":
            return MaxPool2d(a["kernel_size"], stride=a.get("stride"))
        if kind == "avgpool2d":
            return AvgPool2d(a["kernel_size"], stride=a.get("stride"))
        if kind == "activation":
            return activation_by_name(a["name"])
        if kind == "flatten":
            return Flatten()
        if kind == "linear":
            return Linear(a["in_features"], a["out_features"], bias=a.get("bias", True), init=init,
                          init_kwargs=init_kwargs, rng=rng, dtype=dtype)
        if kind == "dropout":
            return Dropout(a.get("p", 0.5), rng=np.random.default_rng(rng.integers(2**63)))
        if kind in ("batchnorm1d", "batchnorm2d"):
            cls = BatchNorm1d if kind == "batchnorm1d" else BatchNorm2d
            return cls(a["num_features"], eps=a.get("eps", 1e-5), momentum=a.get("momentum", 0.1), dtype=dtype)
        if kind == "residual":
            block = Sequential(*(_layer(d, rng, dtype, init, init_kwargs) for d in a["block"]))
            proj = a.get("projection")
            return Residual(block, None if proj is None else _layer(proj, rng, dtype, init, init_kwargs))
    except KeyError as err:
        raise ValueError(f"build: layer {kind!r} is missing the argument {err.args[0]!r} ({desc})") from None
    raise ValueError(f"build: unknown layer kind {kind!r}; choose one of {KINDS}")


def build(layers: Iterable[LayerDesc], seed: int = 0, rng: Optional[np.random.Generator] = None,
          dtype: DTypeLike = np.float32, init: str = "he_uniform", init_kwargs: Optional[dict] = None,
          needs_input_grad: bool = True) -> Sequential:
    """A numpy ``Sequential`` made from layer descriptions, one module per description.

    Parameters
    ----------
    layers : iterable of LayerDesc
        E.g. ``CourseCNNSpec().layers()``.
    seed : int, default=0
        Seeds the generator when ``rng`` is not given.
    rng : np.random.Generator, optional
        Every weight (and each Dropout layer's own generator) is drawn from it, layer by
        layer in order, so one seed fixes the whole model.
    dtype : float32 or float64, default=float32
    init : str, default="he_uniform"
        Weight initialiser of every ``conv2d`` and ``linear`` (biases start at 0); see
        :mod:`tinygrad_mnist.nn.init`.
    init_kwargs : dict, optional
    needs_input_grad : bool, default=True
        False when the model's input is data whose gradient nobody needs (training): a
        first ``Conv2d`` or ``Linear`` then skips computing ``∂L/∂x`` and
        ``model.backward`` returns None, as torch skips it for an input without
        ``requires_grad``.  Other first layers (e.g. Dropout) are unaffected.

    Returns
    -------
    Sequential
        Children ``"0"``, ``"1"``, ... matching ``torch_baselines.models.build(layers)``.
    """
    dtype = resolve_dtype(dtype, "build")
    rng = resolve_rng(rng, seed, "build")
    model = Sequential(*(_layer(d, rng, dtype, init, dict(init_kwargs or {})) for d in layers))
    if not needs_input_grad and len(model) and isinstance(model[0], (Conv2d, Linear)):
        model[0].needs_input_grad = False
    return model


def build_course_cnn(spec: Optional[CourseCNNSpec] = None, seed: int = 0, dtype: DTypeLike = np.float32,
                     rng: Optional[np.random.Generator] = None, init: str = "he_uniform",
                     needs_input_grad: bool = True) -> Sequential:
    """The course CNN (see :class:`CourseCNNSpec`) in numpy.

    Default spec, 21,578 parameters, input (N, 1, 28, 28) → logits (N, 10)::

        Conv2d(1, 8, 3, padding=1)   → ReLU → MaxPool2d(2, 2)          80
        Conv2d(8, 16, 3, padding=1)  → ReLU → MaxPool2d(2, 2)       1,168
        Conv2d(16, 32, 3, padding=1) → ReLU → Flatten               4,640
        Linear(32·7·7, 10)                                         15,690
    """
    spec = CourseCNNSpec() if spec is None else spec
    if not isinstance(spec, CourseCNNSpec):
        raise TypeError(f"build_course_cnn: expected a CourseCNNSpec, got {type(spec).__name__}")
    return build(spec.layers(), seed=seed, rng=rng, dtype=dtype, init=init, needs_input_grad=needs_input_grad)


def build_mlp(spec: MLPSpec, seed: int = 0, rng: Optional[np.random.Generator] = None,
              dtype: DTypeLike = np.float32, needs_input_grad: bool = True) -> Sequential:
    """The MLP ``spec`` describes: ``build(spec.layers(), init=spec.init, ...)``.

    Layers are drawn in order from one generator, so a seed fixes every weight.
    ``needs_input_grad=False`` lets the first layer skip ``∂L/∂x`` (the input is data).
    """
    if not isinstance(spec, MLPSpec):
        raise TypeError(f"build_mlp: expected an MLPSpec, got {type(spec).__name__}")
    return build(spec.layers(), seed=seed, rng=rng, dtype=dtype, init=spec.init,
                 init_kwargs=spec.init_kwargs, needs_input_grad=needs_input_grad)


def with_dropout(model: Sequential, p: float, image_model: bool, seed: int = 0) -> Sequential:
    """The same layers (the same module objects, so the same weights) with ``Dropout(p)`` inserted.

    An MLP (``image_model=False``) gets a dropout after every hidden activation (every
    parameter-free layer between the first and the last with a learned layer after it); a
    CNN gets one before its last ``Linear``.  The masks come from one generator seeded
    ``[seed, 1]``, apart from the weights' generator, so the weights equal those of the
    model built without dropout (``tinygrad-mnist train --dropout``).

    Parameters
    ----------
    model : Sequential
    p : float
        Drop probability of every inserted layer.
    image_model : bool
    seed : int, default=0
    """
    layers, rng = list(model), np.random.default_rng([seed, 1])
    linears = [i for i, m in enumerate(layers) if isinstance(m, Linear)]
    if image_model and not linears:
        raise ValueError("with_dropout: an image model needs a Linear layer to put the dropout before")
    out: List[Module] = []
    for i, layer in enumerate(layers):
        if image_model and i == linears[-1]:
            out.append(Dropout(p, rng=rng))
        out.append(layer)
        if not image_model and 0 < i < len(layers) - 1 and not layer.parameters() and any(
                m.parameters() for m in layers[i + 1:]):
            out.append(Dropout(p, rng=rng))
    return Sequential(*out)


def mlp(sizes: Sequence[int], activation: str = "sigmoid", output: str = "logits",
        init: str = "glorot_uniform", seed: int = 0, dtype: DTypeLike = np.float32,
        **init_kwargs: Any) -> Sequential:
    """Shortcut: ``mlp((784, 64, 10), "sigmoid", init="normal", std=0.1)``."""
    return build_mlp(MLPSpec(tuple(sizes), activation, output, init, init_kwargs), seed=seed, dtype=dtype)
