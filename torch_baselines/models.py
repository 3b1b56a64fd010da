"""PyTorch twins of the numpy models, built from the same framework-neutral descriptions.

A model is described once, as a tuple of :class:`~tinygrad_mnist.models.LayerDesc`
(``MLPSpec(...).layers()``, ``CourseCNNSpec(...).layers()``, ``lenet_layers()``
...).  :func:`build` turns that description into a ``torch.nn.Sequential`` here, and
``tinygrad_mnist.models.build`` turns it into a numpy ``Sequential`` there, with the same
parameters in the same order and the same shapes (weights ``(out, in)`` and
``(out, in, kh, kw)`` on both sides), so :mod:`torch_baselines.bridge` copies weights
across by position.

Architectures and their learnable parameters (1×28×28 input, 10 classes):

=====================================  ========  ==========================================
model                                  params    builder
=====================================  ========  ==========================================
course CNN                             21,578    ``build_course_cnn(CourseCNNSpec())``
course CNN, residual blocks of 2       34,434    ``CourseCNNSpec(residual_depth=2)``
course CNN, residual blocks of 3       46,586    ``CourseCNNSpec(residual_depth=3)``
plain (no-skip) blocks of 2 / of 3     33,730    ``CourseCNNSpec(residual_depth=2, skip=False)``
                                       45,882    ``CourseCNNSpec(residual_depth=3, skip=False)``
course CNN + batch norm + dropout      21,690    ``CourseCNNSpec(batch_norm=True, dropout=0.3)``
tutorial LeNet (no padding)            44,426    ``LeNet()``
tutorial LeNet (padding 2, 32×32 map)  61,706    ``LeNet(padding=2)``
classic MLP 784-64-10                  50,890    ``build_mlp(CLASSIC_MLP)``
SimpleMLP (8×8 digits)                  2,410    ``SimpleMLP()``
ComplexMLP (8×8 digits)                17,610    ``ComplexMLP()``
=====================================  ========  ==========================================

:func:`param_matched_cnn_spec` picks the widths of a course-style CNN whose parameter
count is within 10% of a target (e.g. an MLP's), for "similar number of parameters"
comparisons.

Dropout, batch norm and augmentation are the numpy engine's own: ``CourseCNNSpec``'s
``dropout`` and ``batch_norm`` (and any ``dropout`` / ``batchnorm1d`` / ``batchnorm2d``
description) build ``nn.Dropout`` / ``nn.BatchNorm*d`` here with the numpy defaults
(``eps=1e-5``, ``momentum=0.1``), and random shifts and rotations come from the batches of
``tinygrad_mnist.data.augment.AugmentedLoader``, which ``torch_baselines.fit`` reads like
the numpy ``fit``: both engines train on the same augmented images.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from tinygrad_mnist.models import CourseCNNSpec, LayerDesc, LeNetSpec, MLPSpec, num_parameters
from tinygrad_mnist.nn import init as np_init
from tinygrad_mnist.nn.activations import activation_name

__all__ = [
    "Residual", "build", "build_mlp", "build_course_cnn",
    "lenet_layers", "LeNet", "simple_mlp_layers", "SimpleMLP", "complex_mlp_layers",
    "ComplexMLP", "param_matched_cnn_spec", "build_param_matched_cnn",
]


class Residual(nn.Module):
    """``y = block(x) + projection(x)``; ``projection`` is the identity when ``None``.

    ``block`` is registered before ``projection`` so that the parameter order matches the
    numpy ``Residual`` (block weights first, then the 1×1 projection).

    Shapes
    ------
    x : (n, C_in, H, W) → y : (n, C_out, H, W); ``block`` and ``projection`` must agree.
    """

    def __init__(self, block: nn.Module, projection: Optional[nn.Module] = None):
        super().__init__()
        self.block = block
        self.projection = projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.projection is None else self.projection(x)
        return self.block(x) + skip


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}


def _activation(name: str) -> nn.Module:
    key = activation_name(str(name))  # the numpy side's names and aliases
    if key == "softmax":
        return nn.Softmax(dim=-1)
    if key not in _ACTIVATIONS:
        raise ValueError(f"build: unknown activation {name!r}; choose one of "
                         f"{sorted(list(_ACTIVATIONS) + ['softmax'])}")
    return _ACTIVATIONS[key]()


def _layer(desc: LayerDesc) -> nn.Module:
    if not isinstance(desc, LayerDesc):
        raise TypeError(f"build: expected a LayerDesc, got {type(desc).__name__}")
    kind, a = desc.kind, desc.kwargs
    try:
        if kind == "conv2d":
            return nn.Conv2d(a["in_channels"], a["out_channels"], a["kernel_size"],
                             stride=a.get("stride", 1), padding=a.get("padding", 0),
                             bias=a.get("bias", True))
        if kind == "maxpool2d":
            return nn.MaxPool2d(a["kernel_size"], stride=a.get("stride"))
        if kind == "avgpool2d":
            return nn.AvgPool2d(a["kernel_size"], stride=a.get("stride"))
        if kind == "activation":
            return _activation(a["name"])
        if kind == "flatten":
            return nn.Flatten()
        if kind == "linear":
            return nn.Linear(a["in_features"], a["out_features"], bias=a.get("bias", True))
        if kind == "dropout":
            return nn.Dropout(a.get("p", 0.5))
        if kind == "batchnorm1d":
            return nn.BatchNorm1d(a["num_features"], eps=a.get("eps", 1e-5), momentum=a.get("momentum", 0.1))
        if kind == "batchnorm2d":
            return nn.BatchNorm2d(a["num_features"], eps=a.get("eps", 1e-5), momentum=a.get("momentum", 0.1))
        if kind == "residual":
            proj = a.get("projection")
            return Residual(nn.Sequential(*(_layer(d) for d in a["block"])),
                            None if proj is None else _layer(proj))
    except KeyError as err:
        raise ValueError(f"build: layer {kind!r} is missing the argument {err.args[0]!r} ({desc})") from None
    raise ValueError(f"build: unknown layer kind {kind!r}")


def build(layers: Iterable[LayerDesc], seed: Optional[int] = None,
          dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """A ``torch.nn.Sequential`` made from layer descriptions, one module per description.

    Parameters
    ----------
    layers : iterable of LayerDesc
        E.g. ``CourseCNNSpec().layers()`` or ``MLPSpec(...).layers()``.
    seed : int, optional
        Seed torch's default initialisation (drawn on a forked RNG, so the global torch
        RNG is left untouched); ``None`` draws from the global RNG.
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    nn.Sequential
        Children ``"0"``, ``"1"``, ... like the numpy ``Sequential`` built from ``layers``.
    """
    layers = tuple(layers)
    if seed is None:
        model = nn.Sequential(*(_layer(d) for d in layers))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = nn.Sequential(*(_layer(d) for d in layers))
    return model.to(dtype)


# -- MLPs -------------------------------------------------------------------------------
def _torch_initializer(name: str, kwargs: dict):
    """The ``torch.nn.init`` equivalent of the numpy initialiser ``name`` (aliases allowed)."""
    fn = np_init.initializer(name)  # resolves aliases and raises on an unknown name
    kw = dict(kwargs)
    if fn is np_init.zeros:
        return lambda w, g: nn.init.zeros_(w)
    if fn is np_init.normal:
        std, mean = kw.get("std", 0.1), kw.get("mean", 0.0)
        return lambda w, g: nn.init.normal_(w, mean=mean, std=std, generator=g)
    if fn is np_init.uniform:
        bound = kw.get("bound", 0.05)
        return lambda w, g: nn.init.uniform_(w, -bound, bound, generator=g)
    if fn is np_init.glorot_uniform:
        return lambda w, g: nn.init.xavier_uniform_(w, gain=kw.get("gain", 1.0), generator=g)
    if fn is np_init.glorot_normal:
        return lambda w, g: nn.init.xavier_normal_(w, gain=kw.get("gain", 1.0), generator=g)
    # He/Kaiming: gain √2 (nonlinearity="relu"), fan_in: U(±√(6/fan_in)) and N(0, 2/fan_in).
    if fn is np_init.he_uniform:
        return lambda w, g: nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=g)
    if fn is np_init.he_normal:
        return lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
    raise ValueError(f"build_mlp: no torch equivalent for the initialiser {name!r}")


def build_mlp(spec: MLPSpec, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """The torch twin of ``tinygrad_mnist.models.build_mlp(spec)``.

    Same layers (``Linear`` / activation / optional ``Softmax``), weights drawn with the
    ``torch.nn.init`` equivalent of ``spec.init`` from a ``torch.Generator`` seeded with
    ``seed``, zero biases.  The draws differ from numpy's; copy the numpy weights over
    with :func:`torch_baselines.bridge.numpy_to_torch` when the two must be equal.
    """
    if not isinstance(spec, MLPSpec):
        raise TypeError(f"build_mlp: expected an MLPSpec, got {type(spec).__name__}")
    model = build(spec.layers(), dtype=dtype)
    init = _torch_initializer(spec.init, spec.init_kwargs)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                init(m.weight, gen)
                nn.init.zeros_(m.bias)
    return model


# -- CNNs -------------------------------------------------------------------------------
def build_course_cnn(spec: Optional[CourseCNNSpec] = None, seed: int = 0,
                     dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """The course CNN (see :class:`~tinygrad_mnist.models.CourseCNNSpec`), torch's default
    initialisation drawn from ``seed``.

    Default spec, 21,578 parameters::

        Conv2d(1, 8, 3, padding=1)   →  ReLU → MaxPool2d(2, 2)          80
        Conv2d(8, 16, 3, padding=1)  →  ReLU → MaxPool2d(2, 2)       1,168
        Conv2d(16, 32, 3, padding=1) →  ReLU → Flatten               4,640
        Linear(32·7·7, 10)                                          15,690
    """
    spec = CourseCNNSpec() if spec is None else spec
    if not isinstance(spec, CourseCNNSpec):
        raise TypeError(f"build_course_cnn: expected a CourseCNNSpec, got {type(spec).__name__}")
    return build(spec.layers(), seed=seed, dtype=dtype)


def lenet_layers(padding: int = 0, activation: str = "relu", image_size: int = 28,
                 num_classes: int = 10) -> Tuple[LayerDesc, ...]:
    """The PyTorch tutorial's LeNet-style CNN on 1×H×H images: the engine's
    :class:`~tinygrad_mnist.models.LeNetSpec` (one description, both engines)::

        Conv2d(1, 6, 5, padding=p) → act → MaxPool2d(2, 2)
        Conv2d(6, 16, 5)           → act → MaxPool2d(2, 2) → Flatten
        Linear(16·s·s, 120) → act → Linear(120, 84) → act → Linear(84, 10)

    The tutorial was written for 32×32 input (``s = 5``).  With ``padding=0`` only the
    first fully connected layer changes: 28 → 24 → 12 → 8 → 4, so ``s = 4`` and the model
    has 44,426 parameters; ``padding=2`` restores the tutorial's 32×32 geometry
    (``s = 5``, 61,706 parameters, LeCun's LeNet-5 layout).
    """
    return LeNetSpec(padding=padding, activation=activation, image_size=image_size, num_classes=num_classes).layers()


class LeNet(nn.Sequential):
    """The tutorial LeNet-style CNN on 1×28×28 input (see :func:`lenet_layers`).

    Conv 6@5×5 (padding ``padding``) → ReLU → max-pool 2×2/2 → conv 16@5×5 → ReLU →
    max-pool 2×2/2 → flatten → fc 120 → ReLU → fc 84 → ReLU → fc 10 (logits).
    44,426 parameters with ``padding=0``: 156 + 2,416 + 30,840 + 10,164 + 850.
    """

    def __init__(self, padding: int = 0, activation: str = "relu", num_classes: int = 10,
                 seed: Optional[int] = None):
        self.layer_descs = lenet_layers(padding, activation, num_classes=num_classes)
        super().__init__(*build(self.layer_descs, seed=seed))


# -- the 8×8 digits MLPs ----------------------------------------------------------------
def simple_mlp_layers(in_features: int = 64, hidden: int = 32, num_classes: int = 10) -> Tuple[LayerDesc, ...]:
    """``Linear(64, 32) → ReLU → Linear(32, 10)``: 2,080 + 330 = 2,410 parameters."""
    return (LayerDesc.make("linear", in_features=in_features, out_features=hidden),
            LayerDesc.make("activation", name="relu"),
            LayerDesc.make("linear", in_features=hidden, out_features=num_classes))


class SimpleMLP(nn.Sequential):
    """Two linear layers with a ReLU between, for the 8×8 digits (input 64 features).

    ``Linear(64, 32) → ReLU → Linear(32, 10)``, 2,410 parameters.
    """

    def __init__(self, in_features: int = 64, hidden: int = 32, num_classes: int = 10,
                 seed: Optional[int] = None):
        self.layer_descs = simple_mlp_layers(in_features, hidden, num_classes)
        super().__init__(*build(self.layer_descs, seed=seed))


def complex_mlp_layers(in_features: int = 64, hidden: Sequence[int] = (128, 64), dropout: float = 0.2,
                       num_classes: int = 10) -> Tuple[LayerDesc, ...]:
    """``[Linear → BatchNorm1d → ReLU → Dropout(p)]`` per hidden width, then ``Linear``.

    Default ``(64, (128, 64), 0.2)``: (8,320 + 256) + (8,256 + 128) + 650 = 17,610
    parameters (each BatchNorm1d learns a scale and a shift per feature).
    """
    out, n_in = [], in_features
    for h in hidden:
        out += [LayerDesc.make("linear", in_features=n_in, out_features=h),
                LayerDesc.make("batchnorm1d", num_features=h),
                LayerDesc.make("activation", name="relu"),
                LayerDesc.make("dropout", p=dropout)]
        n_in = h
    out.append(LayerDesc.make("linear", in_features=n_in, out_features=num_classes))
    return tuple(out)


class ComplexMLP(nn.Sequential):
    """A deeper MLP with BatchNorm and Dropout, for the 8×8 digits (see :func:`complex_mlp_layers`).

    ``Linear(64, 128) → BatchNorm1d(128) → ReLU → Dropout(0.2) → Linear(128, 64) →
    BatchNorm1d(64) → ReLU → Dropout(0.2) → Linear(64, 10)``, 17,610 parameters.
    """

    def __init__(self, in_features: int = 64, hidden: Sequence[int] = (128, 64), dropout: float = 0.2,
                 num_classes: int = 10, seed: Optional[int] = None):
        self.layer_descs = complex_mlp_layers(in_features, tuple(hidden), dropout, num_classes)
        super().__init__(*build(self.layer_descs, seed=seed))


# -- a CNN with about as many parameters as a given model -------------------------------
def _target_count(target) -> int:
    if isinstance(target, MLPSpec):
        return target.num_parameters()
    if isinstance(target, nn.Module):
        return sum(p.numel() for p in target.parameters() if p.requires_grad)
    if hasattr(target, "num_parameters") and callable(target.num_parameters):
        return int(target.num_parameters())
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        return int(target)
    raise TypeError(f"param_matched_cnn_spec: expected a count, an MLPSpec or a model, got {type(target).__name__}")


def param_matched_cnn_spec(target: Union[int, MLPSpec, nn.Module], tolerance: float = 0.10,
                           activation: str = "relu", in_channels: int = 1, image_size: int = 28,
                           num_classes: int = 10, max_width: int = 512) -> CourseCNNSpec:
    """A course-style CNN (``CourseCNNSpec`` with other widths) with about ``target`` parameters.

    The course CNN's shape is kept: 3×3 convolutions of widths ``(c, 2c, c₃)`` and the
    linear classifier.  Among all widths whose count lies within ``tolerance`` of the
    target, the one closest to the course's proportions ``c₃ = 4c`` is returned (then
    the one closest to the target, then the smaller); ``c₃ ∈ [2c, 8c]`` gives the fine
    steps that ``c`` alone lacks at small widths.  E.g. 50,890 (the 784-64-10 MLP) →
    widths (15, 30, 60), 49,900 parameters.

    Parameters
    ----------
    target : int, MLPSpec or model
        The parameter count to match, or something to count it from.
    tolerance : float, default=0.10
        The largest accepted relative difference ``|count - target| / target``.

    Raises
    ------
    ValueError
        When no width within ``max_width`` comes within ``tolerance`` (e.g. a target below
        the smallest such CNN).
    """
    n = _target_count(target)
    if n < 1:
        raise ValueError(f"param_matched_cnn_spec: target must be positive, got {n}")

    def spec(c, c3):
        return CourseCNNSpec(activation, channels=(c, 2 * c, c3), in_channels=in_channels,
                             image_size=image_size, num_classes=num_classes)

    best, closest = None, None
    for c in range(1, max_width + 1):
        if num_parameters(spec(c, 2 * c).layers()) > (1 + tolerance) * n:
            break  # every wider candidate is too big
        for c3 in range(2 * c, 8 * c + 1):
            count = num_parameters(spec(c, c3).layers())
            if closest is None or abs(count - n) < abs(closest - n):
                closest = count
            if abs(count - n) <= tolerance * n:
                key = (abs(math.log(c3 / (4 * c))), abs(count - n), c)
                if best is None or key < best[0]:
                    best = (key, spec(c, c3))
            if count > (1 + tolerance) * n:
                break
    if best is None:
        closest = closest if closest is not None else num_parameters(spec(1, 2).layers())
        raise ValueError(f"param_matched_cnn_spec: no CNN of widths (c, 2c, 2c..8c), c ≤ {max_width}, "
                         f"comes within {100 * tolerance:g}% of {n} parameters (closest: {closest})")
    return best[1]


def build_param_matched_cnn(target, tolerance: float = 0.10, seed: int = 0, **kwargs) -> nn.Sequential:
    """``build_course_cnn(param_matched_cnn_spec(target, tolerance, **kwargs), seed)``."""
    return build_course_cnn(param_matched_cnn_spec(target, tolerance, **kwargs), seed=seed)

