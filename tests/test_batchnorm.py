"""BatchNorm1d / BatchNorm2d: backward vs finite differences (float64), vs torch with the
same weights (forward, backward, running statistics, train and eval), Jacobians, buffers.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.check.gradcheck import numerical_gradient
from tinygrad_mnist.nn.batchnorm import BatchNorm1d, BatchNorm2d, batch_stats
from tinygrad_mnist.nn.module import Sequential

from .strategies import channel_batch_shapes, seeds


def rel_err(a, b):
    """max |a - b| relative to max(1, max |b|): the arrays compared here are O(1) by
    construction, and some are exactly 0 in exact arithmetic (where a relative error
    against their own size would compare rounding noise with noise)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b), initial=0.0) / max(1.0, np.max(np.abs(b), initial=0.0)))


def make_layer(shape, dtype=np.float64, seed=0, **kwargs):
    cls = BatchNorm1d if len(shape) in (2, 3) else BatchNorm2d
    layer = cls(shape[1], dtype=dtype, **kwargs)
    if layer.affine:
        rng = np.random.default_rng(seed)
        layer.weight.data[...] = rng.uniform(0.5, 2.0, shape[1]) * rng.choice([-1, 1], shape[1])
        layer.bias.data[...] = rng.normal(size=shape[1])
    return layer


def torch_twin(layer):
    torch = pytest.importorskip("torch")
    cls = torch.nn.BatchNorm1d if isinstance(layer, BatchNorm1d) else torch.nn.BatchNorm2d
    t = cls(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine)
    t = t.double() if layer.running_mean.dtype == np.float64 else t
    with torch.no_grad():
        if layer.affine:
            t.weight.copy_(torch.from_numpy(layer.weight.data))
            t.bias.copy_(torch.from_numpy(layer.bias.data))
        t.running_mean.copy_(torch.from_numpy(layer.running_mean))
        t.running_var.copy_(torch.from_numpy(layer.running_var))
    return t


