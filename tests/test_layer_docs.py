"""Every layer reads like the maths: its docstring opens with forward, Jacobian and
vector-Jacobian product and links to an existing section of docs/jacobians.md, its cache is
one NamedTuple in ``self.cache`` (overwritten by each forward), and the docs carry no
machine-local run commands."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tinygrad_mnist.nn import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    CrossEntropy,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    MSELoss,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', (ROOT / "docs" / "jacobians.md").read_text()))

rng = np.random.default_rng(0)
IMAGES = rng.standard_normal((2, 2, 4, 4))
ROWS = rng.standard_normal((3, 4))

#: (layer, one forward call on a small batch)
LAYERS = {
    "Linear": (lambda: Linear(4, 3, dtype=np.float64), lambda m: m.forward(ROWS)),
    "Identity": (Identity, lambda m: m.forward(ROWS)),
    "Flatten": (Flatten, lambda m: m.forward(IMAGES)),
    "Sigmoid": (Sigmoid, lambda m: m.forward(ROWS)),
    "Tanh": (Tanh, lambda m: m.forward(ROWS)),
    "ReLU": (ReLU, lambda m: m.forward(ROWS)),
    "Softmax": (Softmax, lambda m: m.forward(ROWS)),
    "SoftmaxCrossEntropy": (SoftmaxCrossEntropy, lambda m: m.forward(ROWS, np.array([0, 1, 2]))),
    "CrossEntropy": (CrossEntropy, lambda m: m.forward(np.full((3, 4), 0.25), np.array([0, 1, 2]))),
    "MSELoss": (MSELoss, lambda m: m.forward(ROWS, np.array([0, 1, 2]))),
    "Conv2d": (lambda: Conv2d(2, 3, 3, padding=1, dtype=np.float64), lambda m: m.forward(IMAGES)),
    "MaxPool2d": (lambda: MaxPool2d(2), lambda m: m.forward(IMAGES)),
    "AvgPool2d": (lambda: AvgPool2d(2), lambda m: m.forward(IMAGES)),
    "BatchNorm1d": (lambda: BatchNorm1d(4, dtype=np.float64), lambda m: m.forward(ROWS)),
    "BatchNorm2d": (lambda: BatchNorm2d(2, dtype=np.float64), lambda m: m.forward(IMAGES)),
    "Dropout": (lambda: Dropout(0.5), lambda m: m.forward(ROWS)),
    "Residual": (lambda: Residual(Linear(4, 4, dtype=np.float64)), lambda m: m.forward(ROWS)),
    "Sequential": (lambda: Sequential(Linear(4, 3, dtype=np.float64), Tanh()), lambda m: m.forward(ROWS)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_docstring_opens_with_forward_jacobian_vjp_and_links_its_derivation(name):
    cls = type(LAYERS[name][0]())
    lines = [line.strip() for line in cls.__doc__.strip().splitlines()]
    assert [line.split(":")[0] for line in lines[:3]] == ["Forward", "Jacobian", "VJP"], lines[:3]
    links = re.findall(r"docs/jacobians\.md#([a-z0-9-]+)", cls.__doc__)
    assert links, f"{name}: no link to docs/jacobians.md"
    assert set(links) <= ANCHORS, f"{name}: {set(links) - ANCHORS} are not anchors of docs/jacobians.md"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_cache_is_one_named_tuple_overwritten_by_each_forward(name):
    make, forward = LAYERS[name]
    layer = make()
    assert layer.cache is None
    forward(layer)
    first = layer.cache
    assert isinstance(first, tuple) and hasattr(type(first), "_fields"), type(first)
    forward(layer)
    assert layer.cache is not first and type(layer.cache) is type(first)


@pytest.mark.parametrize("cls", [Sigmoid, Tanh, ReLU])
def test_elementwise_activations_show_their_own_backward(cls):
    assert "backward" in vars(cls) and "forward" in vars(cls)


def test_docs_hold_no_machine_local_run_commands():
    paths = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    offending = [f"{p.name}:{i}" for p in paths for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "flock /tmp" in line]
    assert not offending, offending
