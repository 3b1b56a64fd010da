"""Hypothesis strategies, in one place, and the registered profiles.

Dimensions stay small and floats bounded so that every property test runs in
milliseconds per example; the ``ci`` profile (the default) bounds the example count.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

small_dims = st.integers(min_value=1, max_value=6)
batch_sizes = st.integers(min_value=1, max_value=5)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
activation_names = st.sampled_from(["sigmoid", "tanh", "relu"])


def float_arrays(shape, low: float = -3.0, high: float = 3.0, dtype=np.float64):
    """Arrays of the given shape with finite floats in [low, high]."""
    width = 64 if np.dtype(dtype) == np.float64 else 32
    return arrays(dtype, shape, elements=st.floats(low, high, allow_nan=False,
                                                   allow_infinity=False, width=width))


@st.composite
def matrices(draw, n=batch_sizes, d=small_dims, low=-3.0, high=3.0, dtype=np.float64):
    """A (n, d) float matrix, n and d drawn from the given strategies."""
    shape = (draw(n), draw(d))
    return draw(float_arrays(shape, low, high, dtype))


@st.composite
def classification_batches(draw, n=batch_sizes, c=st.integers(2, 6), low=-5.0, high=5.0,
                           dtype=np.float64, one_hot: bool = None):
    """``(logits (n, C), targets)``: integer labels (n,) or one-hot rows (n, C)."""
    n_, c_ = draw(n), draw(c)
    logits = draw(float_arrays((n_, c_), low, high, dtype))
    labels = np.array(draw(st.lists(st.integers(0, c_ - 1), min_size=n_, max_size=n_)), dtype=np.int64)
    use_one_hot = draw(st.booleans()) if one_hot is None else one_hot
    if use_one_hot:
        target = np.zeros((n_, c_), dtype=dtype)
        target[np.arange(n_), labels] = 1
        return logits, target
    return logits, labels


@st.composite
def probability_batches(draw, n=batch_sizes, c=st.integers(2, 6), dtype=np.float64):
    """``(probabilities (n, C) with rows summing to 1 and entries ≥ 0.01, labels (n,))``."""
    n_, c_ = draw(n), draw(c)
    raw = draw(float_arrays((n_, c_), 0.05, 1.0, dtype))
    probs = raw / raw.sum(axis=1, keepdims=True)
    labels = np.array(draw(st.lists(st.integers(0, c_ - 1), min_size=n_, max_size=n_)), dtype=np.int64)
    return probs, labels


@st.composite
def mlp_shapes(draw, max_layers: int = 3, max_width: int = 6):
    """Layer widths ``(d_in, h_1, ..., d_out)`` of a small MLP."""
    k = draw(st.integers(1, max_layers))
    return tuple(draw(st.integers(1, max_width)) for _ in range(k + 1))


# -- normalisation, dropout and residual layers -----------------------------------------
@st.composite
def channel_batch_shapes(draw, spatial: int = 0, n=st.integers(1, 5), c=st.integers(1, 4),
                         size=st.integers(1, 4)):
    """Shape ``(n, C, *spatial sizes)`` with at least 2 values per channel (n·∏sizes ≥ 2),
    as batch normalisation in training mode needs: spatial=0 → (n, C), 1 → (n, C, L),
    2 → (n, C, H, W)."""
    dims = tuple(draw(size) for _ in range(spatial))
    n_ = draw(n)
    if n_ * int(np.prod(dims, dtype=np.int64)) < 2:
        n_ = 2
    return (n_, draw(c)) + dims


@st.composite
def batch_shapes(draw, max_rank: int = 4, n=batch_sizes, d=st.integers(1, 5)):
    """Shape ``(n, d_1, ..., d_k)`` of a batch, total rank 2 to ``max_rank``."""
    rank = draw(st.integers(2, max_rank))
    return (draw(n),) + tuple(draw(d) for _ in range(rank - 1))


dropout_probabilities = st.floats(0.0, 0.95, allow_nan=False)


# -- gradient checks: batches, kinks, soft targets, extreme logits, random chains --------
def batches(feature_shape, low: float = -3.0, high: float = 3.0, dtype=np.float64, n=batch_sizes):
    """Batches of shape ``(n, *feature_shape)`` with finite entries in [low, high]."""
    return n.flatmap(lambda n_: float_arrays((n_, *feature_shape), low, high, dtype))


@st.composite
def batches_with_zeros(draw, feature_shape, low: float = -3.0, high: float = 3.0, dtype=np.float64,
                       n=batch_sizes):
    """Like :func:`batches`, with at least one entry set to exactly 0 (a ReLU kink)."""
    x = draw(batches(feature_shape, low, high, dtype, n))
    flat = x.reshape(-1)
    for i in draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=flat.size, unique=True)):
        flat[i] = 0
    return x


@st.composite
def soft_target_batches(draw, n=batch_sizes, c=st.integers(2, 6), low: float = -5.0, high: float = 5.0,
                        dtype=np.float64):
    """``(predictions (n, C) in [low, high], targets (n, C))``: target rows are
    probabilities (non-negative, summing to 1), e.g. label-smoothed or soft labels."""
    n_, c_ = draw(n), draw(c)
    pred = draw(float_arrays((n_, c_), low, high, dtype))
    raw = draw(float_arrays((n_, c_), 0.0, 1.0, dtype))
    raw[raw.sum(axis=1) == 0] = 1
    return pred, raw / raw.sum(axis=1, keepdims=True)


@st.composite
def extreme_logits(draw, n=batch_sizes, c=st.integers(2, 6), bound: float = 1e4, dtype=np.float64):
    """``(logits (n, C) with entries up to ±bound, labels (n,))``; every row holds at least
    one entry of magnitude ≥ bound/2 so the exponentials really overflow or underflow."""
    n_, c_ = draw(n), draw(c)
    z = draw(float_arrays((n_, c_), -bound, bound, dtype))
    cols = draw(st.lists(st.integers(0, c_ - 1), min_size=n_, max_size=n_))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n_, max_size=n_))
    z[np.arange(n_), cols] = np.asarray(signs, dtype=dtype) * bound
    labels = np.array(draw(st.lists(st.integers(0, c_ - 1), min_size=n_, max_size=n_)), dtype=np.int64)
    return z, labels


@st.composite
def chain_specs(draw, max_layers: int = 3, max_width: int = 5):
    """``(sizes, activation name, softmax output?)`` of a small random Sequential."""
    sizes = draw(mlp_shapes(max_layers=max_layers, max_width=max_width))
    return sizes, draw(activation_names), draw(st.booleans())


# -- convolution and pooling ------------------------------------------------------------
@st.composite
def conv_configs(draw, n=st.integers(1, 3), channels=st.integers(1, 3), size=st.integers(3, 8),
                 kernel=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2)):
    """A small convolution: ``dict(n, c_in, c_out, h, w, kernel, stride, padding, bias)``.

    Kernel, stride and padding are (height, width) pairs drawn independently, so
    non-square kernels and inputs are covered; the kernel always fits the padded input
    (sizes ≥ 3 ≥ kernel)."""
    return dict(n=draw(n), c_in=draw(channels), c_out=draw(channels), h=draw(size), w=draw(size),
                kernel=(draw(kernel), draw(kernel)), stride=(draw(stride), draw(stride)),
                padding=(draw(padding), draw(padding)), bias=draw(st.booleans()))


@st.composite
def pool_configs(draw, n=st.integers(1, 3), channels=st.integers(1, 3), size=st.integers(3, 8),
                 kernel=st.integers(1, 3), stride=st.integers(1, 3)):
    """A small pooling: ``dict(n, c, h, w, kernel, stride)`` with (height, width) pairs;
    overlapping (stride < kernel), tiling and gapped (stride > kernel) windows all occur."""
    return dict(n=draw(n), c=draw(channels), h=draw(size), w=draw(size),
                kernel=(draw(kernel), draw(kernel)), stride=(draw(stride), draw(stride)))


def config_input_shape(cfg):
    """The input batch shape ``(n, C, h, w)`` of a :func:`conv_configs` or :func:`pool_configs` dict."""
    return (cfg["n"], cfg.get("c_in", cfg.get("c")), cfg["h"], cfg["w"])


def tied_arrays(shape, values=(-1.0, 0.0, 0.5, 1.0), dtype=np.float64):
    """Arrays whose entries come from a few values, so max-pool windows hold exact ties."""
    return arrays(dtype, shape, elements=st.sampled_from(values))


def distinct_arrays(shape, spacing: float = 0.1, dtype=np.float64):
    """Arrays of distinct values at least ``spacing`` apart, in random order: every max-pool
    window has a clear winner, so central differences (ε ≪ spacing) never cross a tie."""
    size = int(np.prod(shape))
    return seeds.map(lambda s: ((np.random.default_rng(s).permutation(size) - size / 2) * spacing)
                     .reshape(shape).astype(dtype))


# -- fuzzing: arrays of any shape and dtype, with NaN and inf among the values -----------
FUZZ_DTYPES = (np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_, np.complex64)


@st.composite
def fuzz_arrays(draw, max_rank: int = 5, max_dim: int = 5, float_bias: bool = True,
                shape=None, dtypes=FUZZ_DTYPES):
    """An array of random rank (0 to ``max_rank``), sizes (0 to ``max_dim``, so empty arrays
    occur) and dtype; float entries are finite in [-1e3, 1e3] or, sometimes, NaN / ±inf.

    With ``float_bias`` every other draw is float32 or float64 (the dtypes layers accept),
    so the valid path is exercised as often as the rejections.  ``shape`` fixes the shape.
    """
    if float_bias and draw(st.booleans()):
        dtype = np.dtype(draw(st.sampled_from((np.float32, np.float64))))
    else:
        dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if shape is None:
        rank = draw(st.integers(0, max_rank))
        shape = tuple(draw(st.integers(0, max_dim)) for _ in range(rank))
    if dtype.kind == "f":
        width = 16 if dtype == np.float16 else 32 if dtype == np.float32 else 64
        finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=width)
        special = st.sampled_from([np.nan, np.inf, -np.inf])
        elements = st.one_of(finite, special) if draw(st.integers(0, 3)) == 0 else finite
    elif dtype.kind == "c":
        elements = st.complex_numbers(max_magnitude=1e3, allow_nan=False, allow_infinity=False, width=64)
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -1000), min(info.max, 1000))
    return draw(arrays(dtype, shape, elements=elements))


@st.composite
def fuzz_targets(draw, n: int, c: int):
    """A target for a loss on predictions (n, C): valid labels, labels out of range, float
    labels, one-hot rows, soft rows, or an array of any shape and dtype."""
    kind = draw(st.sampled_from(["labels", "bad-labels", "one-hot", "soft", "any"]))
    if kind == "labels" and c:
        return np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    if kind == "bad-labels":
        return np.array(draw(st.lists(st.integers(-3, c + 3), min_size=n, max_size=n)), dtype=np.int64)
    if kind in ("one-hot", "soft") and c:
        raw = draw(float_arrays((n, c), 0.0, 1.0, np.float64))
        if kind == "one-hot":
            return np.eye(c)[raw.argmax(axis=1)] if n else np.zeros((0, c))
        raw[raw.sum(axis=1) == 0] = 1
        return raw / raw.sum(axis=1, keepdims=True)
    return draw(fuzz_arrays(max_rank=3))
