"""Conv2d, MaxPool2d, AvgPool2d and the im2col/col2im helpers, over hypothesis shapes.

Shapes: batch 1–3, channels 1–3, spatial 3–8, kernel 1–3, stride 1–2 (pools: 1–3),
padding 0–2, each drawn separately for height and width (see ``tests/strategies.py``).

Tolerances (relative error = max |a − b| / max(max |a|, max |b|)):

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

from tinygrad_mnist.nn.conv import col2im, Conv2d, conv2d_forward, im2col, im2col_index_map
from tinygrad_mnist.nn.image import conv_output_size
from tinygrad_mnist.nn.pool import AvgPool2d, MaxPool2d, maxpool2d_forward
from tinygrad_mnist.check.gradcheck import check_jacobian, check_module, relative_error

from .strategies import conv_configs, distinct_arrays, float_arrays, pool_configs, seeds, tied_arrays

EXACT = 1e-12
FD_TOL = 1e-6
F32_TOL = 1e-5


def _torch():
    return pytest.importorskip("torch")


def _conv(cfg, seed=0, dtype=np.float64) -> Conv2d:
    return Conv2d(cfg["c_in"], cfg["c_out"], cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                  bias=cfg["bias"], rng=np.random.default_rng(seed), dtype=dtype)


def _x_shape(cfg):
    return (cfg["n"], cfg.get("c_in", cfg.get("c")), cfg["h"], cfg["w"])


def _naive_conv(x, w, b, stride, padding):
    """The definition, with loops over every output pixel (the reference for im2col)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(wd, kw, sw, pw)
    y = np.zeros((n, o, ho, wo))
    for p in range(ho):
        for q in range(wo):
            patch = xp[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]
            y[:, :, p, q] = np.einsum("ncij,ocij->no", patch, w)
    return y if b is None else y + b[None, :, None, None]


# -- the pure functions -----------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, stride, padding, expected",
                         [(28, 3, 1, 1, 28), (28, 3, 2, 1, 14), (5, 2, 2, 0, 2), (7, 3, 1, 0, 5), (4, 5, 1, 1, 2)])
def test_conv_output_size(size, kernel, stride, padding, expected):
    assert conv_output_size(size, kernel, stride, padding) == expected


@given(cfg=conv_configs(), data=st.data())
def test_im2col_matches_its_definition(cfg, data):
    """cols[(c, i, j), (p, q, n)] = x_pad[n, c, p·s_h + i, q·s_w + j], entry by entry."""
    x = data.draw(float_arrays(_x_shape(cfg)), label="x")
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
    x = data.draw(float_arrays(_x_shape(cfg)), label="x")
    cols = im2col(x, cfg["kernel"], cfg["stride"], cfg["padding"])
    d = data.draw(float_arrays(cols.shape), label="D")
    back = col2im(d, x.shape, cfg["kernel"], cfg["stride"], cfg["padding"])
    assert back.shape == x.shape
    lhs, rhs = float(np.sum(cols * d)), float(np.sum(x * back))
    scale = float(np.sum(np.abs(cols * d))) + 1e-300
    assert abs(lhs - rhs) <= EXACT * scale


@given(cfg=conv_configs(n=st.just(1)), data=st.data())
def test_index_map_reads_what_im2col_copies(cfg, data):
    x = data.draw(float_arrays(_x_shape(cfg)), label="x")
    index = im2col_index_map(x.shape[1:], cfg["kernel"], cfg["stride"], cfg["padding"])
    gathered = np.where(index >= 0, x[0].ravel()[np.maximum(index, 0)], 0.0)
    np.testing.assert_array_equal(gathered, im2col(x, cfg["kernel"], cfg["stride"], cfg["padding"]))


@given(cfg=conv_configs(), data=st.data(), seed=seeds)
def test_conv2d_forward_matches_the_loop_definition(cfg, data, seed):
    x = data.draw(float_arrays(_x_shape(cfg)), label="x")
    layer = _conv(cfg, seed)
    b = None if layer.bias is None else layer.bias.data + 0.5  # non-zero bias
    y, _ = conv2d_forward(x, layer.weight.data, b, cfg["stride"], cfg["padding"])
    expected = _naive_conv(x, layer.weight.data, b, cfg["stride"], cfg["padding"])
    assert relative_error(y, expected) < EXACT


# -- Conv2d against torch -----------------------------------------------------------------------
def _torch_conv(layer: Conv2d, x, g, bias):
    torch = _torch()
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
    x = data.draw(float_arrays(_x_shape(cfg), dtype=dtype), label="x")
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
    torch = _torch()
    F = torch.nn.functional
    layer = _conv(cfg, seed)
    x = data.draw(float_arrays(_x_shape(cfg)), label="x")[0]
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
    x = data.draw(float_arrays(_x_shape(cfg)), label="x")
    report = check_module(layer, x, tol=FD_TOL, seed=seed % 1000)
    assert report.passed, str(report)


@given(cfg=conv_configs(n=st.just(1), channels=st.integers(1, 2), size=st.integers(3, 6)), seed=seeds,
       data=st.data())
def test_conv2d_jacobian_matches_finite_differences_and_backward(cfg, seed, data):
    layer = _conv(cfg, seed)
    x = data.draw(float_arrays(_x_shape(cfg)), label="x")
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


# -- pooling ----------------------------------------------------------------------------------
POOLS = {"max": (MaxPool2d, "max_pool2d"), "avg": (AvgPool2d, "avg_pool2d")}


def _pool(kind, cfg):
    return POOLS[kind][0](cfg["kernel"], cfg["stride"])


