"""The numpy course CNN and its variants, built from layer descriptions, against torch.

Every variant of ``CourseCNNSpec`` (activation relu/tanh/sigmoid, pool before the
activation, residual blocks of 2 and 3) is built twice from the same description, numpy
via ``tinygrad_mnist.models.build`` and torch via ``torch_baselines.models.build``, with the
numpy weights copied over; the logits, the loss, the input gradient and every parameter
gradient must agree: 1e-10 relative in float64 (only summation order differs, over up to
~1,500 terms in the classifier), 1e-5 in float32.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_mnist.check.gradcheck import check_model, relative_error
from tinygrad_mnist.models import KINDS, CourseCNNSpec, LayerDesc, build, build_course_cnn
from tinygrad_mnist.nn.activations import ReLU, Sigmoid, Tanh
from tinygrad_mnist.nn.conv import Conv2d
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
from tinygrad_mnist.nn.pool import AvgPool2d, MaxPool2d
from tinygrad_mnist.nn.reshape import Flatten

VARIANTS = [CourseCNNSpec(act, pool_first=pf, residual_depth=rd)
            for act in ("relu", "tanh", "sigmoid") for pf, rd in ((False, 0), (True, 0), (False, 2), (False, 3))]
IDS = [f"{s.activation}{'-pool-first' if s.pool_first else ''}"
       f"{f'-residual{s.residual_depth}' if s.residual_depth else ''}"
       for s in VARIANTS]
COUNTS = {0: 21_578, 2: 34_434, 3: 46_586}


def _mirror(spec, dtype):
    torch = pytest.importorskip("torch")
    from torch_baselines.bridge import numpy_to_torch
    from torch_baselines.models import build as torch_build

    model = build_course_cnn(spec, seed=3, dtype=dtype)
    for p in model.parameters():      # non-zero biases, so a bias mix-up cannot hide
        if p.data.ndim == 1:
            p.data[...] = np.random.default_rng(p.size).uniform(-0.1, 0.1, p.shape)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    return model, numpy_to_torch(model, torch_build(spec.layers(), dtype=tdtype))


def test_course_cnn_has_21578_parameters_in_torch_order():
    model = build_course_cnn()
    assert model.num_parameters() == 21_578
    assert [(n, p.shape) for n, p in model.named_parameters()] == [
        ("0.weight", (8, 1, 3, 3)), ("0.bias", (8,)), ("3.weight", (16, 8, 3, 3)), ("3.bias", (16,)),
        ("6.weight", (32, 16, 3, 3)), ("6.bias", (32,)), ("9.weight", (10, 1568)), ("9.bias", (10,))]
    assert [type(m) for m in model] == [Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d, Conv2d, ReLU,
                                        Flatten, Linear]


@pytest.mark.parametrize("spec", VARIANTS, ids=IDS)
def test_parameter_counts_match_the_description(spec):
    from torch_baselines.models import num_parameters

    assert build_course_cnn(spec).num_parameters() == COUNTS[spec.residual_depth] == num_parameters(spec.layers())


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("spec", VARIANTS, ids=IDS)
def test_numpy_and_torch_give_the_same_logits_loss_and_gradients(spec, dtype, tol):
    torch = pytest.importorskip("torch")
    model, tmodel = _mirror(spec, dtype)
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, size=3)
    loss = SoftmaxCrossEntropy()
    logits = model.forward(x)
    value = loss.forward(logits, y)
    model.zero_grad()
    gx = model.backward(loss.backward())
    xt = torch.tensor(x, requires_grad=True)
    tlogits = tmodel(xt)
    tvalue = torch.nn.functional.cross_entropy(tlogits, torch.tensor(y))
    tvalue.backward()
    assert logits.dtype == gx.dtype == dtype
    assert relative_error(logits, tlogits.detach().numpy()) < tol
    assert abs(value - tvalue.item()) < tol * abs(value)
    assert relative_error(gx, xt.grad.numpy()) < tol
    tparams = list(tmodel.parameters())
    assert len(tparams) == len(model.parameters())
    for (name, p), tp in zip(model.named_parameters(), tparams, strict=True):
        assert p.grad.shape == tuple(tp.grad.shape)
        assert relative_error(p.grad, tp.grad.numpy()) < tol, name


@pytest.mark.parametrize("spec", [VARIANTS[0], VARIANTS[9]], ids=[IDS[0], IDS[9]])
def test_torch_weights_copied_into_numpy_give_the_torch_logits(spec):
    torch = pytest.importorskip("torch")
    from torch_baselines.bridge import torch_to_numpy
    from torch_baselines.models import build as torch_build

    tmodel = torch_build(spec.layers(), seed=11, dtype=torch.float64)  # torch's own initialisation
    model = torch_to_numpy(tmodel, build_course_cnn(spec, seed=0, dtype=np.float64))
    x = np.random.default_rng(1).random((2, 1, 28, 28))
    np.testing.assert_allclose(model.forward(x), tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_whole_model_gradient_matches_finite_differences():
    """A small course-shaped CNN (8×8 input) with a loss on top, every entry checked."""
    model = build(CourseCNNSpec("tanh", channels=(2, 3, 4), image_size=8).layers(), seed=1, dtype=np.float64)
    x = np.random.default_rng(2).random((2, 1, 8, 8))
    report = check_model(model, SoftmaxCrossEntropy(), x, np.array([3, 7]), tol=1e-6)
    assert report.passed, str(report)


def test_literal_chain_rule_equals_backward_on_a_residual_cnn():
    """Sequential.backward(mode="jacobian") multiplies every layer's explicit Jacobian
    (Conv2d's unrolled matrix, pooling's selection matrix, Residual's J_F + J_P)."""
    model = build(CourseCNNSpec("relu", residual_depth=2, channels=(2, 2, 3), image_size=8).layers(),
                  seed=4, dtype=np.float64)
    x = np.random.default_rng(5).standard_normal((2, 1, 8, 8))
    g = np.random.default_rng(6).standard_normal((2, 10))
    model.forward(x)
    model.zero_grad()
    fast = model.backward(g)
    fast_grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    slow = model.backward(g, mode="jacobian")
    assert relative_error(slow, fast) < 1e-12
    for p, f in zip(model.parameters(), fast_grads, strict=True):
        assert relative_error(p.grad, f) < 1e-12


# -- build() --------------------------------------------------------------------------------
def _all_kinds():
    L = LayerDesc.make
    return (L("conv2d", in_channels=1, out_channels=2, kernel_size=3, padding=1), L("batchnorm2d", num_features=2),
            L("activation", name="tanh"), L("avgpool2d", kernel_size=2), L("maxpool2d", kernel_size=2, stride=1),
            L("residual",
              block=(L("conv2d", in_channels=2, out_channels=2, kernel_size=1), L("activation", name="sigmoid")),
              projection=None),
            L("flatten"), L("dropout", p=0.3), L("linear", in_features=2 * 3 * 3, out_features=4),
            L("batchnorm1d", num_features=4), L("activation", name="relu"))


def test_build_makes_one_module_per_description_for_every_kind():
    from tinygrad_mnist.nn.batchnorm import BatchNorm1d, BatchNorm2d
    from tinygrad_mnist.nn.regularization import Dropout
    from tinygrad_mnist.nn.residual import Residual

    layers = _all_kinds()
    assert {d.kind for d in layers} == set(KINDS)
    model = build(layers, seed=0, dtype=np.float64)
    assert [type(m) for m in model] == [Conv2d, BatchNorm2d, Tanh, AvgPool2d, MaxPool2d, Residual, Flatten,
                                        Dropout, Linear, BatchNorm1d, ReLU]
    assert isinstance(model[5].block[1], Sigmoid) and model[5].projection is None
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.forward(np.random.default_rng(0).random((3, 1, 8, 8))).shape == (3, 4)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_every_kind_matches_torch(training):
    """BatchNorm in both modes (batch statistics, then running ones); Dropout in eval mode
    only (the masks come from different generators)."""
    torch = pytest.importorskip("torch")
    from torch_baselines.bridge import numpy_to_torch
    from torch_baselines.models import build as torch_build

    layers = tuple(d for d in _all_kinds() if d.kind != "dropout" or not training)
    model = build(layers, seed=2, dtype=np.float64).train(training)
    tmodel = numpy_to_torch(model, torch_build(layers, dtype=torch.float64)).train(training)
    x = np.random.default_rng(3).random((4, 1, 8, 8))
    g = np.random.default_rng(4).standard_normal((4, 4))
    y = model.forward(x)
    gx = model.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    yt = tmodel(xt)
    yt.backward(torch.tensor(g))
    assert relative_error(y, yt.detach().numpy()) < 1e-10
    assert relative_error(gx, xt.grad.numpy()) < 1e-10


def test_build_is_seeded_and_takes_an_rng():
    a, b, c = build_course_cnn(seed=1), build_course_cnn(seed=1), build_course_cnn(seed=2)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.data, pb.data)
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)
    d = build(CourseCNNSpec().layers(), rng=np.random.default_rng(1))
    np.testing.assert_array_equal(d[0].weight.data, a[0].weight.data)
    assert build(CourseCNNSpec().layers(), init="normal", init_kwargs={"std": 1e-3})[0].weight.data.std() < 2e-3


