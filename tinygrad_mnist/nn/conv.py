"""Convolution: Conv2d as im2col + one GEMM (pooling lives in :mod:`.pool`).

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

The derivation (im2col as a Linear layer per pixel, col2im as its adjoint) is in
docs/jacobians.md#conv.

Notes
-----
Memory layout, batch last: the layers take and return arrays of shape ``(N, C, H, W)``
like torch, but *store* them as (C, H, W, N) and hand out the ``.transpose(3, 0, 1, 2)``
view (numpy treats a view like any other array; elementwise layers keep its layout).
``W_mat @ cols`` produces (O, H_out·W_out·N) directly, so the output costs no transpose
copy, and the strided copies of im2col, col2im and pooling move contiguous runs of ``N``
numbers (``W_out·N`` for stride 1) instead of rows of ``W_out`` pixels.  Measured at the
course CNN's three layer shapes, batch 64 (``python -m benchmarks.bench_conv_ops``,
docs/performance.md): im2col 1.4-3.4× and col2im 1.3-3.2× faster than channel-major
buffers; the numpy/torch epoch ratio went from 1.52× to 1.36-1.38× on the quick
benchmark.  ``Flatten`` copies into NCHW order, so a following ``Linear`` sees exactly
PyTorch's feature order.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .image import IntPair, check_image_input, conv_output_size, int_pair, offset_slices, one_example, pad_batch_last
from .init import Initializer, initializer, zeros
from .module import Module, Parameter, check_grad_out, require_cache, resolve_dtype, resolve_rng


# -- the math, as pure functions --------------------------------------------------------
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
    kh, kw = int_pair(kernel_size, "im2col", "kernel_size", 1)
    stride = int_pair(stride, "im2col", "stride", 1)
    padding = int_pair(padding, "im2col", "padding", 0)
    n, c, h, w = x.shape
    out_hw = (conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1]))
    xp = pad_batch_last(x, padding)
    cols = np.empty((c, kh, kw) + out_hw + (n,), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = offset_slices(i, j, stride, out_hw)
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
    kh, kw = int_pair(kernel_size, "col2im", "kernel_size", 1)
    stride = int_pair(stride, "col2im", "stride", 1)
    ph, pw = int_pair(padding, "col2im", "padding", 0)
    n, c, h, w = x_shape
    out_hw = (conv_output_size(h, kh, stride[0], ph), conv_output_size(w, kw, stride[1], pw))
    d = cols.reshape((c, kh, kw) + out_hw + (n,))
    dxp = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = offset_slices(i, j, stride, out_hw)
            dxp[:, rows, columns] += d[:, i, j]
    return dxp[:, ph:ph + h, pw:pw + w, :].transpose(3, 0, 1, 2)


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                   stride: IntPair = 1, padding: IntPair = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``y = W ⋆ x + b`` (cross-correlation, as torch) by im2col and one GEMM.

    The definition, with a loop per output pixel, is
    :func:`~tinygrad_mnist.nn.conv_reference.conv2d_forward_loops`; the tests hold this to it.

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
    stride = int_pair(stride, "conv2d_forward", "stride", 1)
    padding = int_pair(padding, "conv2d_forward", "padding", 0)
    n, _, h, w = x.shape
    ho, wo = conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1])
    cols = im2col(x, (kh, kw), stride, padding)
    y = weight.reshape(o, -1) @ cols
    if bias is not None:
        y += bias[:, None]
    return y.reshape(o, ho, wo, n).transpose(3, 0, 1, 2), cols


def conv2d_backward(grad_out: np.ndarray, cols: np.ndarray, weight: np.ndarray,
                    x_shape: Tuple[int, int, int, int], stride: IntPair = 1, padding: IntPair = 0,
                    input_grad: bool = True) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
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
    # operands along their contiguous axis (0.33 vs 0.64 ms in the course CNN's 8→16 layer,
    # docs/performance.md).
    grad_w = (cols @ g.T).T.reshape(weight.shape)
    grad_b = g.sum(axis=1)
    grad_x = col2im(w_mat.T @ g, x_shape, weight.shape[2:], stride, padding) if input_grad else None
    return grad_x, grad_w, grad_b


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


# -- the layer ---------------------------------------------------------------------------
class Conv2dCache(NamedTuple):
    """What ``Conv2d.backward`` needs from the forward pass."""

    cols: np.ndarray                  # im2col(x), (C·k_h·k_w, H_out·W_out·N)
    x_shape: Tuple[int, int, int, int]  # (N, C, H, W)
    y_shape: Tuple[int, int, int, int]  # (N, O, H_out, W_out)


class Conv2d(Module):
    """Forward:  y = W ⋆ x + b;  as a matrix product Y = W_mat cols + b,  cols = im2col(x) = S x
    Jacobian: ∂y/∂W = I_O ⊗ colsᵀ,  ∂y/∂b = I_O ⊗ 1,  ∂y/∂x = (W_mat ⊗ I) S
    VJP:      ∂L/∂W = G colsᵀ,  ∂L/∂b = Σ_pixels G,  ∂L/∂x = col2im(W_matᵀ G)

    2-d cross-correlation as ``torch.nn.Conv2d`` (the kernel is not flipped), with
    ``W_mat = W.reshape(O, -1)``, ``S`` the 0/1 matrix that im2col applies and
    ``G = ∂L/∂y`` reshaped to (O, H_out·W_out·N).  Derivation: docs/jacobians.md#conv.

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
        parameter gradients and returns None (see Notes).

    Attributes
    ----------
    weight : Parameter of shape (out_channels, in_channels, k_h, k_w)
    bias : Parameter of shape (out_channels,) or None
    needs_input_grad : bool
    cache : Conv2dCache or None
        ``(cols, x_shape, y_shape)`` of the last ``forward``, overwritten on each call.

    Shapes
    ------
    x : (N, in_channels, H, W) → y : (N, out_channels, H_out, W_out) with
    ``H_out = (H + 2·padding - k_h) // stride + 1``.

    Notes
    -----
    The output is a view in (out_channels, H_out, W_out, N) memory order, batch last (see
    the Notes of :mod:`tinygrad_mnist.nn.conv`).  ``needs_input_grad=False`` skips
    ``∂L/∂x`` (a GEMM and col2im), as torch does for an input that does not require a
    gradient: the full-MNIST numpy/torch epoch ratio of the course CNN went from 1.49× to
    1.39× (docs/performance.md).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, bias: bool = True, init: Union[str, Initializer] = "he_uniform",
                 init_kwargs: Optional[dict] = None, rng: Optional[np.random.Generator] = None,
                 seed: int = 0, dtype: DTypeLike = np.float32, needs_input_grad: bool = True) -> None:
        super().__init__()
        if int(in_channels) < 1 or int(out_channels) < 1:
            raise ValueError(f"Conv2d: in_channels and out_channels must be positive, got ({in_channels}, "
                             f"{out_channels})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = int_pair(kernel_size, "Conv2d", "kernel_size", 1)
        self.stride = int_pair(stride, "Conv2d", "stride", 1)
        self.padding = int_pair(padding, "Conv2d", "padding", 0)
        dtype = resolve_dtype(dtype, "Conv2d")
        init_fn = initializer(init, **(init_kwargs or {}))
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(init_fn(shape, resolve_rng(rng, seed, "Conv2d"), dtype))
        self.bias = Parameter(zeros((self.out_channels,), dtype=dtype)) if bias else None
        self.needs_input_grad = bool(needs_input_grad)
        self.cache: Optional[Conv2dCache] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_image_input(self, x, self.in_channels, self.kernel_size, self.padding)
        y, cols = conv2d_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                 self.stride, self.padding)
        self.cache = Conv2dCache(cols, x.shape, y.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        cols, x_shape, y_shape = require_cache(self, self.cache)
        check_grad_out(self, grad_out, y_shape)
        grad_x, grad_w, grad_b = conv2d_backward(grad_out, cols, self.weight.data, x_shape,
                                                 self.stride, self.padding, self.needs_input_grad)
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
        return grad_x

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Explicit Jacobians for one example ``x`` of shape (C, H, W).

        Rows follow the flattened output (o, p, q); see :func:`conv2d_jacobians`:
        ``input`` (O·H_out·W_out, C·H·W) is the unrolled convolution matrix built from the
        im2col index map, ``weight`` is ``I_O ⊗ colsᵀ`` and ``bias`` ``I_O ⊗ 1``.
        """
        x = one_example(self, x, self.in_channels)
        check_image_input(self, x[None], self.in_channels, self.kernel_size, self.padding)
        return conv2d_jacobians(x, self.weight.data, self.bias is not None, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
                + ("" if self.needs_input_grad else ", needs_input_grad=False"))
