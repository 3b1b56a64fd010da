"""Shared helpers of the layers on images (N, C, H, W): argument pairs, output sizes,
strided windows, the batch-last storage layout, input checks.

**Batch-last layout.**  Conv2d and the pooling layers take and return ``(N, C, H, W)``
arrays like torch but store them as ``(C, H, W, N)`` and hand out the
``.transpose(3, 0, 1, 2)`` view; see :mod:`.conv` for why (measured gains in
``docs/performance.md``).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .module import Module, check_float_input

IntPair = Union[int, Tuple[int, int]]


def int_pair(value: Any, layer: str, what: str, minimum: int) -> Tuple[int, int]:
    """``value`` as a pair of ints ``>= minimum`` (an int means the same for H and W)."""
    if isinstance(value, (int, np.integer)):
        pair: Tuple[Any, ...] = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{layer}: {what} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{layer}: {what} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """``(size + 2·padding - kernel) // stride + 1``: the output length along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def offset_slices(i: int, j: int, stride: Tuple[int, int], out_hw: Tuple[int, int]) -> Tuple[slice, slice]:
    """The rows and columns that kernel offset ``(i, j)`` touches: ``i + s_h·p`` for
    ``p < H_out`` and ``j + s_w·q`` for ``q < W_out`` (the workhorse of im2col, col2im
    and pooling: one strided view per offset, covering every output pixel at once)."""
    (sh, sw), (ho, wo) = stride, out_hw
    return slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


def strided_window(a: np.ndarray, i: int, j: int, stride: Tuple[int, int], out_hw: Tuple[int, int]) -> np.ndarray:
    """``a[:, :, i + s_h·p, j + s_w·q]`` of an (N, C, H, W) array, shape (N, C, H_out, W_out)."""
    rows, cols = offset_slices(i, j, stride, out_hw)
    return a[:, :, rows, cols]


def batch_last_empty(shape: Tuple[int, int, int, int], dtype: DTypeLike, zero: bool = False) -> np.ndarray:
    """A new array of shape (N, C, H, W) stored batch-last: the view
    ``np.empty((C, H, W, N)).transpose(3, 0, 1, 2)`` (``np.zeros`` when ``zero``)."""
    n, c, h, w = shape
    return (np.zeros if zero else np.empty)((c, h, w, n), dtype=dtype).transpose(3, 0, 1, 2)


def pad_batch_last(x: np.ndarray, padding: Tuple[int, int]) -> np.ndarray:
    """Zero-pad ``x`` (N, C, H, W) and return it batch-last: (C, H + 2·p_h, W + 2·p_w, N).

    A new array; ``x`` is never modified.
    """
    n, c, h, w = x.shape
    ph, pw = padding
    xp = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w, :] = x.transpose(1, 2, 3, 0)
    return xp


def as_batch_last(a: np.ndarray) -> np.ndarray:
    """``a`` (N, C, H, W) itself if it is stored batch-last, else a batch-last copy.

    Elementwise numpy operations on arrays of *different* layouts cannot walk memory
    in one order and run 3-11× slower (ReLU backward in the course CNN's last layer:
    0.32 vs 0.03 ms, docs/performance.md); the pooling backward passes convert the
    incoming gradient once instead.
    """
    if a.transpose(1, 2, 3, 0).flags.c_contiguous:
        return a
    out = batch_last_empty(a.shape, a.dtype)
    out[...] = a
    return out


def check_image_input(module: Module, x: np.ndarray, channels: Optional[int],
                       kernel: Tuple[int, int], padding: Tuple[int, int]) -> np.ndarray:
    """Validate an (N, C, H, W) float input: rank, channel count, kernel fits the padded image."""
    name = type(module).__name__
    check_float_input(module, x)
    want = f"(N, {channels}, H, W)" if channels is not None else "(N, C, H, W)"
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-d input {want}, got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} input channels {want}, got shape {x.shape}")
    hp, wp = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if hp < kernel[0] or wp < kernel[1]:
        what = "input" if padding == (0, 0) else f"padded input (padding {padding})"
        raise ValueError(f"{name}: kernel {kernel} is larger than the {what}: spatial size ({hp}, {wp}), "
                         f"input shape {x.shape}")
    return x


def one_example(module: Module, x: np.ndarray, channels: Optional[int]) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or (channels is not None and x.shape[0] != channels):
        c = channels if channels is not None else "C"
        raise ValueError(f"{type(module).__name__}.jacobian: expected one example of shape ({c}, H, W), got {x.shape}")
    return x