def _torch_pool(kind, cfg, x, g):
    torch = _torch()
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
    x = data.draw(tied_arrays(_x_shape(cfg), dtype=dtype), label="x")
    y = layer.forward(x)
    g = data.draw(float_arrays(y.shape, dtype=dtype), label="g")
    gx = layer.backward(g)
    ty, tgx = _torch_pool(kind, cfg, x, g)
    assert y.dtype == gx.dtype == dtype and y.shape == ty.shape and gx.shape == x.shape
    assert relative_error(y, ty) < tol
    assert relative_error(gx, tgx) < tol


@pytest.mark.parametrize("kernel, stride, shape", [(2, 2, (2, 3, 4, 6)), (2, 2, (2, 3, 5, 6)), ((2, 3), (2, 3), (1, 2, 6, 9))],
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
    x = data.draw(distinct_arrays(_x_shape(cfg)), label="x")   # no ties: max is differentiable
    report = check_module(layer, x, tol=FD_TOL)
    assert report.passed, str(report)
    report = check_jacobian(layer, x[0], tol=FD_TOL)
    assert report.passed, str(report)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(cfg=pool_configs(n=st.just(1)), data=st.data())
def test_pool_jacobian_matches_torch_autograd_and_backward(kind, cfg, data):
    torch = _torch()
    layer = _pool(kind, cfg)
    x = data.draw(tied_arrays(_x_shape(cfg)), label="x")[0]
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
        for a, b in zip(grads, results[0][2]):
            np.testing.assert_array_equal(a, b)


def test_parameter_gradients_accumulate():
    layer = Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4))
    g = np.random.default_rng(2).standard_normal(layer.forward(x).shape)
    layer.backward(g)
    once = [p.grad.copy() for p in layer.parameters()]
    layer.backward(g)
    for p, g1 in zip(layer.parameters(), once):
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
    for a, b in zip(full.parameters(), lean.parameters()):
        np.testing.assert_array_equal(a.grad, b.grad)
    assert "needs_input_grad=False" in repr(lean) and "needs_input_grad" not in repr(full)


def test_conv2d_parameters_are_named_and_shaped_like_torch():
    torch = _torch()
    ours = Conv2d(3, 5, (2, 3), stride=2, padding=1, bias=True)
    theirs = torch.nn.Conv2d(3, 5, (2, 3), stride=2, padding=1, bias=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert [n for n, _ in Conv2d(1, 2, 3, bias=False).named_parameters()] == ["weight"]
    assert ours.weight.dtype == np.float32 and Conv2d(1, 1, 1, dtype=np.float64).weight.dtype == np.float64
    assert "kernel_size=(2, 3)" in repr(ours) and "stride=(2, 2)" in repr(MaxPool2d(2))


def test_he_uniform_initialisation_uses_the_convolution_fan_in():
    w = Conv2d(4, 64, 3, rng=np.random.default_rng(0)).weight.data
    bound = np.sqrt(6.0 / (4 * 9))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert not Conv2d(4, 64, 3).bias.data.any()
    np.testing.assert_array_equal(Conv2d(1, 2, 3, seed=7).weight.data, Conv2d(1, 2, 3, seed=7).weight.data)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, x, exc, match", [
    (lambda: Conv2d(1, 2, 3), np.zeros((1, 28, 28), np.float32), ValueError, r"Conv2d: expected a 4-d input \(N, 1, H, W\), got shape \(1, 28, 28\)"),
    (lambda: Conv2d(3, 2, 3), np.zeros((2, 1, 8, 8), np.float32), ValueError, r"Conv2d: expected 3 input channels .* got shape \(2, 1, 8, 8\)"),
    (lambda: Conv2d(1, 2, 5), np.zeros((1, 1, 2, 8), np.float32), ValueError, r"Conv2d: kernel \(5, 5\) is larger than the input: spatial size \(2, 8\)"),
    (lambda: Conv2d(1, 2, 6, padding=1), np.zeros((1, 1, 3, 3), np.float32), ValueError, r"larger than the padded input \(padding \(1, 1\)\): spatial size \(5, 5\)"),
    (lambda: Conv2d(1, 2, 3), np.zeros((1, 1, 5, 5), np.float64), TypeError, r"Conv2d: input dtype float64 does not match parameter dtype float32"),
    (lambda: Conv2d(1, 2, 3), np.zeros((1, 1, 5, 5), np.int64), TypeError, r"Conv2d: expected float32 or float64 input, got int64"),
    (lambda: Conv2d(1, 2, 3), [[[[1.0]]]], TypeError, r"Conv2d: expected a numpy ndarray, got list"),
    (lambda: MaxPool2d(2), np.zeros((4, 4), np.float32), ValueError, r"MaxPool2d: expected a 4-d input \(N, C, H, W\), got shape \(4, 4\)"),
    (lambda: MaxPool2d(3), np.zeros((1, 1, 2, 5), np.float32), ValueError, r"MaxPool2d: kernel \(3, 3\) is larger than the input: spatial size \(2, 5\)"),
    (lambda: AvgPool2d(2), np.zeros((1, 1, 4, 4), np.int32), TypeError, r"AvgPool2d: expected float32 or float64 input"),
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
    (Conv2d(2, 1, 3), np.zeros((1, 2, 4, 4)), r"Conv2d.jacobian: expected one example of shape \(2, H, W\), got \(1, 2, 4, 4\)"),
    (MaxPool2d(2), np.zeros(16), r"MaxPool2d.jacobian: expected one example of shape \(C, H, W\), got \(16,\)"),
])
def test_jacobian_wants_one_example(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer.jacobian(x.astype(np.float32))
