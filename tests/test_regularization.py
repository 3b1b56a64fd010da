"""Dropout (statistics, seeding, train/eval, backward vs finite differences and torch) and the
L1/L2 penalties (values and gradients vs hand formulas, finite differences, torch autograd).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.check.gradcheck import numerical_gradient
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.module import Parameter, Sequential
from tinygrad_mnist.nn.regularization import Dropout, L1Penalty, L2Penalty, Penalty, dropout_mask
from tinygrad_mnist.optim import SGD

from .strategies import batch_shapes, dropout_probabilities, seeds


def rel_err(a, b):
    """max |a - b| relative to max(1, max |b|): the arrays compared here are O(1) by
    construction, and some are exactly 0 in exact arithmetic (where a relative error
    against their own size would compare rounding noise with noise)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b), initial=0.0) / max(1.0, np.max(np.abs(b), initial=0.0)))


# -- Dropout: statistics ---------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_fraction_zeroed_and_mean_within_binomial_bounds(p):
    n = 200_000
    x = np.ones((n // 100, 100), dtype=np.float64)
    y = Dropout(p, seed=3).forward(x)
    zeroed = np.mean(y == 0)
    # 5 standard deviations of the binomial fraction / of the mean of m = b/(1-p)
    assert abs(zeroed - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)
    np.testing.assert_array_equal(np.unique(y), [0.0, 1.0 / (1.0 - p)])


@given(shape=batch_shapes(), p=dropout_probabilities, seed=seeds)
def test_survivors_are_scaled_by_one_over_keep_probability(shape, p, seed):
    x = np.random.default_rng(seed).uniform(0.5, 2.0, shape)
    layer = Dropout(p, seed=seed)
    y = layer.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
    if p == 0:
        assert layer.mask is None  # the identity: no mask drawn
    else:
        np.testing.assert_array_equal(layer.mask, kept / (1 - p))


def test_same_seed_same_masks_new_mask_each_call():
    x = np.ones((8, 50), dtype=np.float32)
    a, b = Dropout(0.5, seed=7), Dropout(0.5, rng=np.random.default_rng(7))
    first, second = a.forward(x), a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    np.testing.assert_array_equal(second, b.forward(x))
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, Dropout(0.5, seed=8).forward(x))
    assert first.dtype == np.float32


def test_eval_mode_is_the_identity_and_draws_nothing():
    layer = Dropout(0.5, seed=1)
    x = np.random.default_rng(0).normal(size=(4, 6))
    layer.eval()
    assert layer.forward(x) is x
    assert layer.mask is None
    g = np.ones_like(x)
    assert layer.backward(g) is g
    state = layer.rng.bit_generator.state
    layer.forward(x)
    assert layer.rng.bit_generator.state == state
    np.testing.assert_array_equal(layer.jacobian(x[0])["input"], np.eye(6))


def test_p_zero_is_identity_p_one_zeroes_everything():
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_array_equal(Dropout(0.0).forward(x), x)
    layer = Dropout(1.0)
    np.testing.assert_array_equal(layer.forward(x), 0)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), 0)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_invalid_p_raises(p):
    with pytest.raises(ValueError, match="Dropout: p must be a probability"):
        Dropout(p)