def test_needs_input_grad_false_only_touches_a_first_conv_or_linear():
    model = build_course_cnn(seed=0, needs_input_grad=False)
    assert not model[0].needs_input_grad and all(m.needs_input_grad for m in model
                                                 if isinstance(m, Conv2d) and m is not model[0])
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    model.forward(x)
    assert model.backward(np.ones((2, 10), np.float32)) is None
    assert model[0].weight.grad.any()
    mlp = build((LayerDesc.make("linear", in_features=3, out_features=2),), needs_input_grad=False)
    mlp.forward(np.ones((1, 3), np.float32))
    assert mlp.backward(np.ones((1, 2), np.float32)) is None and mlp[0].weight.grad.any()
    dropped = build((LayerDesc.make("dropout", p=0.5), LayerDesc.make("linear", in_features=3, out_features=2)),
                    needs_input_grad=False)
    assert dropped[1].needs_input_grad   # only the first layer, and only if it computes ∂L/∂x itself


@pytest.mark.parametrize("layers, exc, match", [
    ((LayerDesc.make("conv3d", in_channels=1),), ValueError, r"build: unknown layer kind 'conv3d'"),
    ((LayerDesc.make("conv2d", in_channels=1, out_channels=2),), ValueError,
     r"build: layer 'conv2d' is missing the argument 'kernel_size'"),
    (("conv2d",), TypeError, r"build: expected a LayerDesc, got str"),
])
def test_bad_descriptions_raise(layers, exc, match):
    with pytest.raises(exc, match=match):
        build(layers)


