"""Every module and loss of the zoo against its PyTorch mirror, with identical weights.

- float64: forward, input gradient and every parameter gradient within TIGHT = 1e-12
  relative (both sides compute the same formulas; only summation order differs), and the
  explicit Jacobians equal ``torch.autograd.functional.jacobian``;
- float32: within 1e-5 relative (float32 rounding of a few operations is ~1e-7; the
  margin covers different but equally valid evaluation orders, e.g. σ via tanh).

Relative error = max |a − b| / max(max |a|, max |b|, size of the terms) per array: a
gradient that cancels to ~0 (softmax under a constant g; ŷ − y where ŷ ≈ y) keeps a
rounding error of the size of the terms it was computed from, so errors are measured
against that size (``error_scales.term_magnitudes``, ``LossCase.term_scales``).  Float32
comparisons draw inputs from ``case.inputs_for(float32)``, which avoids the ranges where a
float32 derivative is ill-conditioned in any implementation (see ``zoo_cases``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_mnist.check.gradcheck import relative_error

from .error_scales import record, worst_summary
from .strategies import float_arrays, seeds
from .torch_reference import compare_with_torch, torch_jacobians, torch_loss_and_grad
from .zoo_cases import LOSS_ZOO, PER_EXAMPLE_ZOO, ZOO, given_case_data

torch = pytest.importorskip("torch")

TIGHT = 1e-12
FLOAT32 = 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def _print_worst_errors():
    yield
    print("\n" + worst_summary())


def _pair(case, data, dtype):
    module = case.build(data.draw(seeds, label="seed"), dtype)
    x = data.draw(case.inputs_for(dtype), label="x")
    return module, case.build_torch(module), x


@pytest.mark.parametrize("dtype, tol", [(np.float64, TIGHT), (np.float32, FLOAT32)], ids=["float64", "float32"])
@pytest.mark.parametrize("case", ZOO, ids=repr)
@given_case_data
def test_forward_and_backward_match_torch(case, dtype, tol, data):
    module, torch_module, x = _pair(case, data, dtype)
    g = data.draw(float_arrays(module.forward(x).shape, dtype=dtype), label="g")
    errors = compare_with_torch(module, torch_module, x, g, case.batch_independent, tol)
    for name, err in errors.items():
        record(f"torch {np.dtype(dtype).name}: {'forward' if name == 'output' else 'gradient'}", err,
               f"{case.name} {name}")
    bad = {name: err for name, err in errors.items() if not err < tol}
    assert not bad, f"relative errors above {tol:g}: {bad}"


@pytest.mark.parametrize("case", PER_EXAMPLE_ZOO, ids=repr)
@given_case_data
def test_jacobian_matches_torch_autograd(case, data):
    module, torch_module, x = _pair(case, data, np.float64)
    ours = module.jacobian(x[0])
    theirs = torch_jacobians(torch_module, x[0])
    assert set(ours) == set(theirs)
    for name in theirs:
        err = record("torch float64: jacobian", relative_error(ours[name], theirs[name]), f"{case.name} {name}")
        assert ours[name].shape == theirs[name].shape, name
        assert err < TIGHT, name


@pytest.mark.parametrize("dtype, tol", [(np.float64, TIGHT), (np.float32, FLOAT32)], ids=["float64", "float32"])
@pytest.mark.parametrize("case", LOSS_ZOO, ids=repr)
@given_case_data
def test_loss_value_and_gradient_match_torch(case, dtype, tol, data):
    pred, target = data.draw(case.inputs(dtype), label="pred, target")
    loss = case.make()
    value = loss.forward(pred, target)
    grad = loss.backward()
    ref_value, ref_grad = torch_loss_and_grad(case, pred, target)
    value_scale, grad_scale = case.term_scales(pred, target)
    kind = np.dtype(dtype).name
    value_err = record(f"torch {kind}: loss value", relative_error(value, ref_value, value_scale), case.name)
    grad_err = record(f"torch {kind}: loss gradient", relative_error(grad, ref_grad, grad_scale), case.name)
    assert grad.dtype == pred.dtype
    assert value_err < tol and grad_err < tol, (value_err, grad_err)


@pytest.mark.parametrize("case", LOSS_ZOO, ids=repr)
@given_case_data
def test_loss_jacobian_matches_torch_autograd(case, data):
    pred, target = data.draw(case.inputs(np.float64), label="pred, target")
    jac = case.make().jacobian(pred[0], target[0])["input"]
    theirs = torch.autograd.functional.jacobian(lambda p: case.torch_loss(p[None], target[:1]),
                                                torch.tensor(pred[0])).numpy()[None]
    err = record("torch float64: loss jacobian",
                 relative_error(jac, theirs, case.term_scales(pred[:1], target[:1])[1]), case.name)
    assert jac.shape == theirs.shape and err < TIGHT
