"""The weight bridge numpy <-> torch: exact round trips, clear errors, mirrored maths.

After copying weights, a numpy model and its torch twin must compute the same logits,
loss and gradients (numpy ``backward`` against torch autograd).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.models import CourseCNNSpec, MLPSpec, build_mlp
from tinygrad_mnist.models import build as build_numpy
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.losses import CrossEntropy, SoftmaxCrossEntropy
from tinygrad_mnist.nn.module import Module, Parameter, Sequential

from .strategies import activation_names, mlp_shapes, seeds

torch = pytest.importorskip("torch")
from torch_baselines import bridge, models  # noqa: E402
from torch_baselines.train import ProbabilityCrossEntropy  # noqa: E402

DTYPES = [(np.float32, torch.float32), (np.float64, torch.float64)]


def _torch_randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype))
    return model


def _np_state(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


# -- round trips ----------------------------------------------------------------------
@pytest.mark.parametrize("np_dtype,t_dtype", DTYPES)
@pytest.mark.parametrize("spec", [MLPSpec((784, 64, 10), "sigmoid", "softmax", "normal", {"std": 0.1}),
                                  MLPSpec((20, 7, 5, 3), "relu", "logits", "he_normal")])
def test_numpy_to_torch_to_numpy_is_bit_exact(spec, np_dtype, t_dtype):
    np_model = build_mlp(spec, seed=3, dtype=np_dtype)
    original = _np_state(np_model)
    t_model = models.build_mlp(spec, seed=99, dtype=t_dtype)
    bridge.numpy_to_torch(np_model, t_model)
    for (name, value), (t_name, tensor) in zip(original.items(), t_model.state_dict().items(), strict=True):
        assert name == t_name
        assert np.array_equal(tensor.numpy(), value), name
    # scramble the numpy side, copy back, and recover the original bits
    other = build_mlp(spec, seed=4, dtype=np_dtype)
    assert not np.array_equal(other.state_dict()["0.weight"], original["0.weight"])
    arrays_before = [p.data for p in other.parameters()]
    bridge.torch_to_numpy(t_model, other)
    for name, value in other.state_dict().items():
        assert value.dtype == np_dtype
        assert np.array_equal(value, original[name]), name
    # copied in place: an optimiser holding the arrays keeps seeing the model's weights
    assert all(a is p.data for a, p in zip(arrays_before, other.parameters(), strict=True))


@pytest.mark.parametrize("np_dtype,t_dtype", DTYPES)
def test_torch_to_numpy_to_torch_is_bit_exact(np_dtype, t_dtype):
    spec = MLPSpec((12, 9, 4), "tanh")
    t_model = _torch_randomise(models.build_mlp(spec, dtype=t_dtype), seed=5)
    reference = {k: v.clone() for k, v in t_model.state_dict().items()}
    np_model = bridge.torch_to_numpy(t_model, build_mlp(spec, dtype=np_dtype))
    fresh = models.build_mlp(spec, seed=1, dtype=t_dtype)
    bridge.numpy_to_torch(np_model, fresh)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, reference[k]), k


class _NumpyBatchNormLike(Module):
    """A stand-in with the numpy BatchNorm's state layout: weight, bias and two buffers."""

    def __init__(self, n, dtype=np.float64):
        super().__init__()
        self.weight = Parameter(np.ones(n, dtype=dtype))
        self.bias = Parameter(np.zeros(n, dtype=dtype))
        self.running_mean = np.zeros(n, dtype=dtype)
        self.running_var = np.ones(n, dtype=dtype)

    def _buffer_names(self):
        return ("running_mean", "running_var")


@pytest.mark.parametrize("np_dtype,t_dtype", DTYPES)
def test_buffers_running_statistics_copy_both_ways(np_dtype, t_dtype):
    np_model = Sequential(Linear(5, 4, dtype=np_dtype), _NumpyBatchNormLike(4, np_dtype))
    t_model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4)).to(t_dtype)
    _torch_randomise(t_model, seed=8)
    t_model[1].num_batches_tracked.fill_(7)
    bridge.torch_to_numpy(t_model, np_model)
    assert np.array_equal(np_model[1].running_mean, t_model[1].running_mean.numpy())
    assert np.array_equal(np_model[1].running_var, t_model[1].running_var.numpy())
    np_model[1].running_mean[...] = np.arange(4)
    bridge.numpy_to_torch(np_model, t_model)
    assert np.array_equal(t_model[1].running_mean.numpy(), np.arange(4, dtype=np_dtype))
    assert int(t_model[1].num_batches_tracked) == 7  # torch-only counter left alone


