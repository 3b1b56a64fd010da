"""Explicit Jacobians: their structure, backward = gᵀJ, finite differences, the chain rule.

Every property runs over every case of ``tests/zoo_cases.py`` (float64).  Tolerances:
identities that hold exactly in real arithmetic (gᵀJ = backward, linearity, literal chain
= fast chain) are checked to 1e-12 relative (rounding only); comparisons with central
differences (ε = 1e-6) to 1e-6 relative, the scale of their truncation + rounding error.
Relative error = max |a − b| / max(max |a|, max |b|), see ``tinygrad_mnist.check.gradcheck``.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_mnist.check.chain import multiply_out
from tinygrad_mnist.check.gradcheck import (
    check_jacobian,
    check_loss,
    check_module,
    noise_floor,
    numerical_jacobian,
    relative_error,
)
from tinygrad_mnist.nn.activations import ReLU, Sigmoid, Softmax, Tanh, softmax
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
from tinygrad_mnist.nn.module import Sequential

from .error_scales import record, term_magnitudes, worst_summary
from .strategies import batches, chain_specs, float_arrays, seeds
from .zoo_cases import LOSS_ZOO, PER_EXAMPLE_ZOO, ZOO, given_case_data, make_mlp

EXACT = 1e-12   # identities: only rounding separates the two sides
FD_TOL = 1e-6   # central differences, ε = 1e-6, float64
ACTS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


@pytest.fixture(scope="module", autouse=True)
def _print_worst_errors():
    yield
    print("\n" + worst_summary())


def _build(case, data, fd: bool = False, dtype=np.float64):
    module = case.build(data.draw(seeds, label="seed"), dtype)
    x = data.draw(case.finite_difference_inputs(dtype) if fd else case.inputs(dtype), label="x")
    return module, x


def _grads(module):
    return {name: p.grad.copy() for name, p in module.named_parameters()}


def _magnitude(module, x, g_abs):
    """Σ_n |g_n|ᵀ |J(x_n)| per result (see ``term_magnitudes``): identities are checked to
    EXACT relative to the size of the terms, since the result itself may cancel to ~0
    (softmax under a constant g) and keep only rounding noise of the terms' size."""
    return {name: max(v, 1e-300) for name, v in term_magnitudes(module, x, g_abs).items()}


def _assert_identity(a, b, magnitude, what=""):
    err = np.abs(np.asarray(a) - np.asarray(b)).max(initial=0)
    assert err <= EXACT * magnitude, f"{what}: |a - b| = {err:.3e} > {EXACT:g} x {magnitude:.3e}"


# -- the documented structure ------------------------------------------------------------
@given(x=batches((3,), n=st.just(1)), seed=seeds)
def test_linear_jacobian_is_W_and_kronecker_identity_x(x, seed):
    layer = Linear(3, 5, rng=np.random.default_rng(seed), dtype=np.float64)
    J = layer.jacobian(x[0])
    np.testing.assert_array_equal(J["input"], layer.weight.data)                   # ∂y/∂x = W
    np.testing.assert_array_equal(J["weight"], np.kron(np.eye(5), x[0][None, :]))  # I ⊗ xᵀ
    np.testing.assert_array_equal(J["bias"], np.eye(5))                            # ∂y/∂b = I
    # the Kronecker layout is "W flattened row-major": ∂y_i/∂W_ik = x_k, zero elsewhere
    np.testing.assert_array_equal(J["weight"].reshape(5, 5, 3)[2, 2], x[0])
    assert not J["weight"].reshape(5, 5, 3)[2, 1].any()


@given(z=batches((5,), low=-6, high=6, n=st.just(1)))
def test_softmax_jacobian_is_diag_s_minus_s_sT(z):
    s = softmax(z[0])
    J = Softmax().jacobian(z[0])["input"]
    np.testing.assert_allclose(J, np.diag(s) - np.outer(s, s), rtol=0, atol=1e-15)
    np.testing.assert_allclose(J, J.T, rtol=0, atol=0)
    np.testing.assert_allclose(J.sum(axis=1), 0, atol=1e-15)


