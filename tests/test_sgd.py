"""SGD by hand: plain, momentum, Nesterov, weight decay, dampening (torch's rules).

The trajectory comparison against ``torch.optim.SGD`` lives in ``test_optim.py``.
"""

import numpy as np
import pytest

from tinygrad_mnist import SGD, Parameter


def param(values):
    return Parameter(np.array(values, dtype=np.float64))


def test_plain_step():
    p = param([1.0, -2.0])
    p.grad[:] = [0.5, 1.0]
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.1], rtol=1e-15)


def test_weight_decay_adds_lambda_theta_to_the_gradient():
    p = param([1.0, -2.0])
    p.grad[:] = [0.5, 1.0]
    SGD([p], lr=0.1, weight_decay=0.01).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * (0.5 + 0.01), -2.0 - 0.1 * (1.0 - 0.02)], rtol=1e-15)


def test_momentum_two_steps_by_hand():
    p = param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad[:] = 1.0
    opt.step()  # b = g = 1 → θ = 0.9
    p.grad[:] = 2.0
    opt.step()  # b = 0.9·1 + 2 = 2.9 → θ = 0.9 - 0.29
    np.testing.assert_allclose(p.data, [0.61], rtol=1e-14)


def test_nesterov_two_steps_by_hand():
    p = param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    p.grad[:] = 1.0
    opt.step()  # b = 1, d = 1 + 0.9 = 1.9 → θ = 0.81
    p.grad[:] = 2.0
    opt.step()  # b = 2.9, d = 2 + 0.9·2.9 = 4.61 → θ = 0.81 - 0.461
    np.testing.assert_allclose(p.data, [0.349], rtol=1e-14)


def test_dampening_scales_new_gradients_after_the_first_step():
    p = param([0.0])
    opt = SGD([p], lr=1.0, momentum=0.5, dampening=0.5)
    p.grad[:] = 1.0
    opt.step()  # b = 1 (no dampening on the first step)
    opt.step()  # b = 0.5 + 0.5 = 1
    np.testing.assert_allclose(p.data, [-2.0], rtol=1e-15)


def test_zero_grad_and_float32_stays_float32():
    p = Parameter(np.ones(3, dtype=np.float32))
    p.grad[:] = 1
    opt = SGD([p], lr=0.5)
    opt.step()
    assert p.data.dtype == np.float32
    opt.zero_grad()
    assert not p.grad.any()


@pytest.mark.parametrize("kwargs, msg", [
    ({"lr": 0.0}, "learning rate must be positive"),
    ({"lr": 0.1, "momentum": -0.1}, "must be non-negative"),
    ({"lr": 0.1, "nesterov": True}, "Nesterov momentum requires momentum > 0"),
])
def test_invalid_settings(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        SGD([param([1.0])], **kwargs)


def test_empty_parameter_list():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