def batch(shape, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    # a per-channel offset and scale, so the statistics are not all the same
    c_shape = (1, shape[1]) + (1,) * (len(shape) - 2)
    x = rng.normal(size=shape) * rng.uniform(0.2, 3.0, c_shape) + rng.normal(size=c_shape)
    return x.astype(dtype), rng.normal(size=shape).astype(dtype)


shapes_any = st.one_of(channel_batch_shapes(0), channel_batch_shapes(1), channel_batch_shapes(2))


# -- finite differences (float64) --------------------------------------------------------
@given(shape=shapes_any, seed=seeds, training=st.booleans())
def test_backward_matches_finite_differences(shape, seed, training):
    layer = make_layer(shape, seed=seed)
    x, g = batch(shape, seed)
    if not training:
        layer.running_mean[...] = np.random.default_rng(seed + 1).normal(size=shape[1])
        layer.running_var[...] = np.random.default_rng(seed + 2).uniform(0.5, 2.0, size=shape[1])
        layer.eval()
    loss = lambda: float(np.sum(layer.forward(x) * g))  # noqa: E731  L = Σ g ⊙ y, so ∂L/∂y = g
    layer.forward(x)
    grad_x = layer.backward(g)
    assert rel_err(grad_x, numerical_gradient(loss, x)) < 1e-6
    for p in (layer.weight, layer.bias):
        assert rel_err(p.grad, numerical_gradient(loss, p.data)) < 1e-6


def test_training_backward_is_orthogonal_to_shifts_and_nearly_to_scalings():
    """Adding a constant to a channel leaves x̂ unchanged, so Σ_j ∂L/∂x_j = 0; scaling it
    leaves x̂ unchanged up to ε: Σ_j ∂L/∂x_j x̂_j = γ s · ε s² · Σ_j g_j x̂_j (from the
    compact formula, since mean(x̂²) = σ² s²)."""
    layer = make_layer((6, 3))
    x, g = batch((6, 3), 7)
    layer.forward(x)
    gx = layer.backward(g)
    mean, var = batch_stats(x)
    s = 1 / np.sqrt(var + layer.eps)
    x_hat = (x - mean) * s
    np.testing.assert_allclose(gx.sum(axis=0), 0, atol=1e-12)
    expected = layer.weight.data * s * layer.eps * s**2 * (g * x_hat).sum(axis=0)
    np.testing.assert_allclose((gx * x_hat).sum(axis=0), expected, rtol=1e-6, atol=1e-14)
    assert np.all(np.abs(expected) < 1e-3 * np.abs(gx).max())


# -- against torch -----------------------------------------------------------------------
@given(shape=shapes_any, seed=seeds, momentum=st.sampled_from([0.1, 0.5, None]))
def test_matches_torch_over_several_training_steps_then_eval_float64(shape, seed, momentum):
    torch = pytest.importorskip("torch")
    layer = make_layer(shape, seed=seed, momentum=momentum)
    twin = torch_twin(layer)
    for step in range(3):
        x, g = batch(shape, seed + step)
        xt = torch.tensor(x, requires_grad=True)
        yt = twin(xt)
        yt.backward(torch.from_numpy(g))
        y = layer.forward(x)
        gx = layer.backward(g)
        assert rel_err(y, yt.detach().numpy()) < 1e-12
        assert rel_err(gx, xt.grad.numpy()) < 1e-12
        assert rel_err(layer.running_mean, twin.running_mean.numpy()) < 1e-13
        assert rel_err(layer.running_var, twin.running_var.numpy()) < 1e-13
    assert layer.num_batches_tracked == int(twin.num_batches_tracked) == 3
    assert rel_err(layer.weight.grad, twin.weight.grad.numpy()) < 1e-12  # accumulated over 3 steps
    assert rel_err(layer.bias.grad, twin.bias.grad.numpy()) < 1e-12
    layer.eval(), twin.eval()
    x, g = batch(shape, seed + 10)
    xt = torch.tensor(x, requires_grad=True)
    yt = twin(xt)
    yt.backward(torch.from_numpy(g))
    assert rel_err(layer.forward(x), yt.detach().numpy()) < 1e-12
    assert rel_err(layer.backward(g), xt.grad.numpy()) < 1e-12


@given(shape=shapes_any, seed=seeds)
def test_matches_torch_float32(shape, seed):
    """float32: errors measured against each quantity's natural scale.  ∂L/∂x is a
    difference of terms of size |γ| s |g| that can cancel exactly (with 2 values per
    channel x̂ = ±1 whatever x, so ∂L/∂x = 0), so its error is relative to
    max|γ s| · max|g|, the size of the terms before cancellation."""
    torch = pytest.importorskip("torch")
    layer = make_layer(shape, dtype=np.float32, seed=seed)
    twin = torch_twin(layer)
    for step in range(2):
        x, g = batch(shape, seed + step, np.float32)
        xt = torch.tensor(x, requires_grad=True)
        yt = twin(xt)
        yt.backward(torch.from_numpy(g))
        y, gx = layer.forward(x), layer.backward(g)
        assert y.dtype == gx.dtype == layer.running_var.dtype == np.float32
        _, var = batch_stats(x.astype(np.float64))
        scale = np.max(np.abs(layer.weight.data) / np.sqrt(var + layer.eps)) * np.max(np.abs(g))
        assert np.max(np.abs(gx - xt.grad.numpy())) <= 1e-5 * scale
        assert rel_err(y, yt.detach().numpy()) < 1e-5
        assert rel_err(layer.running_mean, twin.running_mean.numpy()) < 1e-5
        assert rel_err(layer.running_var, twin.running_var.numpy()) < 1e-5
    assert rel_err(layer.weight.grad, twin.weight.grad.numpy()) < 1e-5 * np.sqrt(x.size)
    assert rel_err(layer.bias.grad, twin.bias.grad.numpy()) < 1e-5 * np.sqrt(x.size)


def test_without_affine_matches_torch():
    torch = pytest.importorskip("torch")
    layer = BatchNorm2d(3, affine=False, dtype=np.float64)
    assert layer.parameters() == []
    twin = torch_twin(layer)
    x, g = batch((2, 3, 4, 4), 3)
    xt = torch.tensor(x, requires_grad=True)
    twin(xt).backward(torch.from_numpy(g))
    layer.forward(x)
    assert rel_err(layer.backward(g), xt.grad.numpy()) < 1e-12
    assert rel_err(layer.running_var, twin.running_var.numpy()) < 1e-13


# -- statistics and modes ---------------------------------------------------------------
def test_training_output_is_normalized_per_channel():
    layer = BatchNorm2d(3, dtype=np.float64)
    x, _ = batch((4, 3, 5, 5), 0)
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5))


def test_running_variance_is_unbiased_and_eval_uses_it():
    layer = BatchNorm1d(2, momentum=1.0, dtype=np.float64)  # momentum 1: running = last batch
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
    layer.forward(x)
    np.testing.assert_allclose(layer.running_mean, [3.0, 12.0])
    np.testing.assert_allclose(layer.running_var, [4.0, 12.0])  # Σ(x - μ)² / (M - 1)
    layer.eval()
    y = layer.forward(np.array([[3.0, 12.0], [5.0, 12.0 + np.sqrt(12.0 + 1e-5)]]))
    np.testing.assert_allclose(y, [[0.0, 0.0], [2.0 / np.sqrt(4.0 + 1e-5), 1.0]])


