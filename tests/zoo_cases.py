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

Where the parts live: :class:`~tests.zoo_case.ModuleCase`, :func:`given_case_data` and the
``fd_safe`` predicates in ``tests/zoo_case.py``; the convolution, pooling, normalisation,
dropout and residual cases in ``tests/zoo_cnn_cases.py``; the loss cases
(:data:`LOSS_ZOO`) in ``tests/zoo_loss_cases.py``.  This file holds the dense cases and
assembles :data:`ZOO`.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from tinygrad_mnist.nn.activations import ReLU, Sigmoid, Softmax, Tanh
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.module import Module, Sequential
from tinygrad_mnist.nn.reshape import Flatten, Identity

from .strategies import batches, batches_with_zeros
from .torch_reference import TORCH_ACTIVATIONS, mirror, torch_nn, torch_sequential
from .zoo_case import ModuleCase, always_safe, away_from_zero, given_case_data, relu_inputs_away_from_zero  # noqa: F401
from .zoo_cnn_cases import conv_zoo, normalization_zoo
from .zoo_loss_cases import LOSS_ZOO, LossCase  # noqa: F401

FD_EPS = 1e-6


def make_mlp(sizes: Tuple[int, ...], act, softmax: bool, rng: np.random.Generator, dtype) -> Sequential:
    """Linear, act, Linear, ..., Linear (, Softmax), weights drawn from ``rng`` in order."""
    layers: List[Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
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
        fd_safe=relu_inputs_away_from_zero if act is ReLU else always_safe,
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


ZOO.extend(conv_zoo())
ZOO.extend(normalization_zoo())


ZOO_BY_NAME = {case.name: case for case in ZOO}

#: The cases whose examples are independent: per-example Jacobians reproduce backward.
PER_EXAMPLE_ZOO: List[ModuleCase] = [case for case in ZOO if case.batch_independent]
