"""Residual: y = F(x) + P(x); gradients through both branches vs finite differences and
torch with the same weights; the Jacobian J_F + J_P; shape errors.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.check.gradcheck import check_jacobian, check_module, relative_error
from tinygrad_mnist.nn.activations import ReLU, Tanh
from tinygrad_mnist.nn.batchnorm import BatchNorm2d
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.module import Sequential
from tinygrad_mnist.nn.reshape import Flatten
from tinygrad_mnist.nn.residual import Residual

from .strategies import channel_batch_shapes, seeds


def make(d_in, d_out, projection, seed, dtype=np.float64):
    """Residual(Linear(d_in, d_out), Tanh, Linear(d_out, d_out)) with a Linear projection,
    or the identity skip (d_in == d_out)."""
    rng = np.random.default_rng(seed)
    block = Sequential(Linear(d_in, d_out, rng=rng, dtype=dtype), Tanh(), Linear(d_out, d_out, rng=rng, dtype=dtype))
    for p in block.parameters():  # non-zero biases, so every gradient term is exercised
        p.data[...] = rng.normal(size=p.shape) * 0.7
    proj = Linear(d_in, d_out, rng=rng, dtype=dtype) if projection else None
    return Residual(block, proj)


def torch_twin(res):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class TorchResidual(nn.Module):
        def __init__(self, block, projection):
            super().__init__()
            self.block, self.projection = block, projection

        def forward(self, x):
            return self.block(x) + (x if self.projection is None else self.projection(x))

    def lin(m):
        return nn.Linear(m.in_features, m.out_features)

    block = nn.Sequential(lin(res.block[0]), nn.Tanh(), lin(res.block[2]))
    twin = TorchResidual(block, None if res.projection is None else lin(res.projection))
    twin = twin.double() if res.dtype == np.float64 else twin
    with torch.no_grad():
        theirs = dict(twin.named_parameters())
        assert set(theirs) == {name for name, _ in res.named_parameters()}
        for name, p in res.named_parameters():
            theirs[name].copy_(torch.from_numpy(p.data))
    return twin


dims = st.integers(1, 5)


@given(n=st.integers(1, 4), d_in=dims, d_out=dims, projection=st.booleans(), seed=seeds)
def test_backward_matches_finite_differences(n, d_in, d_out, projection, seed):
    if not projection:
        d_out = d_in
    res = make(d_in, d_out, projection, seed)
    x = np.random.default_rng(seed).normal(size=(n, d_in))
    report = check_module(res, x, seed=seed)
    assert report.passed, str(report)
    assert {c.name for c in report.checks} == {"input"} | {name for name, _ in res.named_parameters()}


@given(n=st.integers(1, 4), d_in=dims, d_out=dims, projection=st.booleans(), seed=seeds,
       dtype=st.sampled_from([np.float64, np.float32]))
def test_matches_torch_with_identical_weights(n, d_in, d_out, projection, seed, dtype):
    torch = pytest.importorskip("torch")
    if not projection:
        d_out = d_in
    res = make(d_in, d_out, projection, seed, dtype)
    twin = torch_twin(res)
    rng = np.random.default_rng(seed)
    x, g = rng.normal(size=(n, d_in)).astype(dtype), rng.normal(size=(n, d_out)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = twin(xt)
    yt.backward(torch.from_numpy(g))
    y = res.forward(x)
    gx = res.backward(g)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert y.dtype == gx.dtype == dtype
    assert relative_error(y, yt.detach().numpy()) < tol
    assert relative_error(gx, xt.grad.numpy()) < tol
    theirs = dict(twin.named_parameters())
    for name, p in res.named_parameters():
        assert relative_error(p.grad, theirs[name].grad.numpy()) < tol, name


def test_identity_skip_adds_the_upstream_gradient_to_the_block_gradient():
    res = make(3, 3, False, 0)
    x = np.random.default_rng(1).normal(size=(2, 3))
    g = np.random.default_rng(2).normal(size=(2, 3))
    np.testing.assert_allclose(res.forward(x), res.block.forward(x) + x, rtol=1e-15)
    res.forward(x)
    gx = res.backward(g)
    res.block.forward(x)
    np.testing.assert_allclose(gx, res.block.backward(g) + g, rtol=1e-14)


def test_both_branches_receive_parameter_gradients_and_accumulate():
    res = make(3, 4, True, 5)
    x = np.random.default_rng(0).normal(size=(2, 3))
    g = np.ones((2, 4))
    res.forward(x)
    res.backward(g)
    first = {name: p.grad.copy() for name, p in res.named_parameters()}
    assert all(np.any(v != 0) for v in first.values())
    np.testing.assert_allclose(res.projection.weight.grad, g.T @ x)  # ∂/∂W of x Wᵀ
    res.forward(x)
    res.backward(g)
    for name, p in res.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * first[name], rtol=1e-14)


@given(d_in=dims, d_out=dims, projection=st.booleans(), seed=seeds)
def test_jacobian_is_the_sum_of_the_branches_and_matches_finite_differences(d_in, d_out, projection, seed):
    if not projection:
        d_out = d_in
    res = make(d_in, d_out, projection, seed)
    x = np.random.default_rng(seed).normal(size=d_in)
    jac = res.jacobian(x)
    skip = np.eye(d_in) if res.projection is None else res.projection.weight.data
    np.testing.assert_allclose(jac["input"], res.block.jacobian(x)["input"] + skip, rtol=1e-14)
    assert list(jac) == ["input"] + [name for name, _ in res.named_parameters()]
    report = check_jacobian(res, x)
    assert report.passed, str(report)


@given(shape=channel_batch_shapes(2, n=st.integers(2, 3), c=st.integers(1, 3), size=st.integers(2, 3)),
       seed=seeds)
def test_residual_around_batchnorm2d_matches_torch_and_finite_differences(shape, seed):
    """A block that couples the batch (BatchNorm in training mode) on 4-d input."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    bn = BatchNorm2d(shape[1], dtype=np.float64)
    bn.weight.data[...] = rng.uniform(0.5, 2, shape[1])
    bn.bias.data[...] = rng.normal(size=shape[1])
    res = Residual(Sequential(bn, Tanh()))
    x, g = rng.normal(size=shape), rng.normal(size=shape)
    assert check_module(res, x, grad_out=g).passed
    tbn = torch.nn.BatchNorm2d(shape[1]).double()
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(bn.weight.data))
        tbn.bias.copy_(torch.from_numpy(bn.bias.data))
    xt = torch.tensor(x, requires_grad=True)
    (torch.tanh(tbn(xt)) + xt).backward(torch.from_numpy(g))
    res.zero_grad()
    res.forward(x)
    assert relative_error(res.backward(g), xt.grad.numpy()) < 1e-12
    assert relative_error(bn.weight.grad, tbn.weight.grad.numpy()) < 1e-12


