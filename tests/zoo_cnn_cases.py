"""Zoo cases for the CNN layers: convolution, pooling, dropout, batch normalisation,
residual blocks and whole models given by layer descriptions.

:func:`conv_zoo` and :func:`normalization_zoo` return the cases that :mod:`tests.zoo_cases`
adds to :data:`~tests.zoo_cases.ZOO`.
"""

from __future__ import annotations

from typing import List

import numpy as np

from tinygrad_mnist.nn.activations import ReLU, Tanh
from tinygrad_mnist.nn.module import Module, Sequential

from .torch_reference import mirror, mirror_batchnorm, torch_nn
from .zoo_case import ModuleCase


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


def conv_zoo() -> List[ModuleCase]:
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


def normalization_zoo() -> List[ModuleCase]:
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