@pytest.mark.parametrize("cls, derivative", [
    (Sigmoid, lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
    (Tanh, lambda x: 1 / np.cosh(x) ** 2),
    (ReLU, lambda x: (x > 0).astype(float)),
])
@given(x=batches((5,), low=-5, high=5, n=st.just(1)))
def test_elementwise_jacobians_are_diagonal_derivatives(cls, derivative, x):
    J = cls().jacobian(x[0])["input"]
    np.testing.assert_array_equal(J, np.diag(np.diag(J)))
    np.testing.assert_allclose(np.diag(J), derivative(x[0]), rtol=1e-12, atol=1e-15)


@given(z=batches((4,), low=-6, high=6, n=st.just(1)), label=st.integers(0, 3))
def test_softmax_cross_entropy_jacobian_is_yhat_minus_y(z, label):
    J = SoftmaxCrossEntropy().jacobian(z[0], label)["input"]
    assert J.shape == (1, 4)
    np.testing.assert_allclose(J[0], softmax(z[0]) - np.eye(4)[label], rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(z=batches((5,), low=-30, high=30), data=st.data())
def test_softmax_cross_entropy_labels_give_the_bits_of_the_general_form(dtype, reduction, z, data):
    """Labels take the short ŷ - y; the same targets as one-hot rows take ŷ Σ_c y_c - y."""
    z = z.astype(dtype)
    labels = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(z), max_size=len(z))))
    grad = data.draw(st.sampled_from([1.0, 0.37]))
    loss = SoftmaxCrossEntropy(reduction)
    value_labels, grad_labels = loss.forward(z, labels), loss.backward(grad)
    assert loss.cache.row_sums is None
    value_rows, grad_rows = loss.forward(z, np.eye(5, dtype=dtype)[labels]), loss.backward(grad)
    assert loss.cache.row_sums is not None
    assert value_labels == value_rows
    assert grad_labels.dtype == grad_rows.dtype == dtype
    np.testing.assert_array_equal(grad_labels, grad_rows)


# -- every module of the zoo -----------------------------------------------------------------
@pytest.mark.parametrize("case", PER_EXAMPLE_ZOO, ids=repr)
@given_case_data
def test_backward_equals_gT_J(case, data):
    """∂L/∂x_n = g_nᵀ J(x_n) and ∂L/∂θ = Σ_n g_nᵀ J_θ(x_n), from the explicit Jacobians."""
    module, x = _build(case, data)
    y = module.forward(x)
    g = data.draw(float_arrays(y.shape), label="g")
    module.zero_grad()
    grad_x, grads = module.backward(g), _grads(module)
    expected_x = np.empty_like(x)
    expected = {name: np.zeros_like(v) for name, v in grads.items()}
    for n in range(x.shape[0]):
        J = module.jacobian(x[n])
        gn = g[n].reshape(-1)
        expected_x[n] = (gn @ J["input"]).reshape(x.shape[1:])
        for name in expected:
            expected[name] += (gn @ J[name]).reshape(expected[name].shape)
    mag = _magnitude(module, x, np.abs(g))
    _assert_identity(grad_x, expected_x, mag["input"], "input")
    for name in grads:
        _assert_identity(grads[name], expected[name], mag[name], name)


@pytest.mark.parametrize("case", ZOO, ids=repr)
@given_case_data
def test_jacobian_matches_finite_differences(case, data):
    module, x = _build(case, data, fd=True)
    assume(case.fd_safe(module, x[:1]))
    report = check_jacobian(module, x[0], tol=FD_TOL)
    record("finite differences: jacobian", report.max_rel_error, case.name)
    assert report.passed, str(report)


@pytest.mark.parametrize("case", ZOO, ids=repr)
@given_case_data
def test_backward_matches_finite_differences(case, data):
    """The whole VJP on a batch, including anything that couples examples."""
    module, x = _build(case, data, fd=True)
    assume(case.fd_safe(module, x))
    g = data.draw(float_arrays(module.forward(x).shape), label="g")
    report = check_module(module, x, g, tol=FD_TOL)
    record("finite differences: backward", report.max_rel_error, case.name)
    assert report.passed, str(report)