def test_eval_mode_does_not_touch_running_statistics():
    layer = make_layer((4, 3))
    layer.forward(batch((4, 3), 0)[0])
    before = layer.state_dict()
    layer.eval()
    layer.forward(batch((4, 3), 1)[0])
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_training_needs_more_than_one_value_per_channel():
    layer = BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer.forward(np.zeros((1, 3), dtype=np.float32))
    layer.eval()
    assert layer.forward(np.zeros((1, 3), dtype=np.float32)).shape == (1, 3)


# -- Jacobians -----------------------------------------------------------------------
@given(shape=st.one_of(channel_batch_shapes(1, n=st.just(1), size=st.integers(2, 4)),
                       channel_batch_shapes(2, n=st.just(1), size=st.integers(2, 3))),
       seed=seeds, training=st.booleans())
def test_jacobian_matches_finite_differences_and_backward(shape, seed, training):
    layer = make_layer(shape, seed=seed)
    x, g = batch(shape, seed)
    layer.running_mean[...] = 0.3
    layer.running_var[...] = 1.7
    layer.train(training)
    jac = layer.jacobian(x[0])
    # column j of ∂y/∂x by central differences
    h, n = 1e-6, x[0].size
    numeric = np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        layer_eval = lambda d: layer.forward(x + d.reshape(x.shape))[0].ravel()  # noqa: E731
        numeric[:, j] = (layer_eval(e) - layer_eval(-e)) / (2 * h)
    assert rel_err(jac["input"], numeric) < 1e-6
    # backward of the same single-example batch is gᵀJ
    layer.zero_grad()
    layer.forward(x)
    assert rel_err(layer.backward(g).ravel(), g.ravel() @ jac["input"]) < 1e-12
    assert rel_err(layer.weight.grad, g.ravel() @ jac["weight"]) < 1e-12
    assert rel_err(layer.bias.grad, g.ravel() @ jac["bias"]) < 1e-12


def test_jacobian_eval_mode_is_diagonal_and_one_example_1d_needs_eval():
    layer = make_layer((4, 3))
    with pytest.raises(ValueError, match="training mode needs more than 1 value"):
        layer.jacobian(np.ones(3))
    layer.eval()
    jac = layer.jacobian(np.ones(3))
    np.testing.assert_allclose(jac["input"], np.diag(layer.weight.data / np.sqrt(1 + layer.eps)))


# -- buffers, dtype, errors ------------------------------------------------------------
def test_buffers_are_in_state_dict_load_and_astype():
    model = Sequential(BatchNorm2d(2), BatchNorm1d(3))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "0.running_mean", "0.running_var",
                                        "1.running_mean", "1.running_var"]
    model[0].forward(np.random.default_rng(0).normal(size=(2, 2, 3, 3)).astype(np.float32))
    other = Sequential(BatchNorm2d(2), BatchNorm1d(3))
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other[0].running_var, model[0].running_var)
    assert not np.allclose(other[0].running_var, 1.0)
    other.astype(np.float64)
    assert other[0].running_mean.dtype == other[1].running_var.dtype == np.float64
    with pytest.raises(TypeError, match="dtype float32 does not match"):
        other[0].forward(np.zeros((2, 2, 3, 3), dtype=np.float32))


def test_torch_state_dict_names_match():
    torch = pytest.importorskip("torch")
    ours = set(BatchNorm2d(4).state_dict())
    theirs = set(torch.nn.BatchNorm2d(4).state_dict())
    assert ours == theirs - {"num_batches_tracked"}


@pytest.mark.parametrize("make, x, match", [
    (lambda: BatchNorm1d(3), np.zeros((4, 2), np.float32), r"expected input of shape \(n, 3\)"),
    (lambda: BatchNorm1d(3), np.zeros((4,), np.float32), r"got \(4,\)"),
    (lambda: BatchNorm2d(3), np.zeros((4, 3, 2), np.float32), r"\(n, 3, H, W\)"),
    (lambda: BatchNorm2d(3), np.zeros((4, 3, 2, 2), np.int64), "dtype int64"),
])
def test_bad_input_raises(make, x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make().forward(x)


@pytest.mark.parametrize("kwargs", [dict(num_features=0), dict(num_features=2, eps=0),
                                    dict(num_features=2, momentum=1.5), dict(num_features=2, dtype=np.int32)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises((ValueError, TypeError), match="BatchNorm1d"):
        BatchNorm1d(**kwargs)


def test_backward_before_forward_and_wrong_grad_shape():
    layer = BatchNorm1d(2)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((3, 2), np.float32))
    layer.forward(np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(3, 2\)"):
        layer.backward(np.zeros((2, 2), np.float32))