def test_bad_build_arguments_raise():
    with pytest.raises(TypeError, match="build: dtype must be float32 or float64"):
        build(CourseCNNSpec().layers(), dtype=np.float16)
    with pytest.raises(TypeError, match="build: expected rng to be a np.random.Generator"):
        build(CourseCNNSpec().layers(), rng=42)
    with pytest.raises(TypeError, match="build_course_cnn: expected a CourseCNNSpec"):
        build_course_cnn("course")


def test_float32_model_rejects_float64_input_with_a_hint():
    with pytest.raises(TypeError, match=r"Conv2d: input dtype float64 does not match parameter dtype float32"):
        build_course_cnn().forward(np.zeros((1, 1, 28, 28)))


# -- training on real MNIST -------------------------------------------------------------------
@pytest.mark.slow
def test_one_epoch_of_the_course_cnn_learns_mnist(mnist):
    from tinygrad_mnist.optim import SGD
    from tinygrad_mnist.train import fit

    train, test = mnist
    model = build_course_cnn(seed=0)
    history = fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.05, momentum=0.9), train.first(20000),
                  test=test.first(5000), epochs=1, batch_size=64, seed=0, flatten=False)
    assert history.test_accuracy[-1] > 0.94   # 95.7% with these settings (chance: 10%)


# -- the experiment script (experiments/studies/cnn/numpy_cnn.py) ---------------------------------------------
def test_numpy_cnn_experiment_quick_run_writes_its_results(tmp_path):
    from experiments.studies.cnn.numpy_cnn import Config, run

    cfg = Config(dataset="digits", course_epochs=1, best_epochs=1, best_channels=(2, 4, 4), train_size=300,
                 test_size=100, run="test", out=str(tmp_path))
    metrics = run(cfg, log=lambda *a: None)
    out = tmp_path / "numpy_cnn" / "test"
    for name in ("config.json", "metrics.json", "summary.md", "summary.csv", "test_accuracy.png",
                 "course_history.json", "course_epochs.csv", "course_learning_curves.png",
                 "best_history.json", "best_epochs.md", "best_learning_curves.png"):
        assert (out / name).is_file(), name
    assert metrics["course"]["parameters"] == build_course_cnn(CourseCNNSpec(image_size=8)).num_parameters()
    assert 0.0 <= metrics["best"]["test_accuracy"] <= 1.0 and metrics["n_train"] == 300
