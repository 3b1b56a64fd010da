"""Fuzzing every public layer and loss with arrays of random shapes, dtypes and values
(NaN and inf included): each call either returns a finite result of the documented shape
or raises ValueError/TypeError; never another exception, never a silently wrong shape."""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_mnist.nn import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    CrossEntropy,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    MSELoss,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)

from .strategies import fuzz_arrays, fuzz_targets

Shape = Tuple[int, ...]


def pooled(size: int, k: int, s: int, pad: int = 0) -> Optional[int]:
    out = (size + 2 * pad - k) // s + 1
    return out if size + 2 * pad >= k else None


def conv_shape(c_out, k, s, pad):
    def shape(x: Shape) -> Optional[Shape]:
        h, w = pooled(x[2], k[0], s[0], pad), pooled(x[3], k[1], s[1], pad)
        return None if h is None or w is None else (x[0], x[1] if c_out is None else c_out, h, w)
    return shape


def same(x: Shape) -> Shape:
    return x


def bn_shape(x: Shape) -> Optional[Shape]:
    return x if int(np.prod(x)) // max(x[1], 1) >= 2 else None  # training mode needs 2 values per channel


# name: (factory(dtype), shape strategy for valid inputs, documented output shape or None when it must raise)
n = st.integers(0, 4)
hw = st.integers(1, 6)
LAYERS = {
    "Linear": (lambda dt: Linear(3, 2, dtype=dt), st.tuples(n, st.just(3)), lambda x: (x[0], 2)),
    "Conv2d": (lambda dt: Conv2d(2, 3, 3, padding=1, dtype=dt), st.tuples(n, st.just(2), hw, hw),
               conv_shape(3, (3, 3), (1, 1), 1)),
    "Conv2d-strided": (lambda dt: Conv2d(1, 2, (2, 3), stride=2, dtype=dt), st.tuples(n, st.just(1), hw, hw),
                       conv_shape(2, (2, 3), (2, 2), 0)),
    "MaxPool2d": (lambda dt: MaxPool2d(2), st.tuples(n, st.integers(1, 3), hw, hw),
                  conv_shape(None, (2, 2), (2, 2), 0)),
    "AvgPool2d": (lambda dt: AvgPool2d(3, stride=1), st.tuples(n, st.integers(1, 3), hw, hw),
                  conv_shape(None, (3, 3), (1, 1), 0)),
    "ReLU": (lambda dt: ReLU(), None, same),
    "Sigmoid": (lambda dt: Sigmoid(), None, same),
    "Tanh": (lambda dt: Tanh(), None, same),
    "Identity": (lambda dt: Identity(), None, same),
    "Softmax": (lambda dt: Softmax(), None, lambda x: x if len(x) >= 1 and x[-1] >= 1 else None),
    "Flatten": (lambda dt: Flatten(), None, lambda x: (x[0], int(np.prod(x[1:]))) if len(x) >= 2 else None),
    "Dropout": (lambda dt: Dropout(0.5, seed=1), None, same),
    "BatchNorm1d": (lambda dt: BatchNorm1d(3, dtype=dt),
                    st.one_of(st.tuples(n, st.just(3)), st.tuples(n, st.just(3), hw)),
                    bn_shape),
    "BatchNorm2d": (lambda dt: BatchNorm2d(2, dtype=dt), st.tuples(n, st.just(2), hw, hw), bn_shape),
    "Residual": (lambda dt: Residual(Sequential(Linear(3, 3, dtype=dt), Tanh())), st.tuples(n, st.just(3)),
                 lambda x: x),
    "Residual-projection": (lambda dt: Residual(Sequential(Conv2d(1, 2, 3, padding=1, dtype=dt), ReLU()),
                                                Conv2d(1, 2, 1, dtype=dt)),
                            st.tuples(n, st.just(1), hw, hw), lambda x: (x[0], 2, x[2], x[3])),
}

