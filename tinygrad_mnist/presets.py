"""The named models every command shares: one registry, one spelling.

``tinygrad-mnist train --model NAME``, ``explore --model NAME``, ``gradcheck --model NAME``,
``bench --models NAME ...`` and the studies that take a model name all build the model
this registry describes under that name (``tinygrad-mnist models`` lists them)::

    classic-mlp   784-64-10, sigmoid, softmax output, N(0, 0.1²) weights (the course's network)
    deep-mlp      784-64-32-10, tanh, logits, Glorot-uniform weights (the explorer's MLP)
    wide-mlp      784-512-512-10, ReLU, logits, Glorot-uniform weights (the benchmark's large MLP)
    course-cnn    three 3×3 convolutions (8, 16, 32), two max-pools, a linear head
    small-cnn     the course CNN with channels (4, 8): two convolutions, one pool
    lenet         the PyTorch tutorial's LeNet (5×5 convolutions 6 and 16, fc 120-84-10)

A preset holds a spec (:class:`~tinygrad_mnist.models.MLPSpec`,
:class:`~tinygrad_mnist.models.CourseCNNSpec` or :class:`~tinygrad_mnist.models.LeNetSpec`)
for 28×28 images and 10 classes; :meth:`Preset.spec_for` adapts it to other images and
applies a command's overrides (``--hidden``, ``--activation``, ``--channels``, ...), and
:meth:`Preset.layers` gives its :class:`~tinygrad_mnist.models.LayerDesc` tuple.

>>> get("classic-mlp").num_parameters()
50890

Two recipes train the classic MLP (see the README, "What make demo runs", for why their
learning rates differ by about the batch size): :data:`ASSIGNMENT_RECIPE`, the MLP
project's settings that ``tinygrad-mnist train`` uses, and :data:`TUNED_RECIPE`, the
settings of the ``baseline`` study.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Tuple, Union

import numpy as np

from .models import CourseCNNSpec, LayerDesc, LeNetSpec, MLPSpec, build, num_parameters
from .nn import Module
from .nn.conventions import resolve_alias
from .types import DTypeLike

Spec = Union[MLPSpec, CourseCNNSpec, LeNetSpec]


@dataclass(frozen=True)
class Recipe:
    """How a preset is trained by default: optimiser, learning rate, batch size, loss reduction."""

    name: str
    description: str
    optimizer: str
    lr: float
    batch_size: int
    reduction: str


#: The MLP project's assignment settings (``tinygrad-mnist train``'s default for classic-mlp):
#: plain SGD, batch 256, lr 0.001 on the cross-entropy **summed** over the batch.
ASSIGNMENT_RECIPE = Recipe("assignment", "plain SGD, batch 256, lr 0.001 on the loss summed over the batch",
                           "sgd", 0.001, 256, "sum")
#: The tuned settings of the ``baseline`` study: plain SGD, batch 64, lr 0.5 on the **mean** loss.
TUNED_RECIPE = Recipe("tuned", "plain SGD, batch 64, lr 0.5 on the loss averaged over the batch",
                      "sgd", 0.5, 64, "mean")
#: What ``tinygrad-mnist train`` uses for every other preset.
ADAM_RECIPE = Recipe("adam", "Adam, batch 256, lr 0.001 on the mean loss", "adam", 0.001, 256, "mean")


@dataclass(frozen=True)
class Preset:
    """A named model.

    Attributes
    ----------
    name : str
        The hyphenated name every command accepts.
    description : str
        One line.
    spec : MLPSpec, CourseCNNSpec or LeNetSpec
        The model on 28×28 images with 10 classes.
    recipe : Recipe
        ``tinygrad-mnist train``'s default optimiser, learning rate and loss reduction.
    """

    name: str
    description: str
    spec: Spec
    recipe: Recipe = ADAM_RECIPE

    @property
    def flat_input(self) -> bool:
        """True when the model takes flat (n, H·W) rows, False for (n, 1, H, W) images."""
        return isinstance(self.spec, MLPSpec)

    @property
    def init(self) -> str:
        """The weight initialiser (biases start at 0)."""
        return self.spec.init if isinstance(self.spec, MLPSpec) else "he_uniform"

    @property
    def init_kwargs(self) -> dict:
        return dict(self.spec.init_kwargs) if isinstance(self.spec, MLPSpec) else {}

    @property
    def hidden(self) -> Tuple[int, ...]:
        """Hidden widths of an MLP preset (``()`` for the CNNs)."""
        return tuple(self.spec.sizes[1:-1]) if isinstance(self.spec, MLPSpec) else ()

    def spec_for(self, image_shape: Tuple[int, int] = (28, 28), num_classes: int = 10, **changes: Any) -> Spec:
        """The spec on ``image_shape`` images with ``num_classes`` classes, with ``changes``.

        ``changes`` are spec fields (``activation``, ``output``, ``channels``, ...; ``hidden``
        for the MLPs' hidden widths); a None value keeps the preset's.  A field the preset
        does not have is a ValueError naming it.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        h, w = (int(s) for s in image_shape)
        if isinstance(self.spec, MLPSpec):
            hidden = tuple(changes.pop("hidden", self.hidden))
            changes["sizes"] = (h * w, *hidden, num_classes)
        else:
            if h != w:
                raise ValueError(f"{self.name} needs square images, got {h}x{w}")
            changes.update(image_size=h, num_classes=num_classes)
        known = {f.name for f in fields(self.spec)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"model {self.name}: no option {', '.join(unknown)} (it has {', '.join(sorted(known))})")
        return replace(self.spec, **changes)

    def layers(self, image_shape: Tuple[int, int] = (28, 28), num_classes: int = 10,
               **changes: Any) -> Tuple[LayerDesc, ...]:
        """The layer description (see :meth:`spec_for` for the arguments)."""
        return self.spec_for(image_shape, num_classes, **changes).layers()

    def num_parameters(self) -> int:
        """Learnable scalars on 28×28 images with 10 classes."""
        return num_parameters(self.layers())

    def build(self, seed: int = 0, dtype: DTypeLike = np.float32, **kwargs: Any) -> Module:
        """The numpy model on 28×28 images (``kwargs`` go to :func:`~tinygrad_mnist.models.build`)."""
        return build(self.layers(), seed=seed, dtype=dtype, init=self.init, init_kwargs=self.init_kwargs, **kwargs)


#: Every preset, by name, in the order ``tinygrad-mnist models`` lists them.
PRESETS: Dict[str, Preset] = {p.name: p for p in (
    Preset("classic-mlp", "the course's network: 784-64-10, sigmoid, softmax output, N(0, 0.1²) weights",
           MLPSpec((784, 64, 10), "sigmoid", "softmax", "normal", {"std": 0.1}), ASSIGNMENT_RECIPE),
    Preset("deep-mlp", "784-64-32-10, tanh, logits, Glorot-uniform weights (the explorer's MLP)",
           MLPSpec((784, 64, 32, 10), "tanh", "logits", "glorot_uniform")),
    Preset("wide-mlp", "784-512-512-10, ReLU, logits, Glorot-uniform weights (the benchmark's large MLP)",
           MLPSpec((784, 512, 512, 10), "relu", "logits", "glorot_uniform")),
    Preset("course-cnn", "the course CNN: 3x3 convolutions 8, 16, 32, two 2x2 max-pools, linear head; ReLU",
           CourseCNNSpec()),
    Preset("small-cnn", "the course CNN with channels 4, 8: two convolutions, one max-pool; ReLU",
           CourseCNNSpec(channels=(4, 8))),
    Preset("lenet", "the PyTorch tutorial's LeNet: 5x5 convolutions 6, 16, fc 120-84-10; ReLU", LeNetSpec()),
)}

#: Every name, in order (what each command's ``--model`` accepts).
NAMES: Tuple[str, ...] = tuple(PRESETS)

#: Old spellings still accepted, each with a note naming the new one.
ALIASES: Dict[str, str] = {
    "mlp": "classic-mlp",                 # train's --model mlp, gradcheck's --arch mlp
    "cnn": "course-cnn",                  # gradcheck's --arch cnn
    "course_cnn": "course-cnn",           # the torch-baselines study's --archs
    "mlp-784-64-10": "classic-mlp",       # bench's names
    "mlp-784-512-512-10": "wide-mlp",
    "mlp-784-64-32-10": "deep-mlp",
}


def canonical(name: str, warn: bool = True) -> str:
    """The registry name for ``name`` (an old spelling is mapped, with a note on stderr when ``warn``).

    Raises ValueError for a name that is neither a preset nor an alias.
    """
    if name in PRESETS:
        return name
    if name in ALIASES:
        return resolve_alias(name, ALIASES, "model", warn)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(NAMES)} (tinygrad-mnist models lists them)")


