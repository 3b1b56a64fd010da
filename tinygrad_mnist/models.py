"""Model descriptions that build numpy models (and, in ``torch_baselines``, torch twins).

An :class:`MLPSpec` is the single description of a multi-layer perceptron: the same
spec builds :func:`build_mlp` here and ``torch_baselines.models.build_mlp`` there, so both
frameworks train literally the same architecture.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np

from .activations import ACTIVATIONS, activation
from .layers import Linear
from .module import Sequential

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

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"MLPSpec: sizes needs at least two positive widths, got {self.sizes}")
        if self.activation.lower() not in ACTIVATIONS:
            raise ValueError(f"MLPSpec: unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if self.output not in OUTPUTS:
            raise ValueError(f"MLPSpec: output must be one of {OUTPUTS}, got {self.output!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def num_parameters(self) -> int:
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


def build_mlp(spec: MLPSpec, seed: int = 0, rng: Optional[np.random.Generator] = None,
              dtype=np.float32, needs_input_grad: bool = True) -> Sequential:
    """A ``Sequential`` of ``Linear`` and activation layers following ``spec``.

    Layers are drawn in order from one generator, so a seed fixes every weight.
    ``needs_input_grad=False`` lets the first layer skip ``∂L/∂x`` (the input is data).
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    layers = []
    pairs = list(zip(spec.sizes[:-1], spec.sizes[1:]))
    for i, (n_in, n_out) in enumerate(pairs):
        layers.append(Linear(n_in, n_out, init=spec.init, init_kwargs=spec.init_kwargs, rng=rng, dtype=dtype))
        if i < len(pairs) - 1:
            layers.append(activation(spec.activation))
    if spec.output == "softmax":
        layers.append(activation("softmax"))
    layers[0].needs_input_grad = bool(needs_input_grad)
    return Sequential(*layers)


def mlp(sizes: Sequence[int], activation: str = "sigmoid", output: str = "logits",
        init: str = "glorot_uniform", seed: int = 0, dtype=np.float32, **init_kwargs) -> Sequential:
    """Shortcut: ``mlp((784, 64, 10), "sigmoid", init="normal", std=0.1)``."""
    return build_mlp(MLPSpec(tuple(sizes), activation, output, init, init_kwargs), seed=seed, dtype=dtype)


#: The classic assignment's network: 784-64-10, sigmoid, softmax output, N(0, 0.1²) weights.
CLASSIC_MLP = MLPSpec((784, 64, 10), "sigmoid", "softmax", "normal", {"std": 0.1})


# -- framework-neutral layer descriptions ---------------------------------------------
# A model is described as a list of ``LayerDesc``; ``tinygrad_mnist.cnn.build`` turns it
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
    def make(cls, kind: str, **args) -> "LayerDesc":
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
    """

    activation: str = "relu"
    pool_first: bool = False
    residual_depth: int = 0
    channels: Tuple[int, ...] = (8, 16, 32)
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    output: str = "logits"

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if self.residual_depth not in (0, 2, 3):
            raise ValueError(f"CourseCNNSpec: residual_depth must be 0, 2 or 3, got {self.residual_depth}")
        if self.activation not in ("relu", "tanh", "sigmoid"):
            raise ValueError(f"CourseCNNSpec: activation must be relu, tanh or sigmoid, got {self.activation!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"CourseCNNSpec: output must be one of {OUTPUTS}, got {self.output!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def layers(self) -> Tuple[LayerDesc, ...]:
        act = LayerDesc.make("activation", name=self.activation)
        pool = LayerDesc.make("maxpool2d", kernel_size=2, stride=2)
        out, size, c_in = [], self.image_size, self.in_channels
        for i, c_out in enumerate(self.channels):
            pooled = i < len(self.channels) - 1
            if self.residual_depth >= 2:
                block = []
                for j in range(self.residual_depth):
                    block += [LayerDesc.make("conv2d", in_channels=c_in if j == 0 else c_out,
                                             out_channels=c_out, kernel_size=3, stride=1, padding=1), act]
                proj = None if c_in == c_out else LayerDesc.make(
                    "conv2d", in_channels=c_in, out_channels=c_out, kernel_size=1, stride=1, padding=0)
                out.append(LayerDesc.make("residual", block=tuple(block), projection=proj))
                if pooled:
                    out.append(pool)
            else:
                out.append(LayerDesc.make("conv2d", in_channels=c_in, out_channels=c_out,
                                          kernel_size=3, stride=1, padding=1))
                out += [pool, act] if (pooled and self.pool_first) else [act] + ([pool] if pooled else [])
            if pooled:
                size //= 2
            c_in = c_out
        out += [LayerDesc.make("flatten"),
                LayerDesc.make("linear", in_features=c_in * size * size, out_features=self.num_classes)]
        if self.output == "softmax":
            out.append(LayerDesc.make("activation", name="softmax"))
        return tuple(out)


def mlp_layers(spec: MLPSpec) -> Tuple[LayerDesc, ...]:
    """The layer description of an MLP spec (the same structure ``build_mlp`` makes)."""
    out = []
    pairs = list(zip(spec.sizes[:-1], spec.sizes[1:]))
    for i, (n_in, n_out) in enumerate(pairs):
        out.append(LayerDesc.make("linear", in_features=n_in, out_features=n_out))
        if i < len(pairs) - 1:
            out.append(LayerDesc.make("activation", name=spec.activation))
    if spec.output == "softmax":
        out.append(LayerDesc.make("activation", name="softmax"))
    return tuple(out)
