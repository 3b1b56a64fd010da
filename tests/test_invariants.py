"""Invariants of softmax, cross-entropy and the saturating activations, including extremes.

setup.cfg turns every RuntimeWarning raised inside tinygrad_mnist into an error, so an
overflow, an invalid operation or a division by zero in any of these calls fails the test
even where the final value happens to be finite.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.nn.activations import Sigmoid, Softmax, Tanh, softmax
from tinygrad_mnist.nn.losses import CrossEntropy, MSELoss, SoftmaxCrossEntropy

from .strategies import batches, classification_batches, extreme_logits, float_arrays, soft_target_batches

DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def _u(dtype) -> float:
    return float(np.finfo(dtype).eps)


@DTYPES
@given(data=st.data())
def test_softmax_rows_sum_to_one_and_ignore_a_constant_per_row(dtype, data):
    z = data.draw(batches((5,), low=-50.0, high=50.0, dtype=dtype), label="z")
    c = data.draw(float_arrays((z.shape[0], 1), -100.0, 100.0, dtype), label="c")
    s = Softmax().forward(z)
    assert s.dtype == dtype and np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=0, atol=8 * _u(dtype))
    # softmax(z + c) = softmax(z): the shift by max z makes it exact up to rounding of z + c
    shifted = softmax(z + c)
    atol = 8 * _u(dtype) * (1 + np.abs(z).max() + np.abs(c).max())
    np.testing.assert_allclose(shifted, s, rtol=0, atol=atol)


@DTYPES
@given(data=st.data())
def test_cross_entropy_gradient_rows_sum_to_zero(dtype, data):
    """∂L/∂z = (ŷ − y)/n: both rows sum to one, so every gradient row sums to zero — for
    the fused loss and for Softmax followed by CrossEntropy on probabilities."""
    z, target = data.draw(st.one_of(classification_batches(dtype=dtype), soft_target_batches(dtype=dtype)),
                          label="z, target")
    fused = SoftmaxCrossEntropy()
    fused.forward(z, target)
    g = fused.backward()
    np.testing.assert_allclose(g.sum(axis=1), 0.0, rtol=0, atol=8 * _u(dtype))
    sm, ce = Softmax(), CrossEntropy()
    ce.forward(sm.forward(z), target)
    g2 = sm.backward(ce.backward())
    scale = 1 + np.abs(ce.backward()).max()  # -y/p can be large before softmax folds it back
    np.testing.assert_allclose(g2.sum(axis=1), 0.0, rtol=0, atol=8 * _u(dtype) * scale)


@DTYPES
@given(data=st.data())
def test_sigmoid_and_tanh_derivatives_stay_in_their_ranges(dtype, data):
    x = data.draw(batches((6,), low=-1e4, high=1e4, dtype=dtype), label="x")
    for module, top in ((Sigmoid(), 0.25), (Tanh(), 1.0)):
        module.forward(x)
        d = module.backward(np.ones_like(x))
        assert d.dtype == dtype
        assert np.all(d >= 0) and np.all(d <= top), (type(module).__name__, d.min(), d.max())
        diag = np.diag(module.jacobian(x[0])["input"])
        assert np.all(diag >= 0) and np.all(diag <= top)


def test_the_derivative_bounds_are_attained_at_zero():
    x = np.zeros((1, 1))
    for module, top in ((Sigmoid(), 0.25), (Tanh(), 1.0)):
        module.forward(x)
        assert module.backward(np.ones_like(x))[0, 0] == top


@DTYPES
@given(data=st.data())
def test_losses_and_gradients_stay_finite_for_extreme_logits(dtype, data):
    z, labels = data.draw(extreme_logits(dtype=dtype), label="logits, labels")
    fused = SoftmaxCrossEntropy()
    value = fused.forward(z, labels)
    g = fused.backward()
    assert np.isfinite(value) and value >= 0 and np.all(np.isfinite(g))
    # the exact value: −z_y + max z + log Σ e^{z − max z}, all terms finite
    ref = np.mean(z.max(axis=1) - z[np.arange(len(labels)), labels]
                  + np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)))
    np.testing.assert_allclose(value, ref, rtol=8 * _u(dtype), atol=8 * _u(dtype))
    # Softmax + CrossEntropy on probabilities: underflowed probabilities are clipped
    sm, ce = Softmax(), CrossEntropy()
    value2 = ce.forward(sm.forward(z), labels)
    g2 = sm.backward(ce.backward())
    assert np.isfinite(value2) and np.all(np.isfinite(g2))
    # MSE on softmax outputs
    mse = MSELoss()
    assert np.isfinite(mse.forward(sm.forward(z), labels)) and np.all(np.isfinite(mse.backward()))


@DTYPES
def test_one_confident_wrong_logit_costs_its_margin(dtype):
    z = np.array([[1e4, 0.0, -1e4]], dtype=dtype)
    loss = SoftmaxCrossEntropy()
    assert loss.forward(z, np.array([1])) == pytest.approx(1e4, rel=_u(dtype))
    np.testing.assert_allclose(loss.backward(), [[1.0, -1.0, 0.0]], atol=_u(dtype))


@DTYPES
@given(data=st.data())
def test_saturated_sigmoids_and_tanh_stay_finite_forward_and_backward(dtype, data):
    x = data.draw(batches((4,), low=-1e4, high=1e4, dtype=dtype), label="x")
    x[:, 0], x[:, 1] = 1e4, -1e4                 # fully saturated on both sides
    g = data.draw(float_arrays(x.shape, dtype=dtype), label="g")
    for module in (Sigmoid(), Tanh()):
        y = module.forward(x)
        assert np.all(np.isfinite(y)) and y.dtype == dtype
        gx = module.backward(g)
        assert np.all(np.isfinite(gx))
        assert np.all(gx[:, :2] == 0)             # no gradient through a saturated unit
    s = Sigmoid().forward(x)
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(s[:, 0] == 1) and np.all(s[:, 1] == 0)
    mse = MSELoss()
    assert np.isfinite(mse.forward(s, np.zeros(len(x), dtype=np.int64)))
    assert np.all(np.isfinite(mse.backward()))


@DTYPES
def test_sigmoid_keeps_relative_precision_where_it_is_tiny(dtype):
    """σ(x) ≈ e^x for x ≪ 0: the value must keep its relative precision (not round to 0
    or lose digits), as torch's does; the derivative σ(1 − σ) inherits it."""
    x = np.array([[-5.0, -15.0, -30.0, -80.0]], dtype=dtype)
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    y = Sigmoid().forward(x)
    keep = exact > np.finfo(dtype).tiny
    np.testing.assert_allclose(y[keep], exact[keep], rtol=4 * _u(dtype))