@pytest.mark.parametrize("case", ZOO, ids=repr)
@given_case_data
def test_backward_is_linear_in_g(case, data):
    module, x = _build(case, data)
    a, b = data.draw(st.floats(-3, 3), label="a"), data.draw(st.floats(-3, 3), label="b")
    y = module.forward(x)
    g1 = data.draw(float_arrays(y.shape), label="g1")
    g2 = data.draw(float_arrays(y.shape), label="g2")
    results = []
    for g in (g1, g2, a * g1 + b * g2):
        module.zero_grad()
        module.forward(x)
        results.append((module.backward(g), _grads(module)))
    (x1, p1), (x2, p2), (x12, p12) = results
    if not case.batch_independent:
        mag = {k: 1.0 for k in ["input", *p12]}  # no per-example Jacobians: values are O(1)
    else:
        mag = _magnitude(module, x, abs(a) * np.abs(g1) + abs(b) * np.abs(g2))
    _assert_identity(x12, a * x1 + b * x2, mag["input"], "input")
    for name in p12:
        _assert_identity(p12[name], a * p1[name] + b * p2[name], mag[name], name)


@pytest.mark.parametrize("case", ZOO, ids=repr)
@given_case_data
def test_backward_accumulates_parameter_gradients(case, data):
    module, x = _build(case, data)
    y = module.forward(x)
    g = data.draw(float_arrays(y.shape), label="g")
    module.zero_grad()
    first_x = module.backward(g)
    once = _grads(module)
    second_x = module.backward(g)
    np.testing.assert_array_equal(first_x, second_x)
    for name, p in module.named_parameters():
        np.testing.assert_array_equal(p.grad, 2 * once[name])  # += , exactly


@pytest.mark.parametrize("case", ZOO, ids=repr)
@given_case_data
def test_forward_backward_jacobian_never_modify_their_inputs(case, data):
    module, x = _build(case, data)
    x_copy = x.copy()
    y = module.forward(x)
    y_copy = y.copy()
    g = data.draw(float_arrays(y.shape), label="g")
    g_copy = g.copy()
    module.backward(g)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(g, g_copy)
    np.testing.assert_array_equal(y, y_copy)   # the returned output is not reused as scratch
    if case.batch_independent:
        module.jacobian(x[0])
        np.testing.assert_array_equal(x, x_copy)


@pytest.mark.parametrize("case", PER_EXAMPLE_ZOO, ids=repr)
@given_case_data
def test_literal_jacobian_mode_equals_fast_mode(case, data):
    """Sequential.backward(mode="jacobian") = mode="vjp": input grads and += into grads."""
    module, x = _build(case, data)
    model = Sequential(module)
    y = model.forward(x)
    g = data.draw(float_arrays(y.shape), label="g")
    start = {name: data.draw(float_arrays(p.shape), label=f"grad {name}") for name, p in model.named_parameters()}
    results = {}
    for mode in ("vjp", "jacobian"):
        for name, p in model.named_parameters():
            p.grad[...] = start[name]
        model.forward(x)
        results[mode] = (model.backward(g, mode=mode), _grads(model))
    (fast_x, fast), (slow_x, slow) = results["vjp"], results["jacobian"]
    mag = _magnitude(model, x, np.abs(g))
    _assert_identity(slow_x, fast_x, mag["input"], "input")
    for name in fast:
        _assert_identity(slow[name], fast[name], mag[name] + np.abs(start[name]).max(initial=0), name)


# -- the chain rule ----------------------------------------------------------------------------
@given(spec=chain_specs(), seed=seeds, data=st.data())
def test_chain_rule_over_a_random_sequential(spec, seed, data):
    """J_model = J_L ⋯ J_1 and J_θk = J_L ⋯ J_{k+1} J_k^θ, each layer's J taken at its own
    input; the product equals finite differences of the whole model, Sequential.jacobian,
    and (applied to g) the fast backward."""
    sizes, act, softmax_out = spec
    model = make_mlp(sizes, ACTS[act], softmax_out, np.random.default_rng(seed), np.float64)
    x = data.draw(batches((sizes[0],), n=st.just(1)), label="x")
    if act == "relu":
        x = np.where(x >= 0, x + 0.01, x - 0.01)
        from .zoo_cases import relu_inputs_away_from_zero
        assume(relu_inputs_away_from_zero(model, x))
    # by hand: every layer's Jacobian at its own input
    h, per_layer = x[0], []
    for layer in model:
        per_layer.append(layer.jacobian(h))
        h = layer.forward(h[None])[0]
    product = reduce(lambda acc, J: acc @ J["input"], reversed(per_layer), np.eye(h.size))
    f = lambda: model.forward(x)[0]  # noqa: E731
    x_flat = x[0].copy()

    numeric = numerical_jacobian(lambda: model.forward(x_flat[None])[0], x_flat)
    floor = noise_floor(np.abs(model.forward(x)).max(), tol=FD_TOL)  # FD resolves nothing below it
    err = relative_error(product, numeric, floor)
    record("finite differences: chain rule", err, f"{sizes} {act}")
    assert err < FD_TOL
    explicit = model.jacobian(x[0])
    assert relative_error(explicit["input"], product) < EXACT
    for k, layer in enumerate(model):
        suffix = reduce(lambda acc, J: acc @ J["input"], reversed(per_layer[k + 1:]), np.eye(h.size))
        for name, p in layer.named_parameters():
            term = suffix @ per_layer[k][name]
            numeric_p = numerical_jacobian(f, p.data)
            err = relative_error(term, numeric_p, floor)
            record("finite differences: chain rule", err, f"{sizes} {act} {k}.{name}")
            assert err < FD_TOL, f"{k}.{name}"
            assert relative_error(explicit[f"{k}.{name}"], term) < EXACT
    # the fast backward applies the same matrices
    g = data.draw(float_arrays((1, h.size)), label="g")
    model.forward(x)
    model.zero_grad()
    _assert_identity(model.backward(g)[0], g[0] @ product, _magnitude(model, x, np.abs(g))["input"])
    assert set(multiply_out(model, per_layer)) == set(explicit)


