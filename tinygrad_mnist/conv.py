"""Convolution and pooling: Conv2d (im2col + one GEMM), MaxPool2d, AvgPool2d.

All layers take images of shape ``(N, C, H, W)`` (PyTorch's NCHW) and compute
*cross-correlation* exactly like ``torch.nn.Conv2d`` (the kernel is not flipped)::

    y[n, o, p, q] = b[o] + Σ_{c, i, j} W[o, c, i, j] · x_pad[n, c, p·s_h + i, q·s_w + j]

with ``x_pad`` the input zero-padded by ``padding`` on each side, and output size
``H_out = (H + 2·pad_h - k_h) // s_h + 1`` (likewise ``W_out``).

**im2col.**  Gathering every receptive field into a column turns the convolution into
one matrix product.  The columns are laid out batch-last::

    cols[(c, i, j), (p, q, n)] = x_pad[n, c, p·s_h + i, q·s_w + j]      (C·k_h·k_w, H_out·W_out·N)
    Y = W_mat @ cols + b                                               (O, H_out·W_out·N)

where ``W_mat = W.reshape(O, C·k_h·k_w)``.  ``cols`` is filled by a loop over the
``k_h·k_w`` kernel offsets (9 for a 3×3 kernel), each copying one strided slice of the
padded input for *all* pixels at once; there is no Python loop over pixels.

**Backward.**  With ``G = ∂L/∂Y`` reshaped the same way (O, H_out·W_out·N)::

    ∂L/∂W = G colsᵀ            ∂L/∂b = Σ_columns G            ∂L/∂cols = W_matᵀ G

and ``∂L/∂x = col2im(∂L/∂cols)``: every column entry is added back to the input pixel it
was copied from (the adjoint of im2col), again one strided slice per kernel offset.

**Memory layout: batch last.**  The layers take and return arrays of shape
``(N, C, H, W)`` like torch, but they *store* them as (C, H, W, N) and hand out the
``.transpose(3, 0, 1, 2)`` view (numpy treats a view like any other array; elementwise
layers keep its layout).  Two reasons, both speed:

- ``W_mat @ cols`` produces (O, H_out·W_out·N) directly; returning it as a view costs no
  transpose copy, and the next layer's backward gets its gradient in the same order.
- The strided copies of im2col, col2im and pooling then move contiguous runs of ``N``
  numbers (``W_out·N`` for stride 1) instead of rows of ``W_out`` (7 pixels in the course
  CNN's last layer): with batch 64 they run 2 to 4 times faster.

``Flatten`` copies into NCHW order, so a following ``Linear`` sees exactly PyTorch's
feature order.

Pooling layers use the same idea: a loop over the ``k_h·k_w`` window offsets, each a
strided view of the whole input.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import numpy as np

from .init import initializer, zeros
from .layers import _resolve_dtype, _resolve_rng
from .module import Module, Parameter, check_float_input, check_grad_out, require_cache

IntPair = Union[int, Tuple[int, int]]


# -- argument helpers -------------------------------------------------------------------
def _pair(value, layer: str, what: str, minimum: int) -> Tuple[int, int]:
    """``value`` as a pair of ints ``>= minimum`` (an int means the same for H and W)."""
    if isinstance(value, (int, np.integer)):
        pair = (value, value)
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


def _offset_slices(i: int, j: int, stride: Tuple[int, int], out_hw: Tuple[int, int]) -> Tuple[slice, slice]:
    """The rows and columns that kernel offset ``(i, j)`` touches: ``i + s_h·p`` for
    ``p < H_out`` and ``j + s_w·q`` for ``q < W_out`` (the workhorse of im2col, col2im
    and pooling: one strided view per offset, covering every output pixel at once)."""
    (sh, sw), (ho, wo) = stride, out_hw
    return slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


def _window(a: np.ndarray, i: int, j: int, stride: Tuple[int, int], out_hw: Tuple[int, int]) -> np.ndarray:
    """``a[:, :, i + s_h·p, j + s_w·q]`` of an (N, C, H, W) array, shape (N, C, H_out, W_out)."""
    rows, cols = _offset_slices(i, j, stride, out_hw)
    return a[:, :, rows, cols]


# -- the math, as pure functions --------------------------------------------------------
def batch_last_empty(shape: Tuple[int, int, int, int], dtype, zero: bool = False) -> np.ndarray:
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


def im2col(x: np.ndarray, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0) -> np.ndarray:
    """Gather every receptive field of ``x`` into a column.

    ``cols[(c, i, j), (p, q, n)] = x_pad[n, c, p·s_h + i, q·s_w + j]``

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    kernel_size, stride, padding : int or (int, int)

    Returns
    -------
    cols : ndarray of shape (C·k_h·k_w, H_out·W_out·N)
        Rows ordered (c, i, j) like the columns of ``W.reshape(O, -1)``; columns ordered
        (p, q, n), batch last.  Built by one strided copy per kernel offset ``(i, j)``,
        each moving runs of ``N`` (for stride 1: ``W_out·N``) contiguous numbers.
    """
    kh, kw = _pair(kernel_size, "im2col", "kernel_size", 1)
    stride = _pair(stride, "im2col", "stride", 1)
    padding = _pair(padding, "im2col", "padding", 0)
    n, c, h, w = x.shape
    out_hw = (conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1]))
    xp = pad_batch_last(x, padding)
    cols = np.empty((c, kh, kw) + out_hw + (n,), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(i, j, stride, out_hw)
            cols[:, i, j] = xp[:, rows, columns]
    return cols.reshape(c * kh * kw, out_hw[0] * out_hw[1] * n)


def col2im(cols: np.ndarray, x_shape: Tuple[int, int, int, int], kernel_size: IntPair,
           stride: IntPair = 1, padding: IntPair = 0) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every column entry back onto its input pixel.

    ``dx_pad[n, c, p·s_h + i, q·s_w + j] += cols[(c, i, j), (p, q, n)]``, then the padding
    is cut off.  Overlapping windows (stride < kernel) accumulate, which is what makes
    this the transpose of im2col: ``<im2col(x), D> = <x, col2im(D)>``.

    Parameters
    ----------
    cols : ndarray of shape (C·k_h·k_w, H_out·W_out·N)
    x_shape : (N, C, H, W), the shape of the image ``cols`` came from
    kernel_size, stride, padding : int or (int, int)

    Returns
    -------
    dx : ndarray of shape (N, C, H, W)
        A view in (C, H, W, N) memory order (see the module docstring).
    """
    kh, kw = _pair(kernel_size, "col2im", "kernel_size", 1)
    stride = _pair(stride, "col2im", "stride", 1)
    ph, pw = _pair(padding, "col2im", "padding", 0)
    n, c, h, w = x_shape
    out_hw = (conv_output_size(h, kh, stride[0], ph), conv_output_size(w, kw, stride[1], pw))
    d = cols.reshape((c, kh, kw) + out_hw + (n,))
    dxp = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(i, j, stride, out_hw)
            dxp[:, rows, columns] += d[:, i, j]
    return dxp[:, ph:ph + h, pw:pw + w, :].transpose(3, 0, 1, 2)


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                   stride: IntPair = 1, padding: IntPair = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``y = W ⋆ x + b`` (cross-correlation, as torch) by im2col and one GEMM.

    ``Y = W.reshape(O, -1) @ im2col(x) + b`` of shape (O, H_out·W_out·N), returned as
    ``y`` of shape (N, O, H_out, W_out) (a view in (O, H_out, W_out, N) memory order).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (O, C, k_h, k_w)
    bias : ndarray of shape (O,) or None
    stride, padding : int or (int, int)

    Returns
    -------
    y : ndarray of shape (N, O, H_out, W_out)
    cols : ndarray of shape (C·k_h·k_w, H_out·W_out·N), kept for the backward pass
    """
    o, _, kh, kw = weight.shape
    stride = _pair(stride, "conv2d_forward", "stride", 1)
    padding = _pair(padding, "conv2d_forward", "padding", 0)
    n, _, h, w = x.shape
    ho, wo = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    cols = im2col(x, (kh, kw), stride, padding)
    y = weight.reshape(o, -1) @ cols
    if bias is not None:
        y += bias[:, None]
    return y.reshape(o, ho, wo, n).transpose(3, 0, 1, 2), cols


def conv2d_backward(grad_out: np.ndarray, cols: np.ndarray, weight: np.ndarray,
                    x_shape: Tuple[int, int, int, int], stride: IntPair = 1, padding: IntPair = 0,
                    input_grad: bool = True):
    """Vector-Jacobian products of :func:`conv2d_forward` for ``G = ∂L/∂y``.

    With ``G_mat = G.transpose(1, 2, 3, 0).reshape(O, H_out·W_out·N)`` (a view when G is
    stored batch-last, as every gradient these layers return is):

    - ``∂L/∂W = G_mat colsᵀ``, reshaped to (O, C, k_h, k_w);
    - ``∂L/∂b = Σ_{n,p,q} G[n, o, p, q]``, shape (O,);
    - ``∂L/∂x = col2im(W_matᵀ G_mat)``, shape (N, C, H, W); skipped (None) when
      ``input_grad`` is False.

    Returns
    -------
    grad_x, grad_weight, grad_bias : ndarrays (grad_x None without ``input_grad``)
    """
    o = weight.shape[0]
    g = grad_out.transpose(1, 2, 3, 0).reshape(o, -1)
    w_mat = weight.reshape(o, -1)
    # (cols Gᵀ)ᵀ rather than G colsᵀ: the same numbers, but BLAS reads both long, thin
    # operands along their contiguous axis, which is faster here.
    grad_w = (cols @ g.T).T.reshape(weight.shape)
    grad_b = g.sum(axis=1)
    grad_x = col2im(w_mat.T @ g, x_shape, weight.shape[2:], stride, padding) if input_grad else None
    return grad_x, grad_w, grad_b


def pool_output_shape(h: int, w: int, kernel: Tuple[int, int], stride: Tuple[int, int]) -> Tuple[int, int]:
    """``((H - k_h) // s_h + 1, (W - k_w) // s_w + 1)`` (no padding, floor mode, as torch)."""
    return conv_output_size(h, kernel[0], stride[0], 0), conv_output_size(w, kernel[1], stride[1], 0)


def as_batch_last(a: np.ndarray) -> np.ndarray:
    """``a`` (N, C, H, W) itself if it is stored batch-last, else a batch-last copy.

    Elementwise numpy operations on arrays of *different* layouts cannot walk memory
    in one order and run several times slower; the pooling backward passes convert the
    incoming gradient once instead.
    """
    if a.transpose(1, 2, 3, 0).flags.c_contiguous:
        return a
    out = batch_last_empty(a.shape, a.dtype)
    out[...] = a
    return out


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
    y[...] = _window(x, 0, 0, stride, out_shape[2:])
    argmax = batch_last_empty(out_shape, np.uint8, zero=True)
    for k in range(1, kh * kw):
        v = _window(x, k // kw, k % kw, stride, out_shape[2:])
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
        view = _window(dx, k // kw, k % kw, stride, g.shape[2:])
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
    y[...] = _window(x, 0, 0, stride, out_shape[2:])
    for k in range(1, kh * kw):
        y += _window(x, k // kw, k % kw, stride, out_shape[2:])
    y *= 1.0 / (kh * kw)
    return y


def avgpool2d_backward(grad_out: np.ndarray, x_shape: Tuple[int, int, int, int],
                       kernel_size: Tuple[int, int], stride: Tuple[int, int]) -> np.ndarray:
    """``∂L/∂x[n, c, p·s_h + i, q·s_w + j] += G[n, c, p, q] / (k_h·k_w)`` for every offset."""
    kh, kw = kernel_size
    g = as_batch_last(grad_out) * (1.0 / (kh * kw))
    dx = batch_last_empty(x_shape, g.dtype, zero=True)
    for k in range(kh * kw):
        _window(dx, k // kw, k % kw, stride, g.shape[2:])[...] += g
    return dx


# -- explicit Jacobians for one example ---------------------------------------------------
def im2col_index_map(in_shape: Tuple[int, int, int], kernel_size: Tuple[int, int],
                     stride: Tuple[int, int], padding: Tuple[int, int]) -> np.ndarray:
    """Which input pixel each im2col entry of one example reads.

    ``index[(c, i, j), (p, q)]`` is the flat index ``c·H·W + h·W + w`` of the pixel
    ``x[c, h, w]`` with ``h = p·s_h + i - pad_h`` and ``w = q·s_w + j - pad_w``, or -1
    where that position is zero padding.  So ``cols = where(index >= 0, x.ravel()[index], 0)``.

    Returns
    -------
    index : ndarray of int64, shape (C·k_h·k_w, H_out·W_out)
    """
    c, h, w = in_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    ci, ii, jj, pp, qq = np.meshgrid(np.arange(c), np.arange(kh), np.arange(kw), np.arange(ho),
                                     np.arange(wo), indexing="ij")
    hh, ww = pp * sh + ii - ph, qq * sw + jj - pw
    index = ci * h * w + hh * w + ww
    index[(hh < 0) | (hh >= h) | (ww < 0) | (ww >= w)] = -1
    return index.reshape(c * kh * kw, ho * wo)


def conv2d_jacobians(x: np.ndarray, weight: np.ndarray, has_bias: bool,
                     stride: Tuple[int, int], padding: Tuple[int, int]) -> Dict[str, np.ndarray]:
    """Explicit Jacobians of one example's convolution ``y = W ⋆ x + b``, y flattened (o, p, q).

    - ``input`` (O·H_out·W_out, C·H·W), the "unrolled" (doubly block-Toeplitz) matrix,
      built from the im2col index map: ``J[(o, p, q), index[(c, i, j), (p, q)]] = W[o, c, i, j]``
      wherever the index is not padding.  Within one output pixel every (c, i, j) reads a
      different input pixel, so each entry is written once.
    - ``weight`` (O·H_out·W_out, O·C·k_h·k_w): ``∂y[o, p, q]/∂W[o', c, i, j] =
      δ_{oo'} cols[(c, i, j), (p, q)]``, i.e. ``I_O ⊗ colsᵀ`` (block diagonal).
    - ``bias`` (O·H_out·W_out, O): ``δ_{oo'}``, i.e. ``I_O ⊗ 1_{H_out·W_out}``.
    """
    o, c, kh, kw = weight.shape
    index = im2col_index_map(x.shape, (kh, kw), stride, padding)  # (CKK, P)
    p_out = index.shape[1]
    w_mat = weight.reshape(o, c * kh * kw)
    jac_in = np.zeros((o, p_out, x.size), dtype=weight.dtype)
    kk, pp = np.nonzero(index >= 0)
    jac_in[:, pp, index[kk, pp]] = w_mat[:, kk]
    cols = np.where(index >= 0, x.ravel()[np.maximum(index, 0)], 0).astype(weight.dtype)
    eye = np.eye(o, dtype=weight.dtype)
    jac = {"input": jac_in.reshape(o * p_out, x.size), "weight": np.kron(eye, cols.T)}
    if has_bias:
        jac["bias"] = np.kron(eye, np.ones((p_out, 1), dtype=weight.dtype))
    return jac


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
def _check_image_input(module: Module, x: np.ndarray, channels: Optional[int],
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


def _one_example(module: Module, x: np.ndarray, channels: Optional[int]) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or (channels is not None and x.shape[0] != channels):
        c = channels if channels is not None else "C"
        raise ValueError(f"{type(module).__name__}.jacobian: expected one example of shape ({c}, H, W), got {x.shape}")
    return x


class Conv2d(Module):
    """2-d convolution (cross-correlation) ``y = W ⋆ x + b`` (``torch.nn.Conv2d``).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride : int or (int, int), default=1
    padding : int or (int, int), default=0
        Zeros added on each side of both spatial axes.
    bias : bool, default=True
    init : str or callable, default="he_uniform"
        Weight initialiser (fans as torch: fan_in = in_channels·k_h·k_w); biases start at 0.
    init_kwargs : dict, optional
    rng : np.random.Generator, optional
    seed : int, default=0
    dtype : float32 or float64, default=float32
    needs_input_grad : bool, default=True
        False for a first layer fed with data: ``backward`` then computes only the
        parameter gradients and returns None, skipping ``∂L/∂x`` (a GEMM and col2im),
        which is what torch does for an input that does not require a gradient.

    Attributes
    ----------
    weight : Parameter of shape (out_channels, in_channels, k_h, k_w)
    bias : Parameter of shape (out_channels,) or None
    needs_input_grad : bool

    Shapes
    ------
    x : (N, in_channels, H, W) → y : (N, out_channels, H_out, W_out) with
    ``H_out = (H + 2·padding - k_h) // stride + 1``.  The output is a view in
    (out_channels, H_out, W_out, N) memory order (see :mod:`tinygrad_mnist.conv`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, bias: bool = True, init="he_uniform",
                 init_kwargs: Optional[dict] = None, rng: Optional[np.random.Generator] = None,
                 seed: int = 0, dtype=np.float32, needs_input_grad: bool = True):
        super().__init__()
        if int(in_channels) < 1 or int(out_channels) < 1:
            raise ValueError(f"Conv2d: in_channels and out_channels must be positive, got ({in_channels}, {out_channels})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "Conv2d", "kernel_size", 1)
        self.stride = _pair(stride, "Conv2d", "stride", 1)
        self.padding = _pair(padding, "Conv2d", "padding", 0)
        dtype = _resolve_dtype(dtype, "Conv2d")
        init_fn = initializer(init, **(init_kwargs or {}))
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(init_fn(shape, _resolve_rng(rng, seed), dtype))
        self.bias = Parameter(zeros((self.out_channels,), dtype=dtype)) if bias else None
        self.needs_input_grad = bool(needs_input_grad)
        self._cache = None  # (cols, input shape, output shape) of the last forward

    def forward(self, x: np.ndarray) -> np.ndarray:
        _check_image_input(self, x, self.in_channels, self.kernel_size, self.padding)
        y, cols = conv2d_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                 self.stride, self.padding)
        self._cache = (cols, x.shape, y.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        cols, x_shape, y_shape = require_cache(self, self._cache)
        check_grad_out(self, grad_out, y_shape)
        grad_x, grad_w, grad_b = conv2d_backward(grad_out, cols, self.weight.data, x_shape,
                                                 self.stride, self.padding, self.needs_input_grad)
        self.weight.grad += grad_w
        if self.bias is not None:
            self.bias.grad += grad_b
        return grad_x

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Explicit Jacobians for one example ``x`` of shape (C, H, W).

        Rows follow the flattened output (o, p, q); see :func:`conv2d_jacobians`:
        ``input`` (O·H_out·W_out, C·H·W) is the unrolled convolution matrix built from the
        im2col index map, ``weight`` is ``I_O ⊗ colsᵀ`` and ``bias`` ``I_O ⊗ 1``.
        """
        x = _one_example(self, x, self.in_channels)
        _check_image_input(self, x[None], self.in_channels, self.kernel_size, self.padding)
        return conv2d_jacobians(x, self.weight.data, self.bias is not None, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
                + ("" if self.needs_input_grad else ", needs_input_grad=False"))


class _Pool2d(Module):
    """Shared bookkeeping of MaxPool2d and AvgPool2d (``stride`` defaults to the kernel)."""

    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair] = None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, name, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, name, "stride", 1)
        self._cache = None

    def _check(self, x: np.ndarray) -> np.ndarray:
        return _check_image_input(self, x, None, self.kernel_size, (0, 0))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max over each ``k_h×k_w`` window, moved by ``stride`` (``torch.nn.MaxPool2d``).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows), as in torch.

    Shapes
    ------
    x : (N, C, H, W) → y : (N, C, (H - k_h) // s_h + 1, (W - k_w) // s_w + 1).
    The gradient goes to the first maximum of each window (row-major), as in torch.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        y, argmax = maxpool2d_forward(x, self.kernel_size, self.stride)
        self._cache = (argmax, x.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        argmax, x_shape = require_cache(self, self._cache)
        check_grad_out(self, grad_out, argmax.shape)
        return maxpool2d_backward(grad_out, argmax, x_shape, self.kernel_size, self.stride)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """∂y/∂x for one example (C, H, W): a 0/1 matrix selecting each window's maximum."""
        x = _one_example(self, x, None)
        self._check(x[None])
        return {"input": pool_input_jacobian(x, self.kernel_size, self.stride, "max")}


class AvgPool2d(_Pool2d):
    """Mean over each ``k_h×k_w`` window, moved by ``stride`` (``torch.nn.AvgPool2d``).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        y = avgpool2d_forward(x, self.kernel_size, self.stride)
        self._cache = (x.shape, y.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, y_shape = require_cache(self, self._cache)
        check_grad_out(self, grad_out, y_shape)
        return avgpool2d_backward(grad_out, x_shape, self.kernel_size, self.stride)

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """∂y/∂x for one example (C, H, W): ``1/(k_h·k_w)`` on every pixel of each window."""
        x = _one_example(self, x, None)
        self._check(x[None])
        return {"input": pool_input_jacobian(x, self.kernel_size, self.stride, "avg")}
