"""Time the pieces of the numpy course CNN one by one, at its three layer shapes (batch 64).

Run (about a minute)::

    python -m benchmarks.bench_conv_ops

For each convolution of the course CNN (1→8 on 28×28, 8→16 on 14×14, 16→32 on 7×7;
3×3, padding 1) it prints the median time of: im2col, the forward GEMM, the two backward
GEMMs (and the other orientation of the weight-gradient GEMM), col2im, max-pool forward
and backward, and the ReLU backward with the gradient in the same and in a different
memory layout.  It also times two designs the engine does *not* use, to show why:

- im2col / col2im on channel-major (C, N, H, W) buffers instead of batch-last (C, H, W, N):
  the strided copies then move rows of W_out pixels (7 in the last layer) instead of
  runs of W_out·N numbers;
- a max-pool whose argmax is kept with masked numpy operations (``np.copyto(...,
  where=)``, ``np.add(..., where=)``), which are slow, instead of arithmetic on masks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinygrad_mnist.nn import conv, image, pool

LAYERS = ((1, 8, 28), (8, 16, 14), (16, 32, 7))   # (C_in, C_out, H = W) of the course CNN


def median_ms(fn, repeats: int = 200) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


# -- the designs not taken ------------------------------------------------------------------
def im2col_channel_major(x, k=3, pad=1):
    n, c, h, w = x.shape
    xp = np.zeros((c, n, h + 2 * pad, w + 2 * pad), x.dtype)
    xp[:, :, pad:pad + h, pad:pad + w] = x.transpose(1, 0, 2, 3)
    cols = np.empty((c, k, k, n, h, w), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, :, i:i + h, j:j + w]
    return cols.reshape(c * k * k, -1)


def col2im_channel_major(d, shape, k=3, pad=1):
    n, c, h, w = shape
    d = d.reshape(c, k, k, n, h, w)
    dxp = np.zeros((c, n, h + 2 * pad, w + 2 * pad), d.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h, j:j + w] += d[:, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


def maxpool_masked(x):
    views = [x[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
    y = views[0].copy(order="K")
    argmax = np.zeros_like(y, dtype=np.uint8)
    for k in range(1, 4):
        np.copyto(argmax, k, where=views[k] > y)
        np.maximum(y, views[k], out=y)
    return y, argmax


def maxpool_backward_masked(g, argmax, shape):
    dx = image.batch_last_empty(shape, g.dtype, zero=True)
    for k in range(4):
        view = dx[:, :, k // 2::2, k % 2::2]
        np.add(view, g, out=view, where=argmax == k)
    return dx


# -- the measurements -------------------------------------------------------------------------
def run(batch: int = 64, repeats: int = 200, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    rows = []
    for c_in, c_out, size in LAYERS:
        t = _layer_timings(rng, batch, repeats, c_in, c_out, size)
        for name, ms in t.items():
            rows.append({"layer": f"conv {c_in}→{c_out} on {size}×{size}", "operation": name, "ms": ms})
    return rows


def _layer_timings(rng, batch: int, repeats: int, c_in: int, c_out: int, size: int) -> dict:
    """The timings of one layer (a function of its own, so each lambda closes over this call's arrays)."""
    shape = (batch, c_in, size, size)
    x = image.batch_last_empty(shape, np.float32)
    x[...] = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
    b = rng.standard_normal(c_out, dtype=np.float32)
    y, cols = conv.conv2d_forward(x, w, b, 1, 1)
    g = image.batch_last_empty(y.shape, np.float32)
    g[...] = rng.standard_normal(y.shape, dtype=np.float32)
    g_mat = g.transpose(1, 2, 3, 0).reshape(c_out, -1)
    w_mat = w.reshape(c_out, -1)
    d_cols = w_mat.T @ g_mat
    x_nchw = np.ascontiguousarray(x)
    g_nchw = np.ascontiguousarray(g)
    t = {
        "im2col (batch-last)": median_ms(lambda: conv.im2col(x, 3, 1, 1), repeats),
        "im2col (channel-major, not used)": median_ms(lambda: im2col_channel_major(x_nchw), repeats),
        "forward GEMM W·cols": median_ms(lambda: w_mat @ cols, repeats),
        "dW GEMM (cols·Gᵀ)ᵀ (used)": median_ms(lambda: (cols @ g_mat.T).T, repeats),
        "dW GEMM G·colsᵀ": median_ms(lambda: g_mat @ cols.T, repeats),
        "dcols GEMM Wᵀ·G": median_ms(lambda: w_mat.T @ g_mat, repeats),
        "col2im (batch-last)": median_ms(lambda: conv.col2im(d_cols, shape, 3, 1, 1), repeats),
        "col2im (channel-major, not used)": median_ms(lambda: col2im_channel_major(d_cols, shape), repeats),
        "ReLU backward, same layouts": median_ms(lambda: g * (y > 0).astype(np.float32), repeats),
        "ReLU backward, NCHW grad vs batch-last": median_ms(lambda: g_nchw * (y > 0).astype(np.float32), repeats),
    }
    if size % 2 == 0:
        p, argmax = pool.maxpool2d_forward(y, (2, 2), (2, 2))
        gp = image.batch_last_empty(p.shape, np.float32)
        gp[...] = 1.0
        _, argmax_m = maxpool_masked(y)
        t.update({
            "maxpool forward (used)": median_ms(lambda: pool.maxpool2d_forward(y, (2, 2), (2, 2)), repeats),
            "maxpool forward, masked ops (not used)": median_ms(lambda: maxpool_masked(y), repeats),
            "maxpool backward (used)": median_ms(
                lambda: pool.maxpool2d_backward(gp, argmax, y.shape, (2, 2), (2, 2)), repeats),
            "maxpool backward, masked add (not used)": median_ms(
                lambda: maxpool_backward_masked(gp, argmax_m, y.shape), repeats),
        })
    return t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (via threadpoolctl)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from benchmarks.machine import blas_description

    with threadpool_limits(args.threads, user_api="blas"):
        print(f"numpy {np.__version__}, BLAS: {blas_description()}; batch {args.batch}, "
              f"median of {args.repeats} calls")
        rows = run(args.batch, args.repeats)
    layer = None
    for r in rows:
        if r["layer"] != layer:
            layer = r["layer"]
            print(f"\n{layer}")
        print(f"  {r['operation']:44s} {r['ms']:7.3f} ms")
    return rows


if __name__ == "__main__":
    main()
