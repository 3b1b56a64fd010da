"""Shared fixtures: torch (skipped cleanly where absent), real MNIST location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from . import strategies  # noqa: F401  (registers and loads the hypothesis profile)

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


def mnist_dir():
    """The directory holding real MNIST, or None: $TINYGRAD_MNIST_DATA, then ../shared."""
    env = os.environ.get("TINYGRAD_MNIST_DATA")
    for candidate in (env, SHARED_MNIST):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mnist():
    """``(train, test)`` Datasets of real MNIST; skips when it is not on this machine."""
    path = mnist_dir()
    if path is None:
        pytest.skip("real MNIST not found (set TINYGRAD_MNIST_DATA)")
    from tinygrad_mnist.data import load_mnist

    return load_mnist(data_dir=path, download=False)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's torch work on one intra-op thread, restored afterwards.

    The torch tests use tiny tensors: with another process busy on a 2-core machine,
    several torch threads waiting on each other at every operation run tens of times
    slower, while one thread only slows in proportion to the load.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