def test_bad_rng_and_input_raise():
    with pytest.raises(TypeError, match="Generator"):
        Dropout(0.5, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="float32 or float64"):
        Dropout(0.5).forward(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout(0.5).backward(np.ones((2, 2)))


# -- Dropout: gradients ----------------------------------------------------------------
@given(shape=batch_shapes(), p=dropout_probabilities, seed=seeds)
def test_dropout_backward_matches_finite_differences(shape, p, seed):
    """A fresh layer with the same seed draws the same mask, so L(x) = Σ g ⊙ dropout(x) is
    a fixed linear function to differentiate numerically."""
    rng = np.random.default_rng(seed)
    x, g = rng.normal(size=shape), rng.normal(size=shape)
    layer = Dropout(p, seed=seed)
    layer.forward(x)
    grad = layer.backward(g)
    numeric = numerical_gradient(lambda: float(np.sum(Dropout(p, seed=seed).forward(x) * g)), x)
    assert rel_err(grad, numeric) < 1e-6


@given(shape=batch_shapes(), p=dropout_probabilities, seed=seeds,
       dtype=st.sampled_from([np.float32, np.float64]))
def test_dropout_matches_torch_with_the_same_mask(shape, p, seed, dtype):
    """torch draws its own masks, so the comparison applies our mask in torch (x ⊙ m) and
    checks, separately, that torch's own dropout scales survivors by the same 1/(1-p)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x, g = rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)
    layer = Dropout(p, seed=seed)
    y = layer.forward(x)
    gx = layer.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    mask = np.ones_like(x) if layer.mask is None else layer.mask  # None: p = 0, the identity
    yt = xt * torch.from_numpy(mask)
    yt.backward(torch.from_numpy(g))
    tol = 1e-6 if dtype == np.float32 else 1e-15
    assert rel_err(y, yt.detach().numpy()) < tol
    assert rel_err(gx, xt.grad.numpy()) < tol
    theirs = torch.nn.functional.dropout(torch.from_numpy(x), p, training=True).numpy()
    kept = theirs != 0
    np.testing.assert_allclose(theirs[kept], (x[kept] / np.asarray(1 - p, dtype)).astype(dtype), rtol=tol)


def test_jacobian_in_training_is_the_diagonal_of_the_mask_backward_then_agrees():
    layer = Dropout(0.4, seed=2)
    x = np.arange(1.0, 7.0)
    jac = layer.jacobian(x)["input"]
    np.testing.assert_array_equal(jac, np.diag(layer.mask.ravel()))
    g = np.random.default_rng(0).normal(size=(1, 6))
    np.testing.assert_array_equal(layer.backward(g)[0], g[0] @ jac)
    assert set(np.diag(jac)) <= {0.0, 1 / 0.6}


def test_dropout_in_a_model_and_repr():
    model = Sequential(Linear(4, 3, dtype=np.float64), Dropout(0.25))
    assert model.parameters() == model[0].parameters()
    assert "p=0.25" in repr(model)
    model.eval()
    x = np.ones((2, 4))
    np.testing.assert_array_equal(model.forward(x), model[0].forward(x))


# -- penalties ----------------------------------------------------------------------
def params_of(shapes, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.normal(size=s).astype(dtype)) for s in shapes]
    for p in params:
        p.grad[...] = rng.normal(size=p.shape)
    return params


param_shapes = st.lists(st.one_of(st.tuples(st.integers(1, 4)), st.tuples(st.integers(1, 4), st.integers(1, 4)),
                                  st.tuples(*[st.integers(1, 3)] * 4)), min_size=1, max_size=4)


@given(shapes=param_shapes, seed=seeds, l1=st.sampled_from([0.0, 1e-3, 0.5]),
       l2=st.sampled_from([0.0, 1e-4, 0.3]), include_bias=st.booleans())
def test_penalty_value_and_gradient_match_torch_autograd(shapes, seed, l1, l2, include_bias):
    torch = pytest.importorskip("torch")
    params = params_of(shapes, seed)
    before = [p.grad.copy() for p in params]
    reg = Penalty(l1=l1, l2=l2, include_bias=include_bias)
    value = reg.penalty(params)
    reg.backward(params)
    tensors = [torch.tensor(p.data, requires_grad=True) for p in params]
    chosen = [t for t in tensors if include_bias or t.ndim >= 2]
    total = sum(l1 * t.abs().sum() + l2 * (t ** 2).sum() for t in chosen) if chosen else torch.tensor(0.0)
    if chosen:
        total.backward()
    assert value == pytest.approx(float(total.detach()), rel=1e-14, abs=1e-300)
    for p, b, t in zip(params, before, tensors, strict=True):
        added = np.zeros_like(b) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(p.grad - b, added, rtol=1e-14, atol=1e-15)


@given(shapes=param_shapes, seed=seeds)
def test_penalty_gradient_matches_finite_differences(shapes, seed):
    params = params_of(shapes, seed)
    for p in params:  # keep |θ| well away from the kink of |θ| at 0
        p.data[np.abs(p.data) < 1e-3] = 0.5
    reg = Penalty(l1=0.3, l2=0.7, include_bias=True)
    for p in params:
        p.zero_grad()
    reg.backward(params)
    for p in params:
        assert rel_err(p.grad, numerical_gradient(lambda: reg.penalty(params), p.data)) < 1e-6


def test_by_hand_weights_only_and_sign_zero():
    w = Parameter(np.array([[1.0, -2.0], [0.0, 3.0]]))
    b = Parameter(np.array([5.0, -5.0]))
    reg = Penalty(l1=0.1, l2=0.01)
    assert reg.penalty([w, b]) == pytest.approx(0.1 * 6 + 0.01 * 14)
    reg.backward([w, b])
    np.testing.assert_allclose(w.grad, 0.1 * np.array([[1, -1], [0, 1]]) + 0.02 * w.data)
    np.testing.assert_array_equal(b.grad, 0)  # biases (ndim 1) are not penalised by default
    assert L1Penalty(0.1).penalty([w, b]) == pytest.approx(0.6)
    assert L2Penalty(0.01, include_bias=True).penalty([w, b]) == pytest.approx(0.01 * 64)
    assert Penalty(l2=1.0).penalty(Sequential(Linear(2, 2, dtype=np.float64))) > 0  # a Module works


def test_l2_penalty_of_half_lambda_equals_sgd_weight_decay():
    p1, p2 = params_of([(3, 4)], 0), params_of([(3, 4)], 0)
    SGD(p1, lr=0.1, weight_decay=0.02).step()
    L2Penalty(0.01).backward(p2)
    SGD(p2, lr=0.1).step()
    np.testing.assert_allclose(p1[0].data, p2[0].data, rtol=1e-15)


def test_float32_penalty_keeps_dtype_and_sums_accurately():
    p = Parameter(np.full((1000, 1000), 0.1, dtype=np.float32))
    reg = Penalty(l1=1.0, l2=1.0)
    assert reg.penalty([p]) == pytest.approx(1e6 * (float(np.float32(0.1)) + float(np.float32(0.1)) ** 2), rel=1e-12)
    reg.backward([p])
    assert p.grad.dtype == np.float32


@pytest.mark.parametrize("kwargs", [dict(l1=-1.0), dict(l2=float("nan")), dict(l2=float("inf"))])
def test_bad_penalty_arguments_raise(kwargs):
    with pytest.raises(ValueError, match="must be finite and non-negative"):
        Penalty(**kwargs)
    with pytest.raises(TypeError, match="expected Parameters"):
        Penalty(l1=1.0).penalty([np.ones(3)])


def test_fit_with_a_penalty_shrinks_the_weights():
    from tinygrad_mnist.data import Dataset
    from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
    from tinygrad_mnist.train import fit

    rng = np.random.default_rng(0)
    data = Dataset(rng.integers(0, 256, (64, 3, 3), dtype=np.uint8), rng.integers(0, 3, 64), "tiny", 3)
    norms = []
    for reg in (None, Penalty(l2=0.05)):
        model = Sequential(Linear(9, 3, seed=1))
        fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.5), data, epochs=5,
            batch_size=16, regularizer=reg, progress=False)
        norms.append(np.linalg.norm(model[0].weight.data))
    assert norms[1] < 0.9 * norms[0]


def test_dropout_mask_function():
    m = dropout_mask((1000,), 0.3, np.random.default_rng(0), np.float32)
    assert m.dtype == np.float32 and set(np.unique(m)) == {0.0, np.float32(1 / 0.7)}


# -- the experiment (quick mode) -------------------------------------------------------
def test_mlp_dropout_adam_experiment_quick_mode_writes_its_results(tmp_path):
    """experiments/studies/mlp/mlp_dropout_adam.py --quick on real MNIST when it is here, else on the
    bundled 8x8 digits; checks every written file against the run."""
    import json

    from experiments.studies.mlp.mlp_dropout_adam import Config, layers, main

    from .conftest import mnist_dir

    data = mnist_dir()
    epochs = 2 if data is not None else 6  # 1,437 digits make fewer steps per epoch
    argv = ["--quick", "--out", str(tmp_path), "--epochs", str(epochs)]
    argv += ["--data-dir", str(data)] if data is not None else ["--dataset", "digits"]
    assert main(argv) == 0
    out = tmp_path / "mlp_dropout_adam"
    for name in ("config.json", "history.json", "metrics.json", "epochs.md", "epochs.csv",
                 "summary.md", "summary.csv", "learning_curves.png"):
        assert (out / name).stat().st_size > 0, name
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [128] and config["epochs"] == epochs and config["dropout"] == 0.3
    history = json.loads((out / "history.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(history["test_accuracy"]) == epochs == metrics["epochs"]
    assert metrics["test_accuracy"] == history["test_accuracy"][-1] > 0.5  # well above chance
    assert len((out / "epochs.csv").read_text().strip().splitlines()) == epochs + 1
    assert f"{100 * metrics['test_accuracy']:.2f}" in (out / "summary.md").read_text()
    kinds = [d.kind for d in layers(Config(), 784, 10)]
    assert kinds == ["linear", "activation", "dropout", "linear", "activation", "dropout", "linear"]
