"""The checks can fail: deliberately broken layers, each caught by finite differences AND by
the torch comparison (a check that passes everything proves nothing).

Broken on purpose:

- ``TransposedGradLinear``: ``∂L/∂W = xᵀG`` instead of ``Gᵀx`` — silently shape-correct
  for a square weight; for a non-square one the bug hides behind a ``reshape``;
- ``NoMeanSoftmaxCrossEntropy``: forgets the 1/n of ``reduction="mean"``;
- ``FlippedSignTanh``: returns ``−g ⊙ (1 − y²)``;
- ``DiagonalSoftmax``: Jacobian ``diag(s)`` without the ``− s sᵀ`` term (in ``backward``
  AND in ``jacobian``, consistently, so ``backward = gᵀJ`` still holds: only an external
  reference can catch it);
- ``ReLUOneAtZero``: ``ReLU'(0) = 1`` instead of torch's 0.  Finite differences cannot
  arbitrate this one: at a kink the central difference is ``(h − 0)/2h = 1/2``, which
  disagrees with the broken AND the correct derivative alike; only the torch comparison,
  on inputs that contain exact zeros, tells them apart.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from tinygrad_mnist.check.gradcheck import check_jacobian, check_loss, check_module, relative_error
from tinygrad_mnist.nn.activations import ReLU, Softmax, Tanh, softmax_jacobian
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy

from .strategies import seeds
from .torch_reference import compare_with_torch, mirror, torch_loss_and_grad, torch_nn
from .zoo_cases import LOSS_ZOO

torch = pytest.importorskip("torch")

FD_TOL = 1e-6
TORCH_TOL = 1e-12
FEW = settings(max_examples=10)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TransposedGradLinear(Linear):
    def backward(self, grad_out):
        x = self.cache.x
        self.weight.grad += (x.T @ grad_out).reshape(self.weight.shape)  # BUG: xᵀG, not Gᵀx
        self.bias.grad += grad_out.sum(axis=0)
        return grad_out @ self.weight.data


class NoMeanSoftmaxCrossEntropy(SoftmaxCrossEntropy):
    def backward(self, grad=1.0):
        s, y = self.cache.probs, self.cache.target
        return (s * y.sum(axis=1, keepdims=True) - y) * grad  # BUG: no 1/n


class FlippedSignTanh(Tanh):
    def backward(self, grad_out):
        y = self._checked_cache(grad_out).y
        return grad_out * -(1.0 - y * y)  # BUG: sign


def _diagonal_only(s):
    return np.diag(s)  # BUG: diag(s) − s sᵀ without − s sᵀ


class DiagonalSoftmax(Softmax):
    def backward(self, grad_out):
        return self.cache.s * grad_out

    def jacobian(self, z):
        from tinygrad_mnist.nn.activations import softmax

        return {"input": _diagonal_only(softmax(z))}


class ReLUOneAtZero(ReLU):
    def backward(self, grad_out):
        x = self._checked_cache(grad_out).x
        return grad_out * (x >= 0).astype(x.dtype)  # BUG at exactly 0: torch's ReLU'(0) is 0


def _normal(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def _worst_torch_error(module, torch_module, x, g):
    return max(compare_with_torch(module, torch_module, x, g, tolerance=TORCH_TOL).values())


@pytest.mark.parametrize("n_in, n_out", [(4, 4), (3, 5)], ids=["square", "non_square"])
@FEW
@given(seed=seeds)
def test_transposed_weight_gradient_is_caught(n_in, n_out, seed):
    layer = TransposedGradLinear(n_in, n_out, rng=np.random.default_rng(seed), dtype=np.float64)
    x, g = _normal(seed, 3, n_in), _normal(seed + 1, 3, n_out)
    report = check_module(layer, x, g, tol=FD_TOL)
    assert not report.passed and [c.name for c in report.failures] == ["weight"]
    assert _worst_torch_error(layer, mirror(torch_nn().Linear(n_in, n_out), layer), x, g) > 1e-3
    # the control: the real Linear passes both
    good = Linear(n_in, n_out, rng=np.random.default_rng(seed), dtype=np.float64)
    assert check_module(good, x, g, tol=FD_TOL).passed
    assert _worst_torch_error(good, mirror(torch_nn().Linear(n_in, n_out), good), x, g) < TORCH_TOL


@FEW
@given(seed=seeds)
def test_missing_one_over_n_is_caught(seed):
    z, labels = _normal(seed, 4, 5), np.random.default_rng(seed).integers(0, 5, 4)
    broken = NoMeanSoftmaxCrossEntropy()
    report = check_loss(broken, z, labels, tol=FD_TOL)
    assert not report.passed and report["input"].rel_error > 0.5     # off by a factor n = 4
    broken.forward(z, labels)
    case = next(c for c in LOSS_ZOO if c.name == "softmax_ce_labels_mean")
    _, ref_grad = torch_loss_and_grad(case, z, labels)
    assert relative_error(broken.backward(), ref_grad) > 0.5
    assert check_loss(SoftmaxCrossEntropy(), z, labels, tol=FD_TOL).passed


@FEW
@given(seed=seeds)
def test_flipped_sign_is_caught(seed):
    x, g = _normal(seed, 3, 4), _normal(seed + 1, 3, 4)
    broken = FlippedSignTanh()
    assert not check_module(broken, x, g, tol=FD_TOL).passed
    assert not check_jacobian(broken, x[0], tol=FD_TOL).passed
    assert _worst_torch_error(broken, torch_nn().Tanh(), x, g) > 0.1   # −a vs a: O(1), not O(u)
    assert check_module(Tanh(), x, g, tol=FD_TOL).passed


@FEW
@given(seed=seeds)
def test_softmax_without_the_outer_product_is_caught(seed):
    z, g = _normal(seed, 3, 4), _normal(seed + 1, 3, 4)
    broken = DiagonalSoftmax()
    # self-consistent: backward = gᵀJ holds for the broken pair, so only a reference helps
    broken.forward(z)
    np.testing.assert_allclose(broken.backward(g)[0], g[0] @ broken.jacobian(z[0])["input"], rtol=1e-12)
    assert not check_module(broken, z, g, tol=FD_TOL).passed
    assert not check_jacobian(broken, z[0], tol=FD_TOL).passed
    assert _worst_torch_error(broken, torch_nn().Softmax(dim=-1), z, g) > 1e-3
    np.testing.assert_allclose(Softmax().jacobian(z[0])["input"], softmax_jacobian(Softmax().forward(z)[0]))


def _with_zeros(seed):
    x = _normal(seed, 3, 5)
    x[:, ::2] = 0.0   # exact kinks
    return x


@FEW
@given(seed=seeds)
def test_relu_derivative_one_at_zero_is_caught_by_torch_not_by_finite_differences(seed):
    x, g = _with_zeros(seed), _normal(seed + 1, 3, 5)
    broken, correct = ReLUOneAtZero(), ReLU()
    # torch (ReLU'(0) = 0) catches the broken one and agrees with the correct one
    assert _worst_torch_error(broken, torch_nn().ReLU(), x, g) > 1e-3
    assert _worst_torch_error(correct, torch_nn().ReLU(), x, g) < TORCH_TOL
    # finite differences at the kink measure 1/2 and so reject BOTH: no verdict
    for module, derivative in ((broken, 1.0), (correct, 0.0)):
        report = check_module(module, x, g, tol=FD_TOL)
        assert not report.passed
        worst = report["input"]
        assert x[worst.index] == 0.0
        assert worst.numeric == pytest.approx(0.5 * g[worst.index], rel=1e-9)
        assert worst.analytic == derivative * g[worst.index]
    # away from zero the two are the same function and both pass
    away = np.where(x >= 0, x + 0.1, x - 0.1)
    assert check_module(broken, away, g, tol=FD_TOL).passed
    assert check_module(correct, away, g, tol=FD_TOL).passed