def test_complex_mlp_bridges_with_the_numpy_batchnorm():
    np_model = build_numpy(models.complex_mlp_layers(), seed=0, dtype=np.float64)
    t_model = _torch_randomise(models.ComplexMLP().double(), seed=2)
    with torch.no_grad():
        t_model[1].running_var.abs_()
        t_model[5].running_var.abs_()
    bridge.torch_to_numpy(t_model, np_model)
    x = np.random.default_rng(0).normal(size=(6, 64))
    np_model.eval()
    t_model.eval()
    np.testing.assert_allclose(np_model.forward(x), t_model(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-12)


# -- mismatches fail loudly -------------------------------------------------------------
def test_shape_mismatch_names_the_pair():
    np_model = build_mlp(MLPSpec((6, 5, 3)))
    t_model = models.build_mlp(MLPSpec((6, 4, 3)))
    with pytest.raises(ValueError, match=r"#0: numpy '0.weight' \(5, 6\) vs torch '0.weight' \(4, 6\).*shapes differ"):
        bridge.numpy_to_torch(np_model, t_model)


def test_count_mismatch_is_reported():
    with pytest.raises(ValueError, match="numpy model has 4 parameters.*torch model 6"):
        bridge.numpy_to_torch(build_mlp(MLPSpec((6, 5, 3))), models.build_mlp(MLPSpec((6, 5, 5, 3))))


def test_role_mismatch_is_reported():
    np_model = Sequential(Linear(4, 4, bias=False), Linear(4, 4))
    t_model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4, bias=False))
    with pytest.raises(ValueError, match=r"#1: .*roles differ \('weight' vs 'bias'\)"):
        bridge.torch_to_numpy(t_model, np_model)


def test_dtype_mismatch_is_an_error_not_a_silent_cast():
    with pytest.raises(TypeError, match="dtypes differ"):
        bridge.numpy_to_torch(build_mlp(MLPSpec((6, 3)), dtype=np.float32),
                              models.build_mlp(MLPSpec((6, 3)), dtype=torch.float64))


def test_wrong_argument_types():
    with pytest.raises(TypeError, match="tinygrad_mnist Module first"):
        bridge.numpy_to_torch(models.build_mlp(MLPSpec((6, 3))), models.build_mlp(MLPSpec((6, 3))))


# -- mirrored maths: same logits, loss and gradients -----------------------------------
def _compare_mirrored(np_model, t_model, np_loss, t_loss, x, y, rtol, atol):
    bridge.numpy_to_torch(np_model, t_model)
    out = np_model.forward(x)
    value = np_loss.forward(out, y)
    np_model.zero_grad()
    grad_x = np_model.backward(np_loss.backward())

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = t_model(xt)
    value_t = t_loss(out_t, torch.from_numpy(y))
    value_t.backward()

    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(value, value_t.item(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=rtol, atol=atol)
    pairs = bridge.pair_parameters(np_model, t_model)
    assert pairs, "no parameters were compared"
    for pair in pairs:
        np.testing.assert_allclose(pair.numpy_param.grad, pair.torch_tensor.grad.numpy(),
                                   rtol=rtol, atol=atol, err_msg=pair.numpy_name)


@given(sizes=mlp_shapes(max_layers=3, max_width=7), act=activation_names, seed=seeds,
       output=st.sampled_from(["logits", "softmax"]), n=st.integers(1, 5))
def test_mirrored_mlp_same_logits_and_gradients_float64(sizes, act, seed, output, n):
    sizes = (sizes[0], *sizes[1:-1], max(2, sizes[-1]))  # at least two classes
    spec = MLPSpec(sizes, act, output, "glorot_uniform")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    np_loss, t_loss = ((SoftmaxCrossEntropy(), torch.nn.CrossEntropyLoss()) if output == "logits"
                       else (CrossEntropy(), ProbabilityCrossEntropy()))
    _compare_mirrored(build_mlp(spec, seed=seed, dtype=np.float64), models.build_mlp(spec, dtype=torch.float64),
                      np_loss, t_loss, x, y, rtol=1e-9, atol=1e-12)


def test_mirrored_classic_mlp_float32_matches_within_float32_tolerance():
    spec = MLPSpec((784, 64, 10), "sigmoid", "softmax", "normal", {"std": 0.1})
    rng = np.random.default_rng(0)
    x = rng.random((32, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=32)
    _compare_mirrored(build_mlp(spec, dtype=np.float32), models.build_mlp(spec), CrossEntropy(reduction="sum"),
                      ProbabilityCrossEntropy(reduction="sum"), x, y, rtol=1e-5, atol=1e-6)


# -- the course CNN ---------------------------------------------------------------------
@pytest.mark.parametrize("spec", [CourseCNNSpec(), CourseCNNSpec("tanh", pool_first=True),
                                  CourseCNNSpec("sigmoid", residual_depth=2), CourseCNNSpec(residual_depth=3)],
                         ids=["relu", "tanh-pool-first", "sigmoid-residual2", "relu-residual3"])
def test_course_cnn_numpy_and_torch_agree(spec):
    np_model = build_numpy(spec.layers(), seed=0, dtype=np.float64)
    t_model = models.build_course_cnn(spec, seed=1, dtype=torch.float64)
    rng = np.random.default_rng(2)
    x = rng.random((3, 1, 28, 28))
    y = rng.integers(0, 10, size=3)
    _compare_mirrored(np_model, t_model, SoftmaxCrossEntropy(), torch.nn.CrossEntropyLoss(), x, y,
                      rtol=1e-9, atol=1e-11)
    # and back: torch weights into a fresh numpy model give the torch logits
    t_other = _torch_randomise(models.build_course_cnn(spec, dtype=torch.float64), seed=3)
    with torch.no_grad():
        for p in t_other.parameters():
            p.mul_(0.1)
    np_other = bridge.torch_to_numpy(t_other, build_numpy(spec.layers(), seed=5, dtype=np.float64))
    np.testing.assert_allclose(np_other.forward(x), t_other(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-11)
