"""The Module contract: registration, accumulation, modes, state, dtype and errors."""

import numpy as np
import pytest

from tinygrad_mnist import Linear, Parameter, ReLU, Sequential, Sigmoid, Softmax, Tanh
from tinygrad_mnist.nn.module import Module


def small_model(dtype=np.float64):
    return Sequential(Linear(4, 3, seed=0, dtype=dtype), Tanh(), Linear(3, 2, seed=1, dtype=dtype))


def test_parameters_are_found_in_assignment_order_with_torch_names():
    model = small_model()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.shape for p in model.parameters()] == [(3, 4), (3,), (2, 3), (2,)]
    assert model.num_parameters() == 4 * 3 + 3 + 3 * 2 + 2


def test_shared_parameter_is_listed_once():
    layer = Linear(3, 3, dtype=np.float64)
    model = Sequential(layer, Tanh(), layer)
    assert len(model.parameters()) == 2


def test_backward_accumulates_parameter_gradients_like_torch():
    model = small_model()
    x = np.random.default_rng(0).normal(size=(5, 4))
    g = np.ones((5, 2))
    model.forward(x)
    model.backward(g)
    first = [p.grad.copy() for p in model.parameters()]
    model.forward(x)
    model.backward(g)
    for p, g1 in zip(model.parameters(), first, strict=True):
        np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-12)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_train_eval_propagate_to_children():
    model = small_model()
    model.eval()
    assert not model.training and not any(m.training for m in model)
    model.train()
    assert model.training and all(m.training for m in model)


def test_state_dict_round_trip_and_copies():
    a, b = small_model(), Sequential(Linear(4, 3, seed=5, dtype=np.float64), Tanh(),
                                     Linear(3, 2, seed=6, dtype=np.float64))
    state = a.state_dict()
    state["0.weight"][0, 0] = 123.0  # a copy: the model is untouched
    assert a[0].weight.data[0, 0] != 123.0
    b.load_state_dict(a.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)


def test_load_state_dict_reports_missing_unexpected_and_shapes():
    model = small_model()
    state = model.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['0.bias'\].*unexpected keys \['extra'\]"):
        model.load_state_dict(state)
    bad = model.state_dict()
    bad["2.weight"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"2.weight expects shape \(2, 3\), got \(3, 2\)"):
        model.load_state_dict(bad)


def test_astype_converts_parameters_and_gradients():
    model = small_model(np.float32).astype(np.float64)
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())
    with pytest.raises(TypeError, match="float32 or float64"):
        model.astype(np.int32)


def test_dtype_is_the_first_parameter_in_parameters_order_and_follows_changes():
    class TwoParams(Module):
        def __init__(self):
            super().__init__()
            self.inner = Linear(2, 2, dtype=np.float64)   # a child, registered before ...
            self.own = Parameter(np.zeros(3, dtype=np.float32))   # ... the module's own

    assert Tanh().dtype is None and Sequential().dtype is None
    # own parameters come first in parameters(), so they decide, as the first one listed does
    assert TwoParams().dtype == TwoParams().parameters()[0].dtype == np.float32
    model = Sequential(Tanh(), Sequential(Sigmoid(), Linear(4, 3, dtype=np.float64)))
    assert model.dtype == np.float64   # found below parameter-free children
    layer = model[1][1]
    layer.weight.data = layer.weight.data.astype(np.float32)   # not cached: seen at once
    assert model.dtype == layer.dtype == np.float32


def test_mixed_dtypes_are_refused_not_silently_cast():
    model = small_model(np.float32)
    with pytest.raises(TypeError, match="Linear: input dtype float64 does not match parameter dtype float32"):
        model.forward(np.zeros((2, 4), dtype=np.float64))


