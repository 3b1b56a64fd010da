"""The benchmarked models: one framework-neutral description, a numpy model and its torch twin.

Every model is a preset of the one registry (:mod:`tinygrad_mnist.presets`: ``classic-mlp``,
``wide-mlp``, ``course-cnn``, ...; ``tinygrad-mnist models`` lists them), or an MLP of any
widths named ``mlp-784-W-...-10`` (ReLU) for the scaling sweeps.  Every side is timed with
softmax cross-entropy on logits, so a preset that ends with a Softmax layer (``classic-mlp``)
is benchmarked with that layer folded into the loss (``output="logits"``); its other layers
and weights are the preset's.  The numpy side is built with ``needs_input_grad=False`` on the
first layer (its input is data, so neither side computes ∂L/∂x there, as torch does for a
tensor that does not require a gradient); the torch side by ``torch_baselines`` from the same
description, and the numpy weights are copied over (``torch_baselines.numpy_to_torch``), so
both start from the same point.

GEMM work per training example (what the GFLOP/s figures count), for a layer with
``M`` multiply-adds per example in its forward product (``in·out`` for Linear,
``O·C·k_h·k_w·H_out·W_out`` for Conv2d): ``2M`` for the forward product, ``2M`` for the
weight gradient and ``2M`` for the input gradient where it is computed (not for the
first layer).  Elementwise work (activations, pooling, biases, loss, optimiser) is not
counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from tinygrad_mnist.models import LayerDesc, MLPSpec, build
from tinygrad_mnist.presets import ALIASES, PRESETS, Spec, canonical


@dataclass(frozen=True)
class BenchModel:
    """A named model of the benchmark.

    Parameters
    ----------
    name : str
        The record's ``model`` key: a registry name (``"wide-mlp"``) or ``"mlp-784-256-256-10"``.
    spec : MLPSpec, CourseCNNSpec or LeNetSpec
    """

    name: str
    spec: Spec

    @property
    def flatten(self) -> bool:
        """True when the model takes flat (n, 784) images, False for (n, 1, 28, 28)."""
        return isinstance(self.spec, MLPSpec)

    @property
    def activation(self) -> str:
        return self.spec.activation

    def layers(self) -> Tuple[LayerDesc, ...]:
        return self.spec.layers()

    def build_numpy(self, seed: int = 0):
        """The numpy ``Sequential``, first layer without input gradient."""
        if isinstance(self.spec, MLPSpec):
            return build(self.layers(), seed=seed, init=self.spec.init, init_kwargs=self.spec.init_kwargs,
                         needs_input_grad=False)
        return build(self.layers(), seed=seed, needs_input_grad=False)

    def build_torch(self, numpy_model):
        """The torch twin from the same description, holding ``numpy_model``'s weights."""
        import torch_baselines

        return torch_baselines.numpy_to_torch(numpy_model, torch_baselines.build(self.layers()))

    def gemm_flops_per_sample(self) -> int:
        """Floating-point operations of the GEMMs of one training example (see module doc)."""
        return gemm_flops_per_sample(self.layers(), input_shape=(1, 28, 28))


def gemm_flops_per_sample(layers, input_shape=(1, 28, 28)) -> int:
    """Forward + weight-gradient + input-gradient GEMM flops of one example.

    The first layer with parameters gets no input gradient (it reads data).

    Parameters
    ----------
    layers : sequence of LayerDesc
    input_shape : tuple of int, default=(1, 28, 28)
        (C, H, W) of one example; a flat MLP input uses its size only.
    """
    c, h, w = input_shape
    total, first = 0, True
    for d in layers:
        a = d.kwargs
        if d.kind == "conv2d":
            k = a["kernel_size"]
            kh, kw = (k, k) if isinstance(k, int) else k
            s = a.get("stride", 1)
            p = a.get("padding", 0)
            h, w = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
            macs = a["out_channels"] * a["in_channels"] * kh * kw * h * w
        elif d.kind in ("maxpool2d", "avgpool2d"):
            k = a["kernel_size"]
            s = a.get("stride") or k
            h, w = (h - k) // s + 1, (w - k) // s + 1
            continue
        elif d.kind == "linear":
            macs = a["in_features"] * a["out_features"]
        else:
            continue
        total += 2 * macs * (2 if first else 3)
        first = False
    return int(total)


def preset_model(name: str) -> BenchModel:
    """The registry's preset ``name`` as benchmarked (logits output, see the module doc)."""
    return BenchModel(name, PRESETS[name].spec_for(output="logits"))


#: The models of the issue's table, by record name (a bench run's default ``--models``).
MODELS = {name: preset_model(name) for name in ("classic-mlp", "wide-mlp", "course-cnn")}


def mlp_model(sizes, activation: str = "relu") -> BenchModel:
    """An MLP of any widths, named ``mlp-784-256-256-10`` (for the scaling sweeps)."""
    sizes = tuple(int(s) for s in sizes)
    return BenchModel("mlp-" + "-".join(map(str, sizes)), MLPSpec(sizes, activation, "logits"))


def model_by_name(name: str) -> BenchModel:
    """A preset of the registry (``tinygrad-mnist models``; old names such as ``mlp-784-64-10``
    are mapped with a note), or ``mlp-784-W-...-10`` for any widths (ReLU)."""
    if name in PRESETS or name in ALIASES:
        return MODELS.get(canonical(name)) or preset_model(canonical(name, warn=False))
    parts = name.split("-")
    if parts[0] == "mlp" and len(parts) >= 3 and all(p.isdigit() and int(p) > 0 for p in parts[1:]):
        return mlp_model(parts[1:])
    raise ValueError(f"benchmarks: unknown model {name!r}; choose one of {', '.join(PRESETS)} "
                     f"(tinygrad-mnist models) or mlp-784-<widths>-10")


def synthetic_split(n_train: int, n_test: int, seed: int = 0, image_shape=(28, 28)):
    """A learnable MNIST stand-in: ``(train, test)`` Datasets of uint8 images.

    Each class has a fixed random template; an image is its class's template plus
    uniform noise, clipped to [0, 255].  For smoke runs that must not need MNIST.
    """
    from tinygrad_mnist.data import Dataset

    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, *image_shape))

    def make(n, name):
        labels = rng.integers(0, 10, size=n)
        noise = rng.integers(-96, 97, size=(n, *image_shape))
        images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return Dataset(images, labels, name)

    return make(n_train, "synthetic-train"), make(n_test, "synthetic-test")


def load_data(data: str = "mnist", data_dir: Optional[str] = None, train_size: int = 0,
              test_size: int = 0, seed: int = 0):
    """``(train, test)`` Datasets: MNIST (``data_dir`` or ``$TINYGRAD_MNIST_DATA``) or synthetic.

    ``train_size`` / ``test_size`` > 0 keep the first that many examples (synthetic data
    is made with that many, 2,048 / 1,024 when 0).
    """
    if data == "synthetic":
        return synthetic_split(train_size or 2048, test_size or 1024, seed=seed)
    if data != "mnist":
        raise ValueError(f"benchmarks: data must be 'mnist' or 'synthetic', got {data!r}")
    from tinygrad_mnist.data import load_mnist

    train, test = load_mnist(data_dir, download=False)
    if train_size:
        train = train.first(min(train_size, len(train)))
    if test_size:
        test = test.first(min(test_size, len(test)))
    return train, test
