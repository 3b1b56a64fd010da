"""Shared fixtures (real MNIST location, one torch thread, tiny IDX data) and the CI rule: nothing skips.

Locally a test may skip when something outside the project is missing (real MNIST, a
browser); under ``CI=1`` (set by ``.ci/run``) every skip is reported as a failure, so CI
can never pass by skipping the real-data checks.
"""

from __future__ import annotations

import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tinygrad_mnist.data import MNIST_FILES, Dataset, write_idx

from . import strategies  # noqa: F401  (registers and loads the hypothesis profile)

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
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


# -- the data tests (tests/test_data_*.py) ---------------------------------------------------

@pytest.fixture
def isolated_data_env(monkeypatch, tmp_path):
    """No network, no real cache dir, no inherited data dir in any test."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("TINYGRAD_MNIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGRAD_MNIST_DATA", raising=False)


def make_idx_dir(path, n_train=6, n_test=4, shape=(3, 2), gz=(True, False, True, False),
                 num_classes=10, seed=0):
    """Write a tiny MNIST-layout drop-in; ``gz[i]`` picks .gz or plain name per file."""
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
              "train_labels": rng.integers(0, num_classes, n_train).astype(np.uint8),
              "test_images": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
              "test_labels": rng.integers(0, num_classes, n_test).astype(np.uint8)}
    path.mkdir(parents=True, exist_ok=True)
    for (role, name), compressed in zip(MNIST_FILES.items(), gz, strict=True):
        write_idx(path / (name if compressed else name[:-3]), arrays[role])
    return arrays


def square_images(n, size, seed, classes, per_row, value, name, num_classes=None):
    """A learnable uint8 image set: noise in [0, 60) plus a bright ``value`` square whose
    place (``per_row`` squares of side ``size // per_row`` per row) encodes the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    images = rng.integers(0, 60, size=(n, size, size)).astype(np.uint8)
    s = size // per_row
    for i, c in enumerate(labels):
        r, k = divmod(int(c), per_row)
        images[i, r * s:(r + 1) * s, k * s:(k + 1) * s] = value
    return Dataset(images, labels, name, **({} if num_classes is None else {"num_classes": num_classes}))


def indexed_dataset(n, name="idx", num_classes=10):
    """Dataset whose image i encodes i in its three bytes, so examples can be traced."""
    idx = np.arange(n)
    images = np.stack([idx % 256, idx // 256 % 256, idx // 65536], axis=1).astype(np.uint8)
    return Dataset(images.reshape(n, 1, 3), idx % num_classes, name, num_classes)


def decode_index(x):
    """Invert indexed_dataset on a batch of flattened images scaled by 1/255."""
    b = np.rint(np.asarray(x, dtype=np.float64).reshape(len(x), 3) * 255).astype(np.int64)
    return b[:, 0] + 256 * b[:, 1] + 65536 * b[:, 2]


def idx_header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=1 a skipped test is a failed test (xfail keeps its meaning)."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=1, where every test must run: {reason}"


def ctrl_c_enabled():
    """``preexec_fn`` for a child that a test stops with SIGINT: a shell that starts jobs in
    the background hands them SIGINT *ignored*, and Python then never installs its
    KeyboardInterrupt handler, so the child would run on; restore the default first."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