#: The shape a layer of this kind must produce when the input's dtype and rank are right.
RANKS = {"Linear": 2, "Conv2d": 4, "Conv2d-strided": 4, "MaxPool2d": 4, "AvgPool2d": 4, "BatchNorm2d": 4,
         "Residual": 2, "Residual-projection": 4}


def inputs(name):
    valid = LAYERS[name][1]
    anything = fuzz_arrays()
    if valid is None:
        return anything
    return st.one_of(anything, valid.flatmap(lambda shape: fuzz_arrays(shape=shape)))


def check_call(call: Callable, expected: Optional[Shape]):
    """Run ``call``; a result must be finite with shape ``expected``; errors must be ValueError/TypeError."""
    try:
        out = call()
    except (ValueError, TypeError) as err:
        assert str(err), "an error without a message"
        return None
    assert expected is not None, f"returned {np.shape(out)} where an error was due"
    assert isinstance(out, np.ndarray) and out.shape == expected, (np.shape(out), expected)
    assert np.isfinite(out).all(), "a non-finite result"
    return out


def expected_output(name: str, layer, x: np.ndarray) -> Optional[Shape]:
    """The documented output shape for ``x``, or None when the call must raise."""
    if x.dtype not in (np.float32, np.float64) or not np.isfinite(x).all():
        return None
    if layer.dtype is not None and x.dtype != layer.dtype:
        return None
    if name in RANKS and x.ndim != RANKS[name]:
        return None
    if name.startswith("BatchNorm1d") and x.ndim not in (2, 3):
        return None
    valid = LAYERS[name][1]
    if valid is not None:
        template = {"Linear": (None, 3), "Residual": (None, 3), "Conv2d": (None, 2, None, None),
                    "Conv2d-strided": (None, 1, None, None), "Residual-projection": (None, 1, None, None),
                    "BatchNorm1d": (None, 3) + ((None,) if x.ndim == 3 else ()),
                    "BatchNorm2d": (None, 2, None, None)}.get(name)
        if template is not None and any(t is not None and t != s for t, s in zip(template, x.shape, strict=True)):
            return None
    return LAYERS[name][2](x.shape)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_return_finite_documented_shapes_or_raise_value_or_type_errors(name):
    @settings(max_examples=30)
    @given(x=inputs(name), dtype=st.sampled_from([np.float32, np.float64]))
    def run(x, dtype):
        layer = LAYERS[name][0](dtype)
        expected = expected_output(name, layer, x)
        out = check_call(lambda: layer.forward(x), expected)
        if out is not None:
            grad = check_call(lambda: layer.backward(np.ones_like(out)), x.shape)
            assert grad is not None, "backward of a valid forward raised"
            wrong = np.ones(out.shape + (1,), dtype=out.dtype)
            with pytest.raises(ValueError, match=type(layer).__name__):
                layer.backward(wrong)

    run()


LOSSES = {"SoftmaxCrossEntropy": SoftmaxCrossEntropy, "CrossEntropy": CrossEntropy, "MSELoss": MSELoss}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_return_finite_values_or_raise_value_or_type_errors(name, reduction):
    pred_strategy = st.one_of(fuzz_arrays(max_rank=3),
                              st.tuples(st.integers(0, 4), st.integers(1, 4)).flatmap(lambda s: fuzz_arrays(shape=s)))

    @settings(max_examples=40)
    @given(pred=pred_strategy, data=st.data())
    def run(pred, data):
        loss = LOSSES[name](reduction=reduction)
        n, c = (pred.shape + (0, 0))[:2] if pred.ndim == 2 else (0, 0)
        target = data.draw(fuzz_targets(n, c))
        try:
            value = loss.forward(pred, target)
        except (ValueError, TypeError) as err:
            assert str(err)
            return
        assert isinstance(value, float) and np.isfinite(value)
        assert pred.ndim == 2 and pred.dtype in (np.float32, np.float64) and pred.shape[0] >= 1
        grad = loss.backward()
        assert grad.shape == pred.shape and grad.dtype == pred.dtype and np.isfinite(grad).all()

    run()
