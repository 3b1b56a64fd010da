"""The convolution as its definition: loops over every output pixel, forward and backward.

These are the readable reference of :func:`~tinygrad_mnist.nn.conv.conv2d_forward` and
:func:`~tinygrad_mnist.nn.conv.conv2d_backward` (im2col and one matrix product each), kept
beside them as numpy-ml keeps ``_backward_naive`` beside ``_bwd``; ``tests/test_conv.py``
holds the fast pair to these. Nothing else calls them: they are slow on purpose.

Forward (cross-correlation, as ``torch.nn.functional.conv2d``), for each output pixel (p, q):

    y[n, o, p, q] = b[o] + Σ_{c, i, j} w[o, c, i, j] · x_pad[n, c, p·s_h + i, q·s_w + j]

Backward, for ``g = ∂L/∂y``, the same sum read the other way:

    ∂L/∂w[o, c, i, j] = Σ_{n, p, q} g[n, o, p, q] · x_pad[n, c, p·s_h + i, q·s_w + j]
    ∂L/∂b[o]          = Σ_{n, p, q} g[n, o, p, q]
    ∂L/∂x_pad[n, c, p·s_h + i, q·s_w + j] += Σ_o g[n, o, p, q] · w[o, c, i, j]

and ``∂L/∂x`` is ``∂L/∂x_pad`` without its padding.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .image import IntPair, conv_output_size, int_pair


def conv2d_forward_loops(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                         stride: IntPair = 1, padding: IntPair = 0) -> np.ndarray:
    """``y = w ⋆ x + b`` one output pixel at a time.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W)
    weight : ndarray of shape (O, C, k_h, k_w)
    bias : ndarray of shape (O,) or None
    stride, padding : int or (int, int)

    Returns
    -------
    y : ndarray of shape (N, O, H_out, W_out)
    """
    (sh, sw) = int_pair(stride, "conv2d_forward_loops", "stride", 1)
    (ph, pw) = int_pair(padding, "conv2d_forward_loops", "padding", 0)
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    y = np.zeros((n, o, ho, wo), dtype=np.result_type(x, weight))
    for p in range(ho):
        for q in range(wo):
            patch = x_pad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]      # (N, C, k_h, k_w)
            y[:, :, p, q] = np.einsum("ncij,ocij->no", patch, weight)
    return y if bias is None else y + bias[None, :, None, None]


def conv2d_backward_loops(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntPair = 1,
                          padding: IntPair = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(∂L/∂x, ∂L/∂w, ∂L/∂b)`` for ``g = ∂L/∂y`` of shape (N, O, H_out, W_out), one
    output pixel at a time: each pixel's gradient flows back to the window it was read from."""
    (sh, sw) = int_pair(stride, "conv2d_backward_loops", "stride", 1)
    (ph, pw) = int_pair(padding, "conv2d_backward_loops", "padding", 0)
    _, _, h, w = x.shape
    _, _, kh, kw = weight.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    grad_x_pad = np.zeros_like(x_pad)
    grad_w = np.zeros_like(weight)
    for p in range(grad_out.shape[2]):
        for q in range(grad_out.shape[3]):
            window = (slice(None), slice(None), slice(p * sh, p * sh + kh), slice(q * sw, q * sw + kw))
            g = grad_out[:, :, p, q]                                          # (N, O)
            grad_w += np.einsum("no,ncij->ocij", g, x_pad[window])
            grad_x_pad[window] += np.einsum("no,ocij->ncij", g, weight)
    grad_b = grad_out.sum(axis=(0, 2, 3))
    return grad_x_pad[:, :, ph:ph + h, pw:pw + w], grad_w, grad_b
