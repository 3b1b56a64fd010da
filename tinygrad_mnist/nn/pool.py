"""Pooling: MaxPool2d and AvgPool2d on (N, C, H, W) images (``torch.nn`` semantics).

Each output pixel reduces one ``k_h×k_w`` window of the input moved by ``stride``::

    max:  y[n, c, p, q] = max_{i, j}  x[n, c, p·s_h + i, q·s_w + j]
    avg:  y[n, c, p, q] = 1/(k_h·k_w) Σ_{i, j} x[n, c, p·s_h + i, q·s_w + j]

Like im2col (:mod:`.conv`), both loop over the ``k_h·k_w`` window offsets, each a strided
view of the whole input, never over pixels.  The derivatives are in docs/jacobians.md#pool.

Notes
-----
Arrays are stored batch-last (:mod:`.image`; the gain is in the Notes of :mod:`.conv`).
Max-pooling keeps its argmax with arithmetic on 0/1 masks instead of masked numpy
operations (``np.copyto(..., where=)``, ``np.add(..., where=)``): in the course CNN's first
layer, batch 64, the forward pass went from 1.65 to 0.31 ms and the backward pass from 3.77
to 0.29 ms; where the windows tile the image the backward pass writes instead of
accumulating, 0.45 → 0.24 ms in that layer (docs/performance.md).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from .conv import im2col_index_map
from .image import (
    IntPair,
    as_batch_last,
    batch_last_empty,
    check_image_input,
    conv_output_size,
    int_pair,
    one_example,
    strided_window,
)
from .module import Module, check_grad_out, require_cache


# -- the math, as pure functions --------------------------------------------------------
def pool_output_shape(h: int, w: int, kernel: Tuple[int, int], stride: Tuple[int, int]) -> Tuple[int, int]:
    """``((H - k_h) // s_h + 1, (W - k_w) // s_w + 1)`` (no padding, floor mode, as torch)."""
    return conv_output_size(h, kernel[0], stride[0], 0), conv_output_size(w, kernel[1], stride[1], 0)


def maxpool2d_forward(x: np.ndarray, kernel_size: Tuple[int, int],
                      stride: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """``y[n, c, p, q] = max_{i, j} x[n, c, p·s_h + i, q·s_w + j]`` and where it was.

    A running maximum over the ``k = i·k_w + j`` window offsets, each a strided view
    ``v_k`` of the whole input::

        y ← v_0;  argmax ← 0
        for k = 1, 2, …:  argmax ← max(argmax, k·[v_k > y]);  y ← max(y, v_k)

    ``k`` grows, so ``argmax`` is the last offset that strictly improved the maximum: on
    ties the *first* maximum in row-major window order wins, exactly as in PyTorch.
    (Without a NaN; torch also reports a NaN's position.)

    Returns
    -------
    y : ndarray of shape (N, C, H_out, W_out), stored batch-last
    argmax : ndarray of uint8, shape (N, C, H_out, W_out), stored batch-last
        The winning offset ``i·k_w + j`` within each window.
    """
    kh, kw = kernel_size
    if kh * kw > 256:
        raise ValueError(f"maxpool2d_forward: at most 256 window positions fit the uint8 argmax, got {kernel_size}")
    out_shape = x.shape[:2] + pool_output_shape(x.shape[2], x.shape[3], kernel_size, stride)
    y = batch_last_empty(out_shape, x.dtype)
    y[...] = strided_window(x, 0, 0, stride, out_shape[2:])
    argmax = batch_last_empty(out_shape, np.uint8, zero=True)
    for k in range(1, kh * kw):
        v = strided_window(x, k // kw, k % kw, stride, out_shape[2:])
        improved = np.greater(v, y).view(np.uint8)  # 0/1
        improved *= np.uint8(k)
        np.maximum(argmax, improved, out=argmax)
        np.maximum(y, v, out=y)
    return y, argmax


def maxpool2d_backward(grad_out: np.ndarray, argmax: np.ndarray, x_shape: Tuple[int, int, int, int],
                       kernel_size: Tuple[int, int], stride: Tuple[int, int]) -> np.ndarray:
    """Route each output gradient to the input pixel that won its window.

    ``∂L/∂x[n, c, p·s_h + i, q·s_w + j] += G[n, c, p, q] · [argmax[n, c, p, q] = i·k_w + j]``
    (accumulating where windows overlap).  Returned batch-last.
    """
    kh, kw = kernel_size
    g = as_batch_last(grad_out)
    # windows that tile the image exactly (2×2/2 on even sizes) cover every pixel once
    tiling = stride == kernel_size and x_shape[2] % kh == 0 and x_shape[3] % kw == 0
    dx = batch_last_empty(x_shape, g.dtype, zero=not tiling)
    for k in range(kh * kw):
        view = strided_window(dx, k // kw, k % kw, stride, g.shape[2:])
        if tiling:   # write, no read-modify-write
            np.multiply(g, argmax == k, out=view)
        else:
            view += g * (argmax == k)
    return dx


def avgpool2d_forward(x: np.ndarray, kernel_size: Tuple[int, int], stride: Tuple[int, int]) -> np.ndarray:
    """``y[n, c, p, q] = (1 / (k_h·k_w)) Σ_{i, j} x[n, c, p·s_h + i, q·s_w + j]``, batch-last."""
    kh, kw = kernel_size
    out_shape = x.shape[:2] + pool_output_shape(x.shape[2], x.shape[3], kernel_size, stride)
    y = batch_last_empty(out_shape, x.dtype)
    y[...] = strided_window(x, 0, 0, stride, out_shape[2:])
    for k in range(1, kh * kw):
        y += strided_window(x, k // kw, k % kw, stride, out_shape[2:])
    y *= 1.0 / (kh * kw)
    return y


def avgpool2d_backward(grad_out: np.ndarray, x_shape: Tuple[int, int, int, int],
                       kernel_size: Tuple[int, int], stride: Tuple[int, int]) -> np.ndarray:
    """``∂L/∂x[n, c, p·s_h + i, q·s_w + j] += G[n, c, p, q] / (k_h·k_w)`` for every offset."""
    kh, kw = kernel_size
    g = as_batch_last(grad_out) * (1.0 / (kh * kw))
    dx = batch_last_empty(x_shape, g.dtype, zero=True)
    for k in range(kh * kw):
        strided_window(dx, k // kw, k % kw, stride, g.shape[2:])[...] += g
    return dx


def pool_input_jacobian(x: np.ndarray, kernel_size: Tuple[int, int], stride: Tuple[int, int],
                        mode: str) -> np.ndarray:
    """∂y/∂x of one example's pooling, x of shape (C, H, W), y flattened (c, p, q).

    ``max``: a 0/1 selection matrix, ``J[(c, p, q), (c, h*, w*)] = 1`` at the window's
    first maximum.  ``avg``: ``1/(k_h·k_w)`` at every pixel of the window.
    Returns shape (C·H_out·W_out, C·H·W).
    """
    c, h, w = x.shape
    kh, kw = kernel_size
    ho, wo = pool_output_shape(h, w, kernel_size, stride)
    index = im2col_index_map((c, h, w), kernel_size, stride, (0, 0)).reshape(c, kh * kw, ho * wo)
    rows = np.arange(c * ho * wo).reshape(c, ho * wo)
    jac = np.zeros((c * ho * wo, x.size), dtype=x.dtype)
    if mode == "max":
        _, argmax = maxpool2d_forward(x[None], kernel_size, stride)
        winner = np.take_along_axis(index, argmax.reshape(c, 1, ho * wo).astype(np.int64), axis=1)[:, 0]
        jac[rows, winner] = 1
    else:
        for k in range(kh * kw):
            jac[rows, index[:, k]] += 1.0 / (kh * kw)
    return jac


# -- the layers ---------------------------------------------------------------------------
class MaxPoolCache(NamedTuple):
    """What ``MaxPool2d.backward`` needs from the forward pass."""

    argmax: np.ndarray                  # winning offset i·k_w + j per output pixel, uint8
    x_shape: Tuple[int, int, int, int]  # (N, C, H, W)


class AvgPoolCache(NamedTuple):
    """What ``AvgPool2d.backward`` needs from the forward pass."""

    x_shape: Tuple[int, int, int, int]  # (N, C, H, W)
    y_shape: Tuple[int, int, int, int]  # (N, C, H_out, W_out)


class _Pool2d(Module):
    """Shared bookkeeping of MaxPool2d and AvgPool2d (``stride`` defaults to the kernel)."""

    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair] = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = int_pair(kernel_size, name, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else int_pair(stride, name, "stride", 1)
        self.cache: Optional[NamedTuple] = None

    def _check(self, x: np.ndarray) -> np.ndarray:
        return check_image_input(self, x, None, self.kernel_size, (0, 0))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Forward:  y[c, p, q] = max_{i, j} x[c, p·s_h + i, q·s_w + j]   (``torch.nn.MaxPool2d``)
    Jacobian: ∂y[c, p, q]/∂x[c, h, w] = 1 at the window's winner (h*, w*), else 0
    VJP:      ∂L/∂x[c, h, w] = Σ of g[c, p, q] over the windows that (h, w) won

    Derivation: docs/jacobians.md#pool.  Cache: ``MaxPoolCache(argmax, x_shape)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows), as in torch.

    Shapes
    ------
    x : (N, C, H, W) → y : (N, C, (H - k_h) // s_h + 1, (W - k_w) // s_w + 1).
    On ties the gradient goes to the first maximum of each window (row-major), as in torch.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        y, argmax = maxpool2d_forward(x, self.kernel_size, self.stride)
        self.cache = MaxPoolCache(argmax, x.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        argmax, x_shape = require_cache(self, self.cache)
        check_grad_out(self, grad_out, argmax.shape)
        return maxpool2d_backward(grad_out, argmax, x_shape, self.kernel_size, self.stride)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """∂y/∂x for one example (C, H, W): a 0/1 matrix selecting each window's maximum."""
        x = one_example(self, x, None)
        self._check(x[None])
        return {"input": pool_input_jacobian(x, self.kernel_size, self.stride, "max")}


class AvgPool2d(_Pool2d):
    """Forward:  y[c, p, q] = Σ_{i, j} x[c, p·s_h + i, q·s_w + j] / (k_h·k_w)   (``torch.nn.AvgPool2d``)
    Jacobian: ∂y[c, p, q]/∂x[c, h, w] = 1/(k_h·k_w) where (h, w) lies in window (p, q), else 0
    VJP:      ∂L/∂x[c, h, w] = Σ of g[c, p, q]/(k_h·k_w) over the windows containing (h, w)

    Derivation: docs/jacobians.md#pool.  Cache: ``AvgPoolCache(x_shape, y_shape)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        y = avgpool2d_forward(x, self.kernel_size, self.stride)
        self.cache = AvgPoolCache(x.shape, y.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, y_shape = require_cache(self, self.cache)
        check_grad_out(self, grad_out, y_shape)
        return avgpool2d_backward(grad_out, x_shape, self.kernel_size, self.stride)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """∂y/∂x for one example (C, H, W): ``1/(k_h·k_w)`` on every pixel of each window."""
        x = one_example(self, x, None)
        self._check(x[None])
        return {"input": pool_input_jacobian(x, self.kernel_size, self.stride, "avg")}
