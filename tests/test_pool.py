"""MaxPool2d and AvgPool2d against torch (exact ties included) and finite differences.

Shapes: batch 1–3, channels 1–3, spatial 3–8, kernel 1–3, stride 1–3, drawn separately
for height and width (``pool_configs`` in ``tests/strategies.py``).  Tolerances as in
``tests/test_conv.py`` (``EXACT``, ``FD_TOL``, ``F32_TOL`` in ``tests/error_scales.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.check.gradcheck import check_jacobian, check_module, relative_error
from tinygrad_mnist.nn.pool import AvgPool2d, MaxPool2d, maxpool2d_forward

from .error_scales import EXACT, F32_TOL, FD_TOL
from .strategies import config_input_shape, distinct_arrays, float_arrays, pool_configs, tied_arrays
from .torch_reference import torch_or_skip

# -- pooling ----------------------------------------------------------------------------------
POOLS = {"max": (MaxPool2d, "max_pool2d"), "avg": (AvgPool2d, "avg_pool2d")}


def _pool(kind, cfg):
    return POOLS[kind][0](cfg["kernel"], cfg["stride"])


def _torch_pool(kind, cfg, x, g):
    torch = torch_or_skip()
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, POOLS[kind][1])(xt, cfg["kernel"], cfg["stride"])
    yt.backward(torch.tensor(g))
    return yt.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, EXACT), (np.float32, F32_TOL)], ids=["float64", "float32"])
@given(cfg=pool_configs(), data=st.data())
def test_pool_matches_torch_including_ties(kind, dtype, tol, cfg, data):
    """Inputs from a few values make exact ties: the max-pool gradient must go to the same
    (first, row-major) element of the window as torch's."""
    layer = _pool(kind, cfg)
    x = data.draw(tied_arrays(config_input_shape(cfg), dtype=dtype), label="x")
    y = layer.forward(x)
    g = data.draw(float_arrays(y.shape, dtype=dtype), label="g")
    gx = layer.backward(g)
    ty, tgx = _torch_pool(kind, cfg, x, g)
    assert y.dtype == gx.dtype == dtype and y.shape == ty.shape and gx.shape == x.shape
    assert relative_error(y, ty) < tol
    assert relative_error(gx, tgx) < tol


@pytest.mark.parametrize("kernel, stride, shape",
                         [(2, 2, (2, 3, 4, 6)), (2, 2, (2, 3, 5, 6)), ((2, 3), (2, 3), (1, 2, 6, 9))],
                         ids=["tiling", "odd-height", "tiling-2x3"])
def test_maxpool_tiling_fast_path_matches_torch(kernel, stride, shape):
    """2×2/2 on even sizes writes each pixel's gradient once instead of accumulating."""
    cfg = {"kernel": _pair2(kernel), "stride": _pair2(stride)}
    x = np.random.default_rng(0).integers(0, 3, size=shape).astype(np.float64)   # many ties
    layer = MaxPool2d(kernel, stride)
    y = layer.forward(x)
    g = np.random.default_rng(1).standard_normal(y.shape)
    ty, tgx = _torch_pool("max", cfg, x, g)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(layer.backward(g), tgx)


def _pair2(v):
    return (v, v) if isinstance(v, int) else v


def test_maxpool_ties_go_to_the_first_maximum():
    x = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]])
    layer = MaxPool2d(2)
    np.testing.assert_array_equal(layer.forward(x), [[[[1.0, 2.0]]]])
    np.testing.assert_array_equal(layer.backward(np.array([[[[3.0, 5.0]]]])),
                                  [[[[3.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_overlapping_maxpool_accumulates_where_windows_share_the_winner():
    x = np.array([[[[0.0, 9.0, 0.0, 1.0]]]])
    layer = MaxPool2d((1, 2), stride=1)   # windows {0,1}, {1,2}, {2,3}
    np.testing.assert_array_equal(layer.forward(x), [[[[9.0, 9.0, 1.0]]]])
    np.testing.assert_array_equal(layer.backward(np.array([[[[1.0, 2.0, 4.0]]]])), [[[[0.0, 3.0, 0.0, 4.0]]]])


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(cfg=pool_configs(), data=st.data())
def test_pool_backward_and_jacobian_match_finite_differences(kind, cfg, data):
    layer = _pool(kind, cfg)
    x = data.draw(distinct_arrays(config_input_shape(cfg)), label="x")   # no ties: max is differentiable
    report = check_module(layer, x, tol=FD_TOL)
    assert report.passed, str(report)
    report = check_jacobian(layer, x[0], tol=FD_TOL)
    assert report.passed, str(report)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(cfg=pool_configs(n=st.just(1)), data=st.data())
def test_pool_jacobian_matches_torch_autograd_and_backward(kind, cfg, data):
    torch = torch_or_skip()
    layer = _pool(kind, cfg)
    x = data.draw(tied_arrays(config_input_shape(cfg)), label="x")[0]
    J = layer.jacobian(x)["input"]
    f = getattr(torch.nn.functional, POOLS[kind][1])
    tJ = torch.autograd.functional.jacobian(lambda t: f(t[None], cfg["kernel"], cfg["stride"]).ravel(),
                                            torch.tensor(x))
    np.testing.assert_allclose(J, tJ.reshape(J.shape[0], -1).numpy(), rtol=0, atol=1e-15)
    y = layer.forward(x[None])
    g = data.draw(float_arrays(y.shape), label="g")
    assert relative_error(layer.backward(g).reshape(-1), g.reshape(-1) @ J) < EXACT


def test_maxpool_argmax_is_the_window_offset():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 2, 1] = 5.0
    y, argmax = maxpool2d_forward(x, (3, 3), (1, 1))
    assert y.item() == 5.0 and argmax.item() == 2 * 3 + 1 and argmax.dtype == np.uint8
