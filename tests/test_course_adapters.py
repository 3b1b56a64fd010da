"""The course templates filled in by the engine (experiments/course/): each formula, each
error, and training that ends bit for bit where the engine's own training path ends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.course.ift6135 import NN, arrays
from experiments.course.template_mlp import TemplateMLP, train
from tinygrad_mnist.checkpoint import load
from tinygrad_mnist.cli.main import main as cli_main
from tinygrad_mnist.models import CLASSIC_MLP, MLPSpec, build, build_mlp
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
from tinygrad_mnist.optim import SGD
from tinygrad_mnist.train import evaluate, fit

from .conftest import mnist_dir


def batch(rng, n, n_in=784, classes=10, dtype=np.float64):
    return rng.uniform(0, 1, size=(n, n_in)).astype(dtype), rng.integers(0, classes, size=n)


def softmax_rows(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- TemplateMLP: the 784-64-10 project's reset_grad / forward / update_grad / update_params ------
@pytest.mark.slow
def test_template_mlp_ends_bit_for_bit_where_the_cli_training_ends(mnist, tmp_path):
    """Same seed, data order, batch 256, lr 0.001, 2 epochs on the first 2,000 images: the same
    modules and the same operations in the same order, so np.array_equal, not a tolerance."""
    train_set, test_set = mnist
    out = tmp_path / "cli"
    status = cli_main(["train", "--data-dir", str(mnist_dir()), "--no-download", "--train-size", "2000",
                       "--epochs", "2", "--seed", "0", "--out", str(out), "--no-figure", "--quiet"])
    assert status == 0
    cli_weights = load(out / "model.npz").model.state_dict()
    cli_history = json.loads((out / "history.json").read_text())

    net = TemplateMLP(seed=0)
    losses = train(net, train_set.first(2000), epochs=2, batch_size=256, lr=0.001, seed=0)
    for name, ours in zip(["0.weight", "0.bias", "2.weight", "2.bias"], [net.W1, net.b1, net.W2, net.b2],
                          strict=True):
        assert np.array_equal(ours, cli_weights[name]), name
    assert losses == pytest.approx(cli_history["train_loss"], rel=1e-12)
    acc = net.accuracy(test_set)
    assert acc == pytest.approx(cli_history["test_accuracy"][-1], abs=1e-12)
    assert 0.3 < acc < 1.0  # it learned something: equality of two untrained nets would prove little


def test_template_mlp_starts_from_the_cli_model():
    net = TemplateMLP(seed=3)
    engine = build_mlp(CLASSIC_MLP, seed=3, needs_input_grad=False)
    for ours, theirs in zip(net.model.parameters(), engine.parameters(), strict=True):
        assert np.array_equal(ours.data, theirs.data)
    assert (net.W1.shape, net.b1.shape, net.W2.shape, net.b2.shape) == ((64, 784), (64,), (10, 64), (10,))
    assert net.W1.dtype == np.float32
    assert abs(net.W1.std() - 0.1) < 0.002 and abs(net.W1.mean()) < 0.002  # N(0, 0.1²), 50,176 draws
    assert not net.b1.any() and not net.b2.any()
    assert np.shares_memory(net.W1, net.model[0].weight.data)
    assert np.shares_memory(net.b2_grad, net.model[2].bias.grad)


def test_template_forward_and_update_grad_follow_the_formulas(rng):
    """float64: every stored intermediate and accumulated gradient against its textbook formula."""
    net = TemplateMLP(seed=1, dtype=np.float64)
    x, y = batch(rng, 32)
    Y = np.eye(10)[y]
    net.reset_grad()
    y_hat = net.forward(x, y)
    a1 = x @ net.W1.T + net.b1
    f1 = 1 / (1 + np.exp(-a1))
    a2 = f1 @ net.W2.T + net.b2
    for ours, want in [(net.a1, a1), (net.f1, f1), (net.a2, a2), (y_hat, softmax_rows(a2))]:
        np.testing.assert_allclose(ours, want, rtol=1e-13, atol=1e-15)
    loss = net.update_grad()  # labels from forward(x, y), as the assignment calls it
    assert loss == pytest.approx(-(Y * np.log(softmax_rows(a2))).sum(), rel=1e-13)
    g2 = softmax_rows(a2) - Y  # ∂L/∂a2 = ŷ − y, summed loss: no 1/n
    g1 = (g2 @ net.W2) * f1 * (1 - f1)
    want = {"W2_grad": g2.T @ f1, "b2_grad": g2.sum(0), "W1_grad": g1.T @ x, "b1_grad": g1.sum(0)}
    for name, value in want.items():
        np.testing.assert_allclose(getattr(net, name), value, rtol=1e-12, atol=1e-14 * np.abs(value).max())
    net.forward(x)
    net.update_grad(y)  # accumulates over batches (+=) until reset_grad
    for name, value in want.items():
        np.testing.assert_allclose(getattr(net, name), 2 * value, rtol=1e-12, atol=1e-13 * np.abs(value).max())
    before = {k: getattr(net, k).copy() for k in ("W1", "b1", "W2", "b2")}
    net.update_params(0.01)
    for k, value in before.items():
        np.testing.assert_array_equal(getattr(net, k), value - 0.01 * getattr(net, f"{k}_grad"))
    net.reset_grad()
    assert not any(getattr(net, k).any() for k in ("W1_grad", "b1_grad", "W2_grad", "b2_grad"))


def test_template_mlp_rejects_bad_calls(rng):
    net = TemplateMLP()
    with pytest.raises(ValueError, match="forward"):
        net.update_grad(np.zeros(4, dtype=np.int64))
    x, y = batch(rng, 4, dtype=np.float32)
    with pytest.raises(ValueError, match="784"):
        net.forward(x[:, :100])
    net.forward(x)
    with pytest.raises(ValueError, match="no labels"):
        net.update_grad()
    with pytest.raises(ValueError, match=r"expected 4 integer labels"):
        net.update_grad(y[:3])
    for lr in (0, -0.1, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="lr must be a positive finite number"):
            net.update_params(lr)
    with pytest.raises(ValueError, match="epochs"):
        train(net, _tiny_dataset(rng), epochs=0)
    with pytest.raises(TypeError, match="Dataset"):
        train(net, (x, y))


def _tiny_dataset(rng, n=8):
    from tinygrad_mnist.data import Dataset

    return Dataset(rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n), "tiny")


# -- IFT6135's NN: initialize_weights, activations, forward, backward, loss, update, train_loop ----
def test_nn_default_size_is_within_the_assignment_range():
    nn = NN()
    nn.initialize_weights([784, 10])
    assert nn.num_parameters() == 669_706 == MLPSpec((784, 512, 512, 10)).num_parameters()
    assert 500_000 <= nn.num_parameters() <= 1_000_000
    shapes = {k: v.shape for k, v in nn.weights.items()}
    assert shapes == {"W1": (784, 512), "b1": (1, 512), "W2": (512, 512), "b2": (1, 512), "W3": (512, 10),
                      "b3": (1, 10)}
    assert all(np.shares_memory(nn.weights[f"W{i + 1}"], lin.weight.data) for i, lin in enumerate(nn.linears))


def test_nn_initializations_are_the_assignments():
    for method in ("zero", "normal", "glorot"):
        nn = NN(init_method=method, seed=2)
        nn.initialize_weights([784, 10])
        assert not any(nn.weights[f"b{i}"].any() for i in (1, 2, 3))
        w = [nn.weights[f"W{i}"] for i in (1, 2, 3)]
        if method == "zero":
            assert not any(m.any() for m in w)
        elif method == "normal":  # N(0, 1): 401,408 draws in W1
            assert abs(w[0].std() - 1) < 0.01 and abs(w[0].mean()) < 0.01
        else:  # U(−d, d), d = √(6 / (h_{l−1} + h_l)): std d/√3
            for m, (h0, h1) in zip(w, [(784, 512), (512, 512), (512, 10)], strict=True):
                d = np.sqrt(6 / (h0 + h1))
                assert 0.99 * d < np.abs(m).max() <= d
                assert abs(m.std() - d / np.sqrt(3)) < 0.02 * d
    a, b = NN(seed=5), NN(seed=5)
    a.initialize_weights([784, 10])
    b.initialize_weights([784, 10])
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_nn_activations_and_derivatives_are_the_textbook_formulas(name):
    x = np.concatenate([np.linspace(-8, 8, 161), [0.0, -30.0, 30.0]])[None, :]
    textbook = {"relu": (np.maximum(x, 0), (x > 0).astype(float)),
                "sigmoid": (1 / (1 + np.exp(-x)), np.exp(-x) / (1 + np.exp(-x)) ** 2),
                "tanh": ((np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)), 4 / (np.exp(x) + np.exp(-x)) ** 2)}
    value, derivative = textbook[name]
    nn = NN(activation=name)
    for fn in (getattr(nn, name), nn.activation):
        np.testing.assert_allclose(fn(x), value, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(fn(x, grad=True), derivative, rtol=1e-12, atol=1e-15)
    h = 1e-6  # the derivative is the slope, away from ReLU's kink
    smooth = np.abs(x) > 1e-3
    central = (getattr(nn, name)(x + h) - getattr(nn, name)(x - h)) / (2 * h)
    np.testing.assert_allclose(nn.activation(x, grad=True)[smooth], central[smooth], rtol=1e-7, atol=1e-9)


def test_nn_softmax_and_loss_are_the_textbook_formulas(rng):
    nn = NN()
    z = rng.normal(size=(6, 10)) * 3
    s = nn.softmax(z)
    np.testing.assert_allclose(s, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(nn.softmax(z + 1000.0), s, rtol=1e-12)  # shift-invariant, no overflow
    Y = nn.one_hot(rng.integers(0, 10, size=6))
    p = s.copy()
    p[0, np.argmax(Y[0])] = 0.0  # clipped up to ε: a finite loss
    kept = p.copy()
    want = -(Y * np.log(np.clip(p, 1e-6, 1 - 1e-6))).sum() / 6
    assert nn.loss(p, Y) == pytest.approx(want, rel=1e-14)
    np.testing.assert_array_equal(p, kept)  # the caller's array is not clipped in place


def test_nn_rejects_bad_input_and_names_the_valid_choices(rng):
    with pytest.raises(ValueError, match=r"'gelu'.*relu.*sigmoid.*tanh"):
        NN(activation="gelu")
    with pytest.raises(ValueError, match=r"'xavier'.*zero.*normal.*glorot"):
        NN(init_method="xavier")
    for bad in ({"lr": 0}, {"lr": float("nan")}, {"batch_size": 0}, {"batch_size": 2.5}, {"epsilon": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            NN(**bad)
    nn = NN(hidden_dims=(8,))
    with pytest.raises(ValueError, match="initialize_weights"):
        nn.forward(np.zeros((2, 784)))
    nn.initialize_weights([784, 10])
    nn.activation_str = "softplus"
    with pytest.raises(ValueError, match=r"'softplus'.*relu.*sigmoid.*tanh"):
        nn.activation(np.zeros(3))
    nn.activation_str = "relu"
    with pytest.raises(ValueError, match=r"\(n, 784\)"):
        nn.forward(np.zeros((2, 100)))
    with pytest.raises(TypeError, match="float64"):
        nn.forward(np.zeros((2, 784), dtype=np.float32))
    with pytest.raises(ValueError, match="no training data"):
        nn.train_loop(1)
    with pytest.raises(ValueError, match="no test data"):
        nn.evaluate()


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_nn_backward_equals_the_engine_and_finite_differences(name, rng):
    """(a) The grads dict against the engine model's own backward on the same weights, to
    float64 roundoff; then the largest entries of each dW, db against central differences."""
    nn = NN(activation=name, seed=4)
    nn.initialize_weights([784, 10])
    x, y = batch(rng, 8)
    Y = nn.one_hot(y)
    cache = nn.forward(x)
    grads = nn.backward(cache, Y)
    np.testing.assert_allclose(grads["dA3"], (cache["Z3"] - Y) / 8, rtol=1e-12, atol=1e-17)

    ce = SoftmaxCrossEntropy(reduction="mean")
    nn.model.zero_grad()
    ce.forward(nn.model.forward(x), y)
    nn.model.backward(ce.backward())
    for i, lin in enumerate(nn.linears, 1):
        np.testing.assert_allclose(grads[f"dW{i}"], lin.weight.grad.T, rtol=1e-12, atol=0)
        np.testing.assert_allclose(grads[f"db{i}"][0], lin.bias.grad, rtol=1e-12, atol=0)

    h = 1e-5
    for key in ("W1", "b1", "W2", "b2", "W3", "b3"):
        theta, g = nn.weights[key], grads[f"d{key}"]
        for idx in np.argsort(np.abs(g), axis=None)[-2:]:
            at = np.unravel_index(idx, g.shape)
            old = theta[at]
            theta[at] = old + h
            up = nn.loss(nn.forward(x)["Z3"], Y)
            theta[at] = old - h
            down = nn.loss(nn.forward(x)["Z3"], Y)
            theta[at] = old
            assert (up - down) / (2 * h) == pytest.approx(g[at], rel=1e-6), (key, at)


@pytest.mark.slow
def test_nn_trains_bit_for_bit_like_the_engine(mnist):
    """(c) One epoch on 2,000 MNIST images, batches of 100 in order, lr 0.1: NN.train_loop and
    the engine's fit (same seed, no shuffling) do the same operations, so equal weights."""
    train_set, test_set = mnist
    sub, held = train_set.first(2000), test_set.first(2000)
    nn = NN(train=arrays(sub), test=arrays(held), lr=0.1, batch_size=100, seed=0)
    logs = nn.train_loop(1)
    _, acc = nn.evaluate()

    spec = MLPSpec((784, 512, 512, 10), "relu", "logits", "glorot_uniform")
    model = build(spec.layers(), seed=0, dtype=np.float64, init="glorot_uniform")
    loss = SoftmaxCrossEntropy(reduction="mean")
    fit(model, loss, SGD(model.parameters(), lr=0.1), sub, epochs=1, batch_size=100, shuffle=False)
    for ours, theirs in zip(nn.model.parameters(), model.parameters(), strict=True):
        assert np.array_equal(ours.data, theirs.data)
    _, engine_acc = evaluate(model, loss, held)
    assert acc == pytest.approx(engine_acc, abs=1e-12)
    assert 0.5 < acc and logs["train_accuracy"][0] > 0.5
