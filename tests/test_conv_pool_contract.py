"""The module contract and input checks of Conv2d, MaxPool2d and AvgPool2d: inputs left
untouched, any memory layout, gradients accumulate, named parameters, bad input and
arguments raise naming the layer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from tinygrad_mnist.nn.conv import Conv2d
from tinygrad_mnist.nn.pool import AvgPool2d, MaxPool2d

from .strategies import float_arrays, seeds
from .torch_reference import torch_or_skip


# -- the module contract ----------------------------------------------------------------------
def _layers():
    rng = np.random.default_rng(0)
    return [Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64),
            Conv2d(2, 1, (2, 3), stride=(2, 1), rng=rng, dtype=np.float64),
            MaxPool2d(2), MaxPool2d(3, stride=1), AvgPool2d(2), AvgPool2d((2, 1), stride=(1, 2))]


@pytest.mark.parametrize("index", range(6))
@given(x=float_arrays((2, 2, 5, 6)), seed=seeds)
def test_forward_and_backward_do_not_modify_their_inputs(index, x, seed):
    layer = _layers()[index]
    x_copy = x.copy()
    y = layer.forward(x)
    y_copy = y.copy()
    g = np.random.default_rng(seed).standard_normal(y.shape)
    g_copy = g.copy()
    layer.backward(g)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(g, g_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize("index", range(6))
def test_results_do_not_depend_on_the_input_memory_layout(index):
    """NCHW-contiguous, batch-last and sliced inputs and gradients give identical results."""
    layer = _layers()[index]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 6))
    g = rng.standard_normal(layer.forward(x).shape)
    layouts = [lambda a: a, lambda a: np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2),
               lambda a: np.repeat(a, 2, axis=3)[..., ::2], lambda a: np.asfortranarray(a)]
    results = []
    for layout in layouts:
        layer.zero_grad()
        y = layer.forward(layout(x))
        results.append((y, layer.backward(layout(g)), [p.grad.copy() for p in layer.parameters()]))
    for y, gx, grads in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(gx, results[0][1])
        for a, b in zip(grads, results[0][2], strict=True):
            np.testing.assert_array_equal(a, b)


def test_parameter_gradients_accumulate():
    layer = Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4))
    g = np.random.default_rng(2).standard_normal(layer.forward(x).shape)
    layer.backward(g)
    once = [p.grad.copy() for p in layer.parameters()]
    layer.backward(g)
    for p, g1 in zip(layer.parameters(), once, strict=True):
        np.testing.assert_array_equal(p.grad, 2 * g1)
    layer.zero_grad()
    assert all(not p.grad.any() for p in layer.parameters())


def test_without_input_grad_backward_skips_dx_but_not_the_parameter_gradients():
    full = Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(0), dtype=np.float64)
    lean = Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(0), dtype=np.float64, needs_input_grad=False)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5))
    g = np.random.default_rng(2).standard_normal(full.forward(x).shape)
    assert full.backward(g) is not None
    lean.forward(x)
    assert lean.backward(g) is None
    for a, b in zip(full.parameters(), lean.parameters(), strict=True):
        np.testing.assert_array_equal(a.grad, b.grad)
    assert "needs_input_grad=False" in repr(lean) and "needs_input_grad" not in repr(full)


def test_conv2d_parameters_are_named_and_shaped_like_torch():
    torch = torch_or_skip()
    ours = Conv2d(3, 5, (2, 3), stride=2, padding=1, bias=True)
    theirs = torch.nn.Conv2d(3, 5, (2, 3), stride=2, padding=1, bias=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert [n for n, _ in Conv2d(1, 2, 3, bias=False).named_parameters()] == ["weight"]
    assert ours.weight.dtype == np.float32 and Conv2d(1, 1, 1, dtype=np.float64).weight.dtype == np.float64
    assert "kernel_size=(2, 3)" in repr(ours) and "stride=(2, 2)" in repr(MaxPool2d(2))


def test_he_uniform_initialization_uses_the_convolution_fan_in():
    w = Conv2d(4, 64, 3, rng=np.random.default_rng(0)).weight.data
    bound = np.sqrt(6.0 / (4 * 9))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert not Conv2d(4, 64, 3).bias.data.any()
    np.testing.assert_array_equal(Conv2d(1, 2, 3, seed=7).weight.data, Conv2d(1, 2, 3, seed=7).weight.data)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, x, exc, match", [
    (lambda: Conv2d(1, 2, 3), np.zeros((1, 28, 28), np.float32), ValueError,
     r"Conv2d: expected a 4-d input \(N, 1, H, W\), got shape \(1, 28, 28\)"),
    (lambda: Conv2d(3, 2, 3), np.zeros((2, 1, 8, 8), np.float32), ValueError,
     r"Conv2d: expected 3 input channels .* got shape \(2, 1, 8, 8\)"),
    (lambda: Conv2d(1, 2, 5), np.zeros((1, 1, 2, 8), np.float32), ValueError,
     r"Conv2d: kernel \(5, 5\) is larger than the input: spatial size \(2, 8\)"),
    (lambda: Conv2d(1, 2, 6, padding=1), np.zeros((1, 1, 3, 3), np.float32), ValueError,
     r"larger than the padded input \(padding \(1, 1\)\): spatial size \(5, 5\)"),
    (lambda: Conv2d(1, 2, 3), np.zeros((1, 1, 5, 5), np.float64), TypeError,
     r"Conv2d: input dtype float64 does not match parameter dtype float32"),
    (lambda: Conv2d(1, 2, 3), np.zeros((1, 1, 5, 5), np.int64), TypeError,
     r"Conv2d: expected float32 or float64 input, got int64"),
    (lambda: Conv2d(1, 2, 3), [[[[1.0]]]], TypeError, r"Conv2d: expected a numpy ndarray, got list"),
    (lambda: MaxPool2d(2), np.zeros((4, 4), np.float32), ValueError,
     r"MaxPool2d: expected a 4-d input \(N, C, H, W\), got shape \(4, 4\)"),
    (lambda: MaxPool2d(3), np.zeros((1, 1, 2, 5), np.float32), ValueError,
     r"MaxPool2d: kernel \(3, 3\) is larger than the input: spatial size \(2, 5\)"),
    (lambda: AvgPool2d(2), np.zeros((1, 1, 4, 4), np.int32), TypeError,
     r"AvgPool2d: expected float32 or float64 input"),
])
def test_bad_input_raises_naming_layer_expected_and_received(make, x, exc, match):
    with pytest.raises(exc, match=match):
        make().forward(x)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: Conv2d(0, 2, 3), ValueError, "Conv2d: in_channels and out_channels must be positive"),
    (lambda: Conv2d(1, 2, 0), ValueError, r"Conv2d: kernel_size must be >= 1, got 0"),
    (lambda: Conv2d(1, 2, 3, stride=0), ValueError, r"Conv2d: stride must be >= 1"),
    (lambda: Conv2d(1, 2, 3, padding=-1), ValueError, r"Conv2d: padding must be >= 0"),
    (lambda: Conv2d(1, 2, 2.5), TypeError, r"Conv2d: kernel_size must be an int or a pair of ints, got 2.5"),
    (lambda: Conv2d(1, 2, (1, 2, 3)), TypeError, r"kernel_size must be an int or a pair"),
    (lambda: Conv2d(1, 2, 3, dtype=np.int32), TypeError, r"Conv2d: dtype must be float32 or float64"),
    (lambda: MaxPool2d(0), ValueError, r"MaxPool2d: kernel_size must be >= 1"),
    (lambda: AvgPool2d(2, stride=(1, 0)), ValueError, r"AvgPool2d: stride must be >= 1"),
])
def test_bad_arguments_raise(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("layer", [Conv2d(1, 2, 3, padding=1), MaxPool2d(2), AvgPool2d(2)], ids=repr)
def test_backward_checks_order_and_gradient_shape(layer):
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((1, 2, 4, 4), np.float32))
    y = layer.forward(np.zeros((1, 1, 4, 4), np.float32))
    bad = np.zeros(y.shape[:-1] + (y.shape[-1] + 1,), np.float32)
    with pytest.raises(ValueError, match=rf"{type(layer).__name__}.backward: expected grad_out of shape"):
        layer.backward(bad)


@pytest.mark.parametrize("layer, x, match", [
    (Conv2d(2, 1, 3), np.zeros((1, 2, 4, 4)),
     r"Conv2d.jacobian: expected one example of shape \(2, H, W\), got \(1, 2, 4, 4\)"),
    (MaxPool2d(2), np.zeros(16), r"MaxPool2d.jacobian: expected one example of shape \(C, H, W\), got \(16,\)"),
])
def test_jacobian_wants_one_example(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer.jacobian(x.astype(np.float32))
