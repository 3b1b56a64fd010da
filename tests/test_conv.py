"""Conv2d and the im2col/col2im helpers against their definition, torch and finite differences.

Shapes: batch 1–3, channels 1–3, spatial 3–8, kernel 1–3, stride 1–2 (pools: 1–3),
padding 0–2, each drawn separately for height and width (see ``tests/strategies.py``).

Tolerances (``EXACT``, ``FD_TOL``, ``F32_TOL`` in ``tests/error_scales.py``; relative
error = max |a − b| / max(max |a|, max |b|)):

- identities that only rounding separates (adjoint, gᵀJ = backward, float64 vs torch
  float64): 1e-12;
- central differences in float64, ε = 1e-6: 1e-6 (``tinygrad_mnist.check.gradcheck``);
- float32 vs torch float32: 1e-5.  Each output is a sum of at most C·k_h·k_w = 27
  products (dW: up to N·H_out·W_out = 3·10·10 = 300), each rounded at u = 6e-8, in a
  different order on the two sides; 1e-5 leaves room for that and no more.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.check.gradcheck import check_jacobian, check_module, relative_error
from tinygrad_mnist.nn.conv import Conv2d, col2im, conv2d_backward, conv2d_forward, im2col, im2col_index_map
from tinygrad_mnist.nn.conv_reference import conv2d_backward_loops, conv2d_forward_loops
from tinygrad_mnist.nn.image import conv_output_size

from .error_scales import EXACT, F32_TOL, FD_TOL
from .strategies import config_input_shape, conv_configs, float_arrays, seeds
from .torch_reference import torch_or_skip


def _conv(cfg, seed=0, dtype=np.float64) -> Conv2d:
    return Conv2d(cfg["c_in"], cfg["c_out"], cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                  bias=cfg["bias"], rng=np.random.default_rng(seed), dtype=dtype)


# -- the pure functions -----------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, stride, padding, expected",
                         [(28, 3, 1, 1, 28), (28, 3, 2, 1, 14), (5, 2, 2, 0, 2), (7, 3, 1, 0, 5), (4, 5, 1, 1, 2)])
def test_conv_output_size(size, kernel, stride, padding, expected):
    assert conv_output_size(size, kernel, stride, padding) == expected


@given(cfg=conv_configs(), data=st.data())
def test_im2col_matches_its_definition(cfg, data):
    """cols[(c, i, j), (p, q, n)] = x_pad[n, c, p·s_h + i, q·s_w + j], entry by entry."""
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")
    cols = im2col(x, cfg["kernel"], cfg["stride"], cfg["padding"])
    (kh, kw), (sh, sw), (ph, pw) = cfg["kernel"], cfg["stride"], cfg["padding"]
    n, c, h, w = x.shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    expected = np.empty((c, kh, kw, ho, wo, n))
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for p in range(ho):
                    for q in range(wo):
                        expected[ci, i, j, p, q, :] = xp[:, ci, p * sh + i, q * sw + j]
    np.testing.assert_array_equal(cols, expected.reshape(c * kh * kw, ho * wo * n))


@given(cfg=conv_configs(), data=st.data())
def test_col2im_is_the_adjoint_of_im2col(cfg, data):
    """<im2col(x), D> = <x, col2im(D)> for every x and D: col2im is im2col transposed."""
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")
    cols = im2col(x, cfg["kernel"], cfg["stride"], cfg["padding"])
    d = data.draw(float_arrays(cols.shape), label="D")
    back = col2im(d, x.shape, cfg["kernel"], cfg["stride"], cfg["padding"])
    assert back.shape == x.shape
    lhs, rhs = float(np.sum(cols * d)), float(np.sum(x * back))
    scale = float(np.sum(np.abs(cols * d))) + 1e-300
    assert abs(lhs - rhs) <= EXACT * scale


@given(cfg=conv_configs(n=st.just(1)), data=st.data())
def test_index_map_reads_what_im2col_copies(cfg, data):
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")
    index = im2col_index_map(x.shape[1:], cfg["kernel"], cfg["stride"], cfg["padding"])
    gathered = np.where(index >= 0, x[0].ravel()[np.maximum(index, 0)], 0.0)
    np.testing.assert_array_equal(gathered, im2col(x, cfg["kernel"], cfg["stride"], cfg["padding"]))


@given(cfg=conv_configs(), data=st.data(), seed=seeds)
def test_conv2d_forward_matches_the_loop_definition(cfg, data, seed):
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")
    layer = _conv(cfg, seed)
    b = None if layer.bias is None else layer.bias.data + 0.5  # non-zero bias
    y, _ = conv2d_forward(x, layer.weight.data, b, cfg["stride"], cfg["padding"])
    expected = conv2d_forward_loops(x, layer.weight.data, b, cfg["stride"], cfg["padding"])
    assert relative_error(y, expected) < EXACT


@given(cfg=conv_configs(), data=st.data(), seed=seeds)
def test_conv2d_backward_matches_the_loop_definition(cfg, data, seed):
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")
    layer = _conv(cfg, seed)
    y, cols = conv2d_forward(x, layer.weight.data, None, cfg["stride"], cfg["padding"])
    g = data.draw(float_arrays(y.shape), label="g")
    fast = conv2d_backward(g, cols, layer.weight.data, x.shape, cfg["stride"], cfg["padding"])
    loops = conv2d_backward_loops(g, x, layer.weight.data, cfg["stride"], cfg["padding"])
    for name, a, b in zip(("input", "weight", "bias"), fast, loops, strict=True):
        assert relative_error(a, b) < EXACT, name


# -- Conv2d against torch -----------------------------------------------------------------------
def _torch_conv(layer: Conv2d, x, g, bias):
    torch = torch_or_skip()
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.weight.data, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True) if bias is not None else None
    yt = F.conv2d(xt, wt, bt, stride=layer.stride, padding=layer.padding)
    yt.backward(torch.tensor(g))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), None if bt is None else bt.grad.numpy()


@pytest.mark.parametrize("dtype, tol", [(np.float64, EXACT), (np.float32, F32_TOL)], ids=["float64", "float32"])
@given(cfg=conv_configs(), seed=seeds, data=st.data())
def test_conv2d_matches_torch(dtype, tol, cfg, seed, data):
    layer = _conv(cfg, seed, dtype)
    if layer.bias is not None:
        layer.bias.data[...] = np.random.default_rng(seed).standard_normal(layer.bias.shape)
    x = data.draw(float_arrays(config_input_shape(cfg), dtype=dtype), label="x")
    y = layer.forward(x)
    g = data.draw(float_arrays(y.shape, dtype=dtype), label="g")
    gx = layer.backward(g)
    ty, tgx, tgw, tgb = _torch_conv(layer, x, g, None if layer.bias is None else layer.bias.data)
    assert y.dtype == gx.dtype == layer.weight.grad.dtype == dtype
    assert y.shape == ty.shape and gx.shape == x.shape
    assert relative_error(y, ty) < tol
    assert relative_error(gx, tgx) < tol
    assert relative_error(layer.weight.grad, tgw) < tol
    if layer.bias is not None:
        assert relative_error(layer.bias.grad, tgb) < tol


@given(cfg=conv_configs(n=st.just(1)), seed=seeds, data=st.data())
def test_conv2d_jacobian_matches_torch_autograd(cfg, seed, data):
    torch = torch_or_skip()
    F = torch.nn.functional
    layer = _conv(cfg, seed)
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")[0]
    jac = layer.jacobian(x)
    wt, xt = torch.tensor(layer.weight.data), torch.tensor(x)
    bt = None if layer.bias is None else torch.tensor(layer.bias.data)
    out = lambda xx, ww, bb: F.conv2d(xx[None], ww, bb, stride=layer.stride, padding=layer.padding).ravel()  # noqa: E731
    m = out(xt, wt, bt).numel()
    tj = torch.autograd.functional.jacobian
    assert relative_error(jac["input"], tj(lambda t: out(t, wt, bt), xt).reshape(m, -1).numpy()) < EXACT
    assert relative_error(jac["weight"], tj(lambda t: out(xt, t, bt), wt).reshape(m, -1).numpy()) < EXACT
    if bt is not None:
        assert relative_error(jac["bias"], tj(lambda t: out(xt, wt, t), bt).reshape(m, -1).numpy()) < EXACT
    else:
        assert set(jac) == {"input", "weight"}


# -- Conv2d against finite differences ----------------------------------------------------------
@given(cfg=conv_configs(), seed=seeds, data=st.data())
def test_conv2d_backward_matches_finite_differences(cfg, seed, data):
    layer = _conv(cfg, seed)
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")
    report = check_module(layer, x, tol=FD_TOL, seed=seed % 1000)
    assert report.passed, str(report)


@given(cfg=conv_configs(n=st.just(1), channels=st.integers(1, 2), size=st.integers(3, 6)), seed=seeds,
       data=st.data())
def test_conv2d_jacobian_matches_finite_differences_and_backward(cfg, seed, data):
    layer = _conv(cfg, seed)
    x = data.draw(float_arrays(config_input_shape(cfg)), label="x")
    report = check_jacobian(layer, x[0], tol=FD_TOL)
    assert report.passed, str(report)
    # backward is gᵀJ
    jac = layer.jacobian(x[0])
    y = layer.forward(x)
    g = data.draw(float_arrays(y.shape), label="g")
    layer.zero_grad()
    gx = layer.backward(g)
    gv = g.reshape(-1)
    assert relative_error(gx.reshape(-1), gv @ jac["input"]) < EXACT
    assert relative_error(layer.weight.grad.reshape(-1), gv @ jac["weight"]) < EXACT
    if layer.bias is not None:
        assert relative_error(layer.bias.grad, gv @ jac["bias"]) < EXACT


def test_conv2d_jacobian_structure():
    """weight Jacobian = I_O ⊗ colsᵀ (block diagonal); bias Jacobian = I_O ⊗ 1."""
    layer = Conv2d(2, 3, 2, stride=1, padding=1, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    jac = layer.jacobian(x)
    cols = im2col(x[None], 2, 1, 1)  # (8, 20)
    np.testing.assert_array_equal(jac["weight"], np.kron(np.eye(3), cols.T))
    np.testing.assert_array_equal(jac["bias"], np.kron(np.eye(3), np.ones((20, 1))))
    assert jac["input"].shape == (3 * 4 * 5, 2 * 3 * 4)
    # a pixel's column holds exactly the weights that see it (corner (0, 0) of channel 0 is
    # seen by kernel offset (1, 1) from output (0, 0) and ... (0, 0) from output (1, 1))
    col = jac["input"][:, 0].reshape(3, 4, 5)
    W = layer.weight.data
    np.testing.assert_array_equal(col[:, 0, 0], W[:, 0, 1, 1])
    np.testing.assert_array_equal(col[:, 1, 1], W[:, 0, 0, 0])
    assert np.count_nonzero(col) == np.count_nonzero(W[:, 0])
