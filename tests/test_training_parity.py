"""Whole-model parity with PyTorch: same weights, same batches, same SGD, step by step.

A 784-32-10 MLP (sigmoid or tanh) is trained for 300 SGD steps (momentum 0.9, batch 16,
mean cross-entropy) on a synthetic MNIST-shaped data set (uint8 28×28 images, 10 classes:
noisy class prototypes, so the loss really falls), in the numpy engine and in torch, from
identical initial weights and with batches from ONE ``DataLoader`` order.

- float64: every per-step loss and every final weight agree to 1e-9 relative (measured:
  ~1e-13 and ~1e-14).
- float32: each library's float32 run drifts from the exact (float64) trajectory, because
  every step rounds (unit roundoff u = 2⁻²⁴ ≈ 6e-8 per operation) and training feeds each
  step's rounding into the next step's weights.  The bound comes from that arithmetic:
  one SGD-with-momentum step rounds each weight through two multiply-adds
  (v ← μv + g, w ← w − ηv) plus the rounding of g itself, at most GROWTH = 2 units of u
  relative to the weight scale per step, and T steps add up without cancellation (the
  worst case), so every float32 run stays within GROWTH · T · u ≈ 3.6e-5 of float64,
  per tensor (relative to its largest entry) and for the per-step loss (relative to
  max(L, 1): a loss of 0.001 is a difference of log-sum-exp terms of the logits' size,
  which float32 rounds to ~1e-7 absolute).  Both libraries are held to the same bound,
  so the test says "the engine is as accurate as torch" without comparing one rounding-
  noise sample with another.  Measured (T = 300, Haswell and Prescott kernels, 1 and 2
  threads): at most 0.48 · T · u per tensor and 0.36 · T · u for the loss, for both
  libraries.
- float32 numpy against float32 torch, step by step: per-step losses within
  1e-5 · max(L, 1) ≈ 0.56 · T · u and final weights within 2e-5 ≈ 1.1 · T · u; measured at
  most 5.1e-6 and 6.6e-6 over the same four kernel settings.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tinygrad_mnist.check.gradcheck import relative_error
from tinygrad_mnist.data import DataLoader, Dataset
from tinygrad_mnist.models import MLPSpec, build_mlp
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
from tinygrad_mnist.optim import SGD

from .error_scales import record, worst_summary
from .torch_reference import torch_sequential

torch = pytest.importorskip("torch")

STEPS, BATCH, HIDDEN, LR, MOMENTUM = 300, 16, 32, 0.1, 0.9
UNIT_ROUNDOFF = float(np.finfo(np.float32).eps) / 2   # u = 2⁻²⁴
GROWTH = 2.0   # roundings per weight per SGD-momentum step, in units of u (see above)
FLOAT32_DRIFT_BOUND = GROWTH * STEPS * UNIT_ROUNDOFF
TOLERANCES = {  # (per-step loss, relative to max(L, 1); final weights, relative)
    np.float64: (1e-9, 1e-9),
    np.float32: (1e-5, 2e-5),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def _print_worst_errors():
    yield
    print("\n" + worst_summary())


def synthetic_mnist(n: int = 1600, seed: int = 0) -> Dataset:
    """``n`` uint8 28×28 images: one random prototype per class plus noise, clipped."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, size=(10, 28, 28))
    labels = rng.integers(0, 10, size=n)
    images = np.clip(prototypes[labels] + rng.normal(0, 60, size=(n, 28, 28)), 0, 255).astype(np.uint8)
    return Dataset(images, labels, "synthetic-mnist")


def train_both(activation: str, dtype, steps: int = STEPS):
    """Train the numpy MLP and its torch mirror side by side; return per-step losses and
    the final ``(numpy state, torch state)``."""
    model = build_mlp(MLPSpec((784, HIDDEN, 10), activation, "logits"), seed=0, dtype=dtype)
    twin = torch_sequential(model)
    loss_fn = SoftmaxCrossEntropy()
    opt = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    topt = torch.optim.SGD(twin.parameters(), lr=LR, momentum=MOMENTUM)
    loader = DataLoader(synthetic_mnist(), batch_size=BATCH, shuffle=True, seed=0, dtype=dtype)
    ours, theirs, step, epoch = [], [], 0, 0
    while step < steps:
        loader.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            ours.append(loss_fn.forward(model.forward(x), y))
            model.backward(loss_fn.backward())
            opt.step()
            topt.zero_grad()
            tloss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
            tloss.backward()
            topt.step()
            theirs.append(tloss.item())
            step += 1
            if step == steps:
                break
        epoch += 1
    state = model.state_dict()
    tstate = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
    return np.array(ours), np.array(theirs), state, tstate


@functools.lru_cache(maxsize=None)
def _run(activation: str, dtype_name: str):
    return train_both(activation, np.dtype(dtype_name).type)


def _loss_error(a, b, relative_to_one: bool) -> float:
    scale = np.maximum(np.abs(b), 1.0) if relative_to_one else np.abs(b)
    return float(np.max(np.abs(a - b) / scale))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_training_matches_torch_step_by_step(activation, dtype):
    ours, theirs, state, tstate = _run(activation, np.dtype(dtype).name)
    loss_tol, weight_tol = TOLERANCES[dtype]
    kind = np.dtype(dtype).name
    assert len(ours) == STEPS
    assert ours[-20:].mean() < 0.1 * ours[:20].mean()   # it learned
    loss_err = _loss_error(ours, theirs, relative_to_one=dtype == np.float32)
    record(f"training parity {kind}: per-step loss", loss_err, activation)
    assert loss_err < loss_tol
    assert set(state) == set(tstate)
    for name in state:
        err = record(f"training parity {kind}: final weights", relative_error(state[name], tstate[name]),
                     f"{activation} {name}")
        assert err < weight_tol, name


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_float32_training_stays_within_the_rounding_bound_of_float64(activation, library):
    """Each float32 run (ours and torch's) is within GROWTH · T · u of the float64 run."""
    ours, theirs, state, tstate = _run(activation, "float32")
    losses, final = (ours, state) if library == "numpy" else (theirs, tstate)
    exact, _, exact_state, _ = _run(activation, "float64")
    loss_drift = record(f"float32 drift from float64 ({library}): per-step loss",
                        _loss_error(losses, exact, relative_to_one=True), activation)
    assert loss_drift <= FLOAT32_DRIFT_BOUND
    assert set(final) == set(exact_state)
    for name in final:
        drift = record(f"float32 drift from float64 ({library}): final weights",
                       relative_error(final[name], exact_state[name]), f"{activation} {name}")
        assert drift <= FLOAT32_DRIFT_BOUND, name