@given(spec=chain_specs(), seed=seeds, data=st.data())
def test_literal_mode_on_random_batches_and_chains(spec, seed, data):
    sizes, act, softmax_out = spec
    model = make_mlp(sizes, ACTS[act], softmax_out, np.random.default_rng(seed), np.float64)
    x = data.draw(batches((sizes[0],)), label="x")
    y = model.forward(x)
    g = data.draw(float_arrays(y.shape), label="g")
    model.zero_grad()
    fast_x, fast = model.backward(g), _grads(model)
    model.zero_grad()
    slow_x, slow = model.backward(g, mode="jacobian"), _grads(model)
    mag = _magnitude(model, x, np.abs(g))
    _assert_identity(slow_x, fast_x, mag["input"], "input")
    for name in fast:
        _assert_identity(slow[name], fast[name], mag[name], name)


def test_literal_mode_needs_a_forward_and_a_matching_gradient():
    model = Sequential(Linear(3, 2, dtype=np.float64))
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones((1, 2)), mode="jacobian")
    model.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        model.backward(np.ones((3, 2)), mode="jacobian")
    with pytest.raises(ValueError, match="mode"):
        model.backward(np.ones((4, 2)), mode="literal")


# -- losses --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", LOSS_ZOO, ids=repr)
@given_case_data
def test_loss_gradient_matches_finite_differences(case, data):
    pred, target = data.draw(case.inputs(np.float64), label="pred, target")
    report = check_loss(case.make(), pred, target, tol=FD_TOL)
    record("finite differences: loss", report.max_rel_error, case.name)
    assert report.passed, str(report)


@pytest.mark.parametrize("case", LOSS_ZOO, ids=repr)
@given_case_data
def test_loss_jacobian_matches_finite_differences_and_backward(case, data):
    pred, target = data.draw(case.inputs(np.float64), label="pred, target")
    loss = case.make()
    report = check_jacobian(loss, pred[0], target[0], tol=FD_TOL)
    record("finite differences: loss jacobian", report.max_rel_error, case.name)
    assert report.passed, str(report)
    # one example's Jacobian row is the backward of a batch of one
    loss.forward(pred[:1], target[:1])
    np.testing.assert_array_equal(loss.jacobian(pred[0], target[0])["input"], loss.backward())


def test_plot_jacobian_draws_a_heatmap(tmp_path):
    pytest.importorskip("matplotlib")
    from tinygrad_mnist.plots import plot_jacobian

    J = Softmax().jacobian(np.array([0.5, -1.0, 2.0]))["input"]
    path = plot_jacobian(J, tmp_path / "softmax.png", title="diag(s) - s sᵀ")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    big = Linear(30, 20, dtype=np.float64).jacobian(np.ones(30))["weight"]   # (20, 600): no annotations
    assert plot_jacobian(big, tmp_path / "kron.png").stat().st_size > 0
    with pytest.raises(ValueError, match="2-d"):
        plot_jacobian(np.zeros((2, 2, 2)), tmp_path / "bad.png")
