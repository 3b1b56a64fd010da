"""The registry of module cases that every gradient test runs over.

Adding a layer to every check (backward = gᵀJ, Jacobian = finite differences = torch
autograd, backward = torch's in float64 and float32, linearity in g, inputs untouched,
literal chain = fast chain) is ONE entry in :data:`ZOO`::

    ModuleCase(
        "conv2d_2to3_k3_p1",
        make=lambda rng, dtype: Conv2d(2, 3, 3, padding=1, rng=rng, dtype=dtype),
        torch_make=lambda m: mirror(torch_nn().Conv2d(2, 3, 3, padding=1), m),
        inputs=lambda dtype: batches((2, 5, 5), dtype=dtype),
        fd_safe=no_pool_ties,          # optional (module, x) -> bool: FD away from kinks
    )

- ``make(rng, dtype)`` builds the numpy module, drawing weights from ``rng`` only;
- ``torch_make(module)`` builds the torch mirror with identical weights (torch is
  imported lazily, so this file imports without torch);
- ``inputs(dtype)`` is a hypothesis strategy of input batches (leading axis = batch);
- ``fd_inputs(dtype)`` (optional) is the strategy the finite-difference checks use
  instead of ``inputs`` (e.g. ReLU inputs kept away from 0);
- ``float32_inputs(dtype)`` (optional) is the strategy of the float32 torch comparisons,
  for layers whose float32 derivative is ill-conditioned somewhere: σ' = σ(1 − σ)
  computed from a rounded σ has a relative error of about u/(1 − σ) (u = 6e-8), i.e.
  more than 1e-5 for x > 5, in ANY implementation, so a one-ulp difference between two
  correct sigmoids shows up there as a 2e-5 difference in the gradient;
- ``fd_safe(module, x)`` says whether central differences at ``x`` stay clear of every kink
  (ReLU at 0, max-pool ties): a central difference straddling a kink measures the average
  slope, not the derivative, so those examples are skipped by the FD checks only;
- ``batch_independent=False`` for layers that couple the examples of a batch (BatchNorm
  in training mode): the per-example checks (gᵀJ, the literal chain) are skipped and the
  batch-level checks still run;
- ``train_mode=False`` puts the module in eval mode for the tests (Dropout);
- ``max_examples`` caps the hypothesis examples per test for an expensive case (a whole
  CNN); tests written with :func:`given_case_data` honour it.

:mod:`tests.torch_reference` builds and runs the torch side; :mod:`tests.error_scales`
measures errors: :data:`~tests.error_scales.WORST` keeps the worst relative error of each
kind seen in the session (printed by the test modules).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from tinygrad_mnist.nn.activations import ReLU, Sigmoid, Softmax, Tanh
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.module import Module, Sequential
from tinygrad_mnist.nn.reshape import Flatten, Identity

from .error_scales import EXAMPLES, cross_entropy_scales, mse_scales, softmax_ce_scales, target_rows
from .strategies import batches, batches_with_zeros
from .torch_reference import (TORCH_ACTIVATIONS, mirror, mirror_batchnorm, torch_cross_entropy,
                              torch_cross_entropy_on_probs, torch_mse, torch_nn, torch_sequential)

FD_EPS = 1e-6


def given_case_data(test):
    """``@given(data=st.data())`` for a test parametrised by ``case``, honouring the
    case's ``max_examples`` (at most the profile's count)::

        @pytest.mark.parametrize("case", ZOO, ids=repr)
        @given_case_data
        def test_something(case, data): ...
    """
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @functools.wraps(test)
    def wrapper(case, *args, **kwargs):
        budget = settings.default.max_examples
        if getattr(case, "max_examples", None) is not None:
            budget = min(budget, case.max_examples)

        @settings(max_examples=budget)
        @given(data=st.data())
        def run(data):
            EXAMPLES[test.__name__] = EXAMPLES.get(test.__name__, 0) + 1
            test(case, *args, data=data, **kwargs)

        run()

    signature = inspect.signature(test)
    wrapper.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name != "data"])
    del wrapper.__wrapped__  # pytest must see the signature without ``data``
    return wrapper


def _always(module: Module, x: np.ndarray) -> bool:
    return True


def away_from_zero(margin: float = 1e-3) -> Callable[[Module, np.ndarray], bool]:
    """``fd_safe`` for a kink at 0: every input entry at least ``margin`` (≫ ε) from it."""
    return lambda module, x: bool(np.all(np.abs(x) > margin))


def relu_inputs_away_from_zero(module: Sequential, x: np.ndarray, margin: float = 1e-3) -> bool:
    """``fd_safe`` for a chain: the input of every ReLU (run on ``x``) stays ``margin`` from 0."""
    h = x
    for layer in module:
        if isinstance(layer, ReLU) and not np.all(np.abs(h) > margin):
            return False
        h = layer.forward(h)
    return True


@dataclass(frozen=True)
class ModuleCase:
    """One module under test; see the module docstring for the fields."""

    name: str
    make: Callable[[np.random.Generator, np.dtype], Module]
    torch_make: Callable[[Module], object]
    inputs: Callable[[np.dtype], object]
    fd_safe: Callable[[Module, np.ndarray], bool] = _always
    fd_inputs: Optional[Callable[[np.dtype], object]] = None
    float32_inputs: Optional[Callable[[np.dtype], object]] = None
    batch_independent: bool = True
    train_mode: bool = True
    max_examples: Optional[int] = None

    def finite_difference_inputs(self, dtype=np.float64):
        """The strategy the finite-difference checks draw from (``inputs`` by default)."""
        return (self.fd_inputs or self.inputs)(dtype)

    def inputs_for(self, dtype):
        """``inputs(dtype)``, or ``float32_inputs`` for float32 when the case has them."""
        if np.dtype(dtype) == np.float32 and self.float32_inputs is not None:
            return self.float32_inputs(dtype)
        return self.inputs(dtype)

    def build(self, seed: int, dtype=np.float64) -> Module:
        module = self.make(np.random.default_rng(seed), np.dtype(dtype))
        return module.train(self.train_mode)

    def build_torch(self, module: Module):
        return self.torch_make(module).train(self.train_mode)

    def __repr__(self) -> str:  # readable pytest ids
        return self.name


def make_mlp(sizes: Tuple[int, ...], act, softmax: bool, rng: np.random.Generator, dtype) -> Sequential:
    """Linear, act, Linear, ..., Linear (, Softmax), weights drawn from ``rng`` in order."""
    layers: List[Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(a, b, rng=rng, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(act())
    if softmax:
        layers.append(Softmax())
    return Sequential(*layers)


def _mlp_case(name: str, sizes: Tuple[int, ...], act, softmax: bool = False) -> ModuleCase:
    return ModuleCase(
        name,
        make=lambda rng, dtype: make_mlp(sizes, act, softmax, rng, dtype),
        torch_make=torch_sequential,
        inputs=lambda dtype: batches((sizes[0],), dtype=dtype),
        fd_safe=relu_inputs_away_from_zero if act is ReLU else _always,
        # |x| ≤ 1 keeps Glorot pre-activations in the well-conditioned range in float32
        float32_inputs=lambda dtype: batches((sizes[0],), low=-1.0, high=1.0, dtype=dtype),
    )


def _linear_case(name: str, n_in: int, n_out: int, bias: bool = True) -> ModuleCase:
    return ModuleCase(
        name,
        make=lambda rng, dtype: Linear(n_in, n_out, bias=bias, rng=rng, dtype=dtype),
        torch_make=lambda m: mirror(torch_nn().Linear(n_in, n_out, bias=bias), m),
        inputs=lambda dtype: batches((n_in,), dtype=dtype),
    )


def _activation_case(name: str, cls, width: int, low: float, high: float, kink_at_zero: bool = False,
                     float32_bound: Optional[float] = None) -> ModuleCase:
    if not kink_at_zero:
        float32_inputs = None if float32_bound is None else (
            lambda dtype: batches((width,), low=-float32_bound, high=float32_bound, dtype=dtype))
        return ModuleCase(name, make=lambda rng, dtype: cls(), torch_make=lambda m: TORCH_ACTIVATIONS[cls](),
                          inputs=lambda dtype: batches((width,), low=low, high=high, dtype=dtype),
                          float32_inputs=float32_inputs)
    # The analytic/torch checks see exact zeros (torch's f'(0) convention); the
    # finite-difference checks see inputs pushed 0.01 away from the kink.
    return ModuleCase(
        name,
        make=lambda rng, dtype: cls(),
        torch_make=lambda m: TORCH_ACTIVATIONS[cls](),
        inputs=lambda dtype: batches_with_zeros((width,), low=low, high=high, dtype=dtype),
        fd_inputs=lambda dtype: batches((width,), low=low, high=high, dtype=dtype).map(
            lambda x: np.where(x >= 0, x + 0.01, x - 0.01).astype(dtype)),
        fd_safe=away_from_zero(),
    )


#: Every module case; the conv/normalisation/residual layers add theirs here.
ZOO: List[ModuleCase] = [
    _linear_case("linear_3to5", 3, 5),              # non-square weight
    _linear_case("linear_4to4", 4, 4),              # square weight (a transposed gradient fits)
    _linear_case("linear_5to2_nobias", 5, 2, bias=False),
    ModuleCase("identity", lambda rng, dtype: Identity(), lambda m: torch_nn().Identity(),
               lambda dtype: batches((4,), dtype=dtype)),
    ModuleCase("flatten_2x3", lambda rng, dtype: Flatten(), lambda m: torch_nn().Flatten(),
               lambda dtype: batches((2, 3), dtype=dtype)),
    # float32: |x| ≤ 4 keeps u/(1 - σ) ≤ 3.3e-6 and |x| ≤ 2.5 keeps tanh's u·2y²/(1 - y²) ≤ 4.4e-6
    _activation_case("sigmoid", Sigmoid, 5, -8.0, 8.0, float32_bound=4.0),
    _activation_case("tanh", Tanh, 5, -4.0, 4.0, float32_bound=2.5),
    # inputs include exact zeros: torch's ReLU'(0) = 0 convention is checked there
    _activation_case("relu", ReLU, 5, -3.0, 3.0, kink_at_zero=True),
    _activation_case("softmax", Softmax, 4, -6.0, 6.0),
    _mlp_case("mlp_3_4_2_tanh", (3, 4, 2), Tanh),
    _mlp_case("mlp_3_5_4_3_relu", (3, 5, 4, 3), ReLU),
    _mlp_case("mlp_4_3_3_sigmoid_softmax", (4, 3, 3), Sigmoid, softmax=True),
]


# -- convolution and pooling (tinygrad_mnist.nn.conv, tinygrad_mnist.models) -----------------------
def _batch_of(strategy_for_shape, feature_shape, dtype):
    from hypothesis import strategies as st

    return st.integers(1, 3).flatmap(lambda n: strategy_for_shape((n, *feature_shape), dtype=dtype))


def kinks_away(module: Module, x: np.ndarray, margin: float = 1e-4) -> bool:
    """``fd_safe`` for conv nets: every ReLU input is ``margin`` from 0 and every max-pool
    window's largest value beats the runner-up by ``margin`` (or the window is all zeros
    after a ReLU whose inputs are safely negative), walking Sequential and Residual."""
    from tinygrad_mnist.nn.pool import MaxPool2d
    from tinygrad_mnist.nn.residual import Residual

    def walk(m, h, after_relu=False):
        if isinstance(m, Sequential):
            prev = False
            for layer in m:
                if not walk(layer, h, prev):
                    return False
                prev = isinstance(layer, ReLU)
                h = layer.forward(h)
            return True
        if isinstance(m, Residual):
            return walk(m.block, h) and (m.projection is None or walk(m.projection, h))
        if isinstance(m, ReLU):
            return bool(np.all(np.abs(h) > margin))
        if isinstance(m, MaxPool2d):
            (kh, kw), (sh, sw) = m.kernel_size, m.stride
            win = np.lib.stride_tricks.sliding_window_view(h, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
            win = np.sort(win.reshape(*win.shape[:4], -1), axis=-1)
            if win.shape[-1] < 2:
                return True
            clear = win[..., -1] - win[..., -2] > margin
            return bool(np.all(clear | ((win[..., -1] == 0) & after_relu)))
        return True

    return walk(module, x)


def _conv_case(name, c_in, c_out, kernel, in_shape, **kwargs) -> ModuleCase:
    from .strategies import batches

    def make(rng, dtype):
        from tinygrad_mnist.nn.conv import Conv2d

        return Conv2d(c_in, c_out, kernel, rng=rng, dtype=dtype, **kwargs)

    return ModuleCase(name, make=make,
                      torch_make=lambda m: mirror(torch_nn().Conv2d(c_in, c_out, kernel, **kwargs), m),
                      inputs=lambda dtype: batches(in_shape, dtype=dtype, n=st_integers(1, 3)))


def _pool_case(name, kind, kernel, in_shape, stride=None) -> ModuleCase:
    """Inputs from a few values (exact ties: torch's first-maximum routing is checked);
    the finite-difference checks get distinct values 0.1 apart instead."""
    from .strategies import distinct_arrays, tied_arrays

    def make(rng, dtype):
        from tinygrad_mnist.nn import pool

        return getattr(pool, kind)(kernel, stride)

    return ModuleCase(name, make=make, torch_make=lambda m: getattr(torch_nn(), kind)(kernel, stride),
                      inputs=lambda dtype: _batch_of(tied_arrays, in_shape, dtype),
                      fd_inputs=lambda dtype: _batch_of(distinct_arrays, in_shape, dtype))


def _described_case(name, layers, in_shape) -> ModuleCase:
    """A model given by layer descriptions: numpy via tinygrad_mnist.models.build, torch via
    torch_baselines.models.build (imported lazily), weights mirrored by name."""
    from .strategies import batches

    def make(rng, dtype):
        from tinygrad_mnist.models import build

        return build(layers, rng=rng, dtype=dtype)

    def torch_make(m):
        from torch_baselines.models import build

        return mirror(build(layers), m)

    from .strategies import distinct_arrays

    return ModuleCase(name, make=make, torch_make=torch_make,
                      inputs=lambda dtype: batches(in_shape, low=-1.0, high=1.0, dtype=dtype, n=st_integers(1, 2)),
                      fd_inputs=lambda dtype: st_integers(1, 2).flatmap(
                          lambda n: distinct_arrays((n, *in_shape), spacing=0.02, dtype=dtype)),
                      fd_safe=kinks_away)


def st_integers(lo, hi):
    from hypothesis import strategies as st

    return st.integers(lo, hi)


def _conv_zoo() -> List[ModuleCase]:
    """Small shapes on purpose: the torch-Jacobian check costs one jacrev call per parameter
    per example.  The course CNN's variants (tanh, pool-first, residual) are checked against
    torch and the literal chain in tests/test_cnn.py."""
    from tinygrad_mnist.models import CourseCNNSpec

    return [
        _conv_case("conv2d_2to3_k3_p1", 2, 3, 3, (2, 4, 4), padding=1),
        _conv_case("conv2d_1to2_k2_s2_nobias", 1, 2, 2, (1, 5, 6), stride=2, bias=False),
        _conv_case("conv2d_2to2_k3x1_s1x2_p1x0", 2, 2, (3, 1), (2, 3, 4), stride=(1, 2), padding=(1, 0)),
        _pool_case("maxpool2d_k2_odd_width", "MaxPool2d", 2, (2, 4, 5)),
        _pool_case("maxpool2d_k3_s1_overlapping", "MaxPool2d", 3, (1, 5, 5), stride=1),
        _pool_case("avgpool2d_k2x1_s1x2", "AvgPool2d", (2, 1), (2, 4, 5), stride=(1, 2)),
        # the course CNN's shape (conv-relu-pool ×2, conv-relu, flatten, linear) on 8×8 input
        _described_case("course_cnn_mini_relu", CourseCNNSpec("relu", channels=(2, 2, 3), image_size=8).layers(),
                        (1, 8, 8)),
    ]


ZOO.extend(_conv_zoo())


# -- dropout, batch normalisation, residual blocks (regularization, batchnorm, residual) ----
def _random_affine_and_stats(module: Module, rng: np.random.Generator) -> Module:
    """Give a BatchNorm non-trivial γ, β and running statistics, drawn from ``rng``."""
    C = module.num_features
    module.weight.data[...] = rng.uniform(0.5, 2.0, C) * rng.choice([-1.0, 1.0], C)
    module.bias.data[...] = rng.normal(size=C)
    module.running_mean[...] = rng.normal(size=C)
    module.running_var[...] = rng.uniform(0.5, 2.0, C)
    return module


def _batchnorm_case(name, dims: int, C: int, in_shape, train: bool, n=(1, 3)) -> ModuleCase:
    """BatchNorm{dims}d(C) with random γ, β and running statistics.

    Eval mode: the layer alone.  Training mode: ``Sequential(BatchNorm, Tanh)`` on inputs
    with a fixed spread added, because training-mode batch norm cancels exactly in two
    directions: ∂L/∂x = γ s (g - mean(g) - x̂ mean(g x̂)) is 0 for a g constant per
    channel (hypothesis draws many constant arrays) and x̂ is 0 for a constant channel, and
    then both libraries return rounding noise, which no relative error can compare.  The
    Tanh makes the gradient reaching the batch norm non-constant and the spread keeps
    every channel's variance away from 0; the plain layer is checked batch-wise with a
    scale-aware error in tests/test_batchnorm.py.  Training mode couples the examples
    (batch_independent=False) and needs ≥ 2 values per channel in one example, so
    in_shape has spatial axes."""
    from .strategies import batches

    size = int(np.prod(in_shape))
    spread = np.linspace(-2.0, 2.0, size).reshape(in_shape)

    def make(rng, dtype):
        from tinygrad_mnist.nn import batchnorm

        bn = _random_affine_and_stats(getattr(batchnorm, f"BatchNorm{dims}d")(C, dtype=dtype), rng)
        return Sequential(bn, Tanh()) if train else bn

    def torch_make(m):
        bn = getattr(torch_nn(), f"BatchNorm{dims}d")(C)
        if not train:
            return mirror_batchnorm(bn, m)
        t = mirror(torch_nn().Sequential(bn, torch_nn().Tanh()), m)
        mirror_batchnorm(t[0], m[0])
        return t

    def inputs(dtype):
        strategy = batches(in_shape, dtype=dtype, n=st_integers(*n))
        return strategy.map(lambda x: x + spread.astype(dtype)) if train else strategy

    return ModuleCase(name, make=make, torch_make=torch_make, inputs=inputs,
                      batch_independent=not train, train_mode=train)


def _normalisation_zoo() -> List[ModuleCase]:
    """Dropout runs in eval mode (torch cannot share our masks; the masked training mode
    is checked in tests/test_regularization.py).  BatchNorm in training mode appears only
    where one example has ≥ 2 values per channel ((C, L) and (C, H, W) inputs), since the
    Jacobian checks run on one example and a BatchNorm1d example of shape (C,) has no
    training-mode forward (as in torch); the (n, C) case is in tests/test_batchnorm.py."""
    from tinygrad_mnist.models import LayerDesc

    from .strategies import batches

    L = LayerDesc.make
    identity_skip = (L("residual", block=(L("linear", in_features=4, out_features=4), L("activation", name="tanh"),
                                          L("linear", in_features=4, out_features=4)), projection=None),)
    projected = (L("residual", block=(L("linear", in_features=3, out_features=5), L("activation", name="sigmoid")),
                   projection=L("linear", in_features=3, out_features=5)),)
    return [
        ModuleCase("dropout_p0.4_eval", lambda rng, dtype: _dropout(0.4, rng),
                   lambda m: torch_nn().Dropout(0.4), lambda dtype: batches((2, 3), dtype=dtype), train_mode=False),
        _batchnorm_case("batchnorm1d_2x4_tanh_train", 1, 2, (2, 4), train=True),
        _batchnorm_case("batchnorm1d_3_eval", 1, 3, (3,), train=False),
        _batchnorm_case("batchnorm2d_2_tanh_train", 2, 2, (2, 3, 3), train=True),
        _batchnorm_case("batchnorm2d_3_eval", 2, 3, (3, 2, 3), train=False),
        _described_case("residual_identity_linear_tanh_linear", identity_skip, (4,)),
        _described_case("residual_projection_linear_sigmoid", projected, (3,)),
    ]


def _dropout(p, rng):
    from tinygrad_mnist.nn.regularization import Dropout

    return Dropout(p, rng=rng)


ZOO.extend(_normalisation_zoo())


ZOO_BY_NAME = {case.name: case for case in ZOO}


# -- losses ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossCase:
    """A loss and its torch reference.

    ``make()`` builds the numpy loss; ``torch_loss(pred, target)`` computes the same value
    in torch from a prediction tensor and the numpy target; ``inputs(dtype)`` is a strategy
    of ``(pred, target)`` pairs.
    """

    name: str
    make: Callable[[], Module]
    torch_loss: Callable[[object, np.ndarray], object]
    inputs: Callable[[np.dtype], object]
    scales: Callable[[np.ndarray, np.ndarray, str], Tuple[float, float]]
    reduction: str = "mean"

    def term_scales(self, pred: np.ndarray, target: np.ndarray) -> Tuple[float, float]:
        """The size of the terms the loss value and its gradient are sums of."""
        return self.scales(np.asarray(pred, dtype=np.float64), target_rows(target, pred), self.reduction)

    def __repr__(self) -> str:
        return self.name


def _loss_cases() -> List[LossCase]:
    from tinygrad_mnist.nn.losses import CrossEntropy, MSELoss, SoftmaxCrossEntropy

    from .strategies import classification_batches, probability_batches, soft_target_batches

    def f32(strategy):
        """Draw in float64 and round: hypothesis refuses bounds like 0.05 at width 32."""
        return lambda dtype: strategy(np.float64).map(lambda pair: tuple(np.asarray(a).astype(dtype)
                                                                         if np.asarray(a).dtype.kind == "f"
                                                                         else a for a in pair))

    cases = []
    for red in ("mean", "sum"):
        cases += [
            LossCase(f"softmax_ce_labels_{red}", lambda red=red: SoftmaxCrossEntropy(red), torch_cross_entropy(red),
                     lambda dtype: classification_batches(dtype=dtype, one_hot=False), softmax_ce_scales, red),
            LossCase(f"softmax_ce_onehot_{red}", lambda red=red: SoftmaxCrossEntropy(red), torch_cross_entropy(red),
                     lambda dtype: classification_batches(dtype=dtype, one_hot=True), softmax_ce_scales, red),
            LossCase(f"softmax_ce_soft_targets_{red}", lambda red=red: SoftmaxCrossEntropy(red),
                     torch_cross_entropy(red), f32(lambda dtype: soft_target_batches(dtype=dtype)),
                     softmax_ce_scales, red),
            LossCase(f"cross_entropy_probs_{red}", lambda red=red: CrossEntropy(red),
                     torch_cross_entropy_on_probs(red), f32(lambda dtype: probability_batches(dtype=dtype)),
                     cross_entropy_scales, red),
            LossCase(f"mse_onehot_{red}", lambda red=red: MSELoss(red), torch_mse(red),
                     lambda dtype: classification_batches(dtype=dtype, low=-2.0, high=2.0), mse_scales, red),
            LossCase(f"mse_soft_targets_{red}", lambda red=red: MSELoss(red), torch_mse(red),
                     f32(lambda dtype: soft_target_batches(dtype=dtype, low=-2.0, high=2.0)), mse_scales, red),
        ]
    return cases


#: Every loss case: each loss, each target form, both reductions.
LOSS_ZOO: List[LossCase] = _loss_cases()

#: The cases whose examples are independent: per-example Jacobians reproduce backward.
PER_EXAMPLE_ZOO: List[ModuleCase] = [case for case in ZOO if case.batch_independent]