def test_shape_mismatch_raises_a_clear_error():
    res = Residual(Linear(3, 4))
    with pytest.raises(ValueError, match=r"block\(x\) has shape \(2, 4\) but the input has shape \(2, 3\).*projection"):
        res.forward(np.zeros((2, 3), np.float32))
    bad = Residual(Linear(3, 4), projection=Linear(3, 5))
    with pytest.raises(ValueError, match=r"projection\(x\) has shape \(2, 5\)"):
        bad.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="Jacobian has shape"):
        res.astype(np.float64).jacobian(np.zeros(3))


def test_bad_arguments_and_backward_checks():
    with pytest.raises(TypeError, match="block must be a Module"):
        Residual(lambda x: x)
    with pytest.raises(TypeError, match="projection must be a Module"):
        Residual(Linear(2, 2), projection="identity")
    res = Residual(Sequential(Linear(2, 2), ReLU()))
    with pytest.raises(RuntimeError, match="before forward"):
        res.backward(np.zeros((1, 2), np.float32))
    res.forward(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(3, 2\)"):
        res.backward(np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match="does not match parameter dtype"):
        res.forward(np.zeros((3, 2)))


def test_names_state_dict_and_nesting():
    inner = Residual(Sequential(Linear(4, 4, seed=1), ReLU()))
    model = Sequential(Flatten(), Residual(Sequential(inner, Linear(4, 4, seed=2))), Linear(4, 2, seed=3))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["1.block.0.block.0.weight", "1.block.0.block.0.bias", "1.block.1.weight", "1.block.1.bias",
                     "2.weight", "2.bias"]
    assert list(model.state_dict()) == names
    y = model.forward(np.ones((2, 2, 2), np.float32))
    assert y.shape == (2, 2)
    assert model.backward(np.ones_like(y)).shape == (2, 2, 2)
