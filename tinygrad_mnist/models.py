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
              dtype=np.float32) -> Sequential:
    """A ``Sequential`` of ``Linear`` and activation layers following ``spec``.

    Layers are drawn in order from one generator, so a seed fixes every weight.
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
    return Sequential(*layers)


def mlp(sizes: Sequence[int], activation: str = "sigmoid", output: str = "logits",
        init: str = "glorot_uniform", seed: int = 0, dtype=np.float32, **init_kwargs) -> Sequential:
    """Shortcut: ``mlp((784, 64, 10), "sigmoid", init="normal", std=0.1)``."""
    return build_mlp(MLPSpec(tuple(sizes), activation, output, init, init_kwargs), seed=seed, dtype=dtype)


#: The classic assignment's network: 784-64-10, sigmoid, softmax output, N(0, 0.1²) weights.
CLASSIC_MLP = MLPSpec((784, 64, 10), "sigmoid", "softmax", "normal", {"std": 0.1})