def get(name: str, warn: bool = True) -> Preset:
    """The preset called ``name`` (old spellings accepted, see :func:`canonical`)."""
    return PRESETS[canonical(name, warn)]


def model_name(text: str) -> str:
    """``argparse`` type of every ``--model`` (with ``choices=NAMES``): an old spelling becomes
    its registry name, with a note; any other text is left for ``choices`` to reject."""
    return canonical(text) if text in ALIASES else text


def names_help() -> str:
    """``--help`` text listing the names (``tinygrad-mnist models`` gives their layers)."""
    return "one of: " + ", ".join(NAMES) + " (tinygrad-mnist models shows their layers)"


def describe_layer(desc: LayerDesc) -> str:
    """One layer in a few characters: ``Linear 784→64``, ``Conv2d 1→8 3x3 pad 1``, ``Sigmoid``."""
    a = desc.kwargs
    if desc.kind == "linear":
        return f"Linear {a['in_features']}→{a['out_features']}"
    if desc.kind == "conv2d":
        k = a["kernel_size"]
        pad = f" pad {a['padding']}" if a.get("padding") else ""
        return f"Conv2d {a['in_channels']}→{a['out_channels']} {k}x{k}{pad}"
    if desc.kind in ("maxpool2d", "avgpool2d"):
        return f"{'Max' if desc.kind == 'maxpool2d' else 'Avg'}Pool2d {a['kernel_size']}"
    if desc.kind == "activation":
        return {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax",
                "identity": "Identity"}.get(str(a["name"]).lower(), str(a["name"]))
    if desc.kind == "flatten":
        return "Flatten"
    if desc.kind == "dropout":
        return f"Dropout {a.get('p', 0.5)}"
    if desc.kind in ("batchnorm1d", "batchnorm2d"):
        return f"BatchNorm {a['num_features']}"
    if desc.kind == "residual":
        return "Residual(" + ", ".join(describe_layer(d) for d in a["block"]) + ")"
    return desc.kind