@pytest.mark.parametrize("bad, exc, msg", [
    (np.zeros((2, 5)), ValueError, r"Linear: expected input of shape \(n, 4\), got shape \(2, 5\)"),
    (np.zeros(4), ValueError, r"Linear: expected a 2-d input, got shape \(4,\)"),
    (np.zeros((2, 4), dtype=np.int64), TypeError, "Linear: expected float32 or float64 input, got int64"),
    ([[0.0] * 4], TypeError, "Linear: expected a numpy ndarray, got list"),
])
def test_bad_input_names_layer_expected_and_received(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        Linear(4, 3, dtype=np.float64).forward(bad)


def test_backward_before_forward_and_wrong_grad_shape():
    layer = Linear(4, 3, dtype=np.float64)
    with pytest.raises(RuntimeError, match="Linear.backward called before forward"):
        layer.backward(np.zeros((2, 3)))
    layer.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"Linear.backward: expected grad_out of shape \(2, 3\)"):
        layer.backward(np.zeros((2, 4)))


def test_cache_is_overwritten_not_grown():
    layer = Sigmoid()
    layer.forward(np.zeros((2, 3)))
    layer.forward(np.zeros((5, 3)))
    assert layer.cache.y.shape == (5, 3)


def test_repr_lists_layers():
    text = repr(Sequential(Linear(784, 64), Sigmoid(), Linear(64, 10), Softmax()))
    assert "(0): Linear(in_features=784, out_features=64, bias=True)" in text
    assert "(3): Softmax()" in text


def test_sequential_rejects_non_modules_and_supports_indexing():
    with pytest.raises(TypeError, match="Sequential: item 1 is int, not a Module"):
        Sequential(ReLU(), 3)
    model = small_model()
    assert isinstance(model[1], Tanh) and len(model) == 3


def test_module_without_super_init_gets_a_clear_error():
    class Broken(Module):
        def __init__(self):
            self.w = Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match="call super\\(\\).__init__\\(\\)"):
        Broken()


def test_parameter_rejects_integer_data():
    with pytest.raises(TypeError, match="float32 or float64"):
        Parameter(np.zeros(3, dtype=np.int64))


def test_first_layer_can_skip_the_input_gradient_with_identical_parameter_gradients():
    x = np.random.default_rng(0).normal(size=(5, 4))
    g = np.random.default_rng(1).normal(size=(5, 2))
    full, lean = small_model(), small_model()
    lean[0].needs_input_grad = False
    full.forward(x)
    lean.forward(x)
    assert full.backward(g).shape == (5, 4)
    assert lean.backward(g) is None
    for p, q in zip(full.parameters(), lean.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad, q.grad)
    assert "needs_input_grad=False" in repr(lean)


def test_cleared_gradient_is_written_directly_and_equals_the_reference_products():
    """zero_grad postpones its zeros; the Linear layer then writes Gᵀx straight into the
    gradient.  The numbers are linear_backward's, a second backward adds, and anything
    written through ``grad`` after zero_grad is kept."""
    from tinygrad_mnist.nn.linear import linear_backward
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, seed=0, dtype=np.float32)
    x, g = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    layer.forward(x)
    layer.backward(g)
    layer.backward(g)                                   # stale values left in the arrays
    layer.zero_grad()
    grad_x = layer.backward(g)                          # overwrites them, never reading grad
    ref_x, ref_w, ref_b = linear_backward(x, layer.weight.data, g)
    np.testing.assert_array_equal(grad_x, ref_x)
    np.testing.assert_array_equal(layer.weight.grad, ref_w)
    np.testing.assert_array_equal(layer.bias.grad, ref_b)
    layer.backward(g)
    np.testing.assert_allclose(layer.weight.grad, 2 * ref_w, rtol=1e-6)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()  # reading writes the zeros
    layer.zero_grad()
    layer.weight.grad += 1.0                             # e.g. a penalty added before backward
    layer.backward(g)
    np.testing.assert_allclose(layer.weight.grad, ref_w + 1.0, rtol=1e-6)
    p = Parameter(np.ones(3))
    p.grad += 2.0
    p.zero_grad()
    p.accumulate(np.arange(3.0))
    np.testing.assert_array_equal(p.grad, [0.0, 1.0, 2.0])
