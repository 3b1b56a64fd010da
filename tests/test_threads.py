"""Elementwise work split across threads (tinygrad_mnist.nn.threads): the split forms give
bitwise the numbers of the one-thread forms, the thread budget is honoured, bad settings
are rejected."""

import os
import threading

import numpy as np
import pytest

from tinygrad_mnist.nn import Conv2d, MaxPool2d, ReLU
from tinygrad_mnist.nn.conv import col2im, im2col
from tinygrad_mnist.nn.threads import (MIN_SPLIT, chunks, elementwise, limit_threads, num_threads,
                                       parallel_for, set_num_threads)


@pytest.fixture
def two_threads():
    """Two threads for elementwise work, whatever this machine has; restored after."""
    set_num_threads(2)
    yield
    set_num_threads(None)


def batch_last(rng, shape, dtype=np.float32):
    """A random (N, C, H, W) array stored (C, H, W, N), as the image layers hand them out."""
    n, c, h, w = shape
    return rng.standard_normal((c, h, w, n)).astype(dtype).transpose(3, 0, 1, 2)


def run_both(fn):
    """``fn()`` with one thread and with two: both results, as lists of arrays."""
    with limit_threads(1):
        one = fn()
    two = fn()
    return [np.asarray(a) for a in one], [np.asarray(a) for a in two]


def assert_bitwise(one, two):
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_parallel_for_uses_two_threads_and_covers_every_index(two_threads):
    seen, threads = np.zeros(1000, int), set()

    def work(lo, hi):
        threads.add(threading.get_ident())
        seen[lo:hi] += 1

    parallel_for(work, 1000, MIN_SPLIT)
    assert len(threads) == 2
    np.testing.assert_array_equal(seen, 1)


def test_small_work_and_one_thread_run_inline(two_threads):
    calls = []
    parallel_for(lambda lo, hi: calls.append((lo, hi, threading.get_ident())), 10, MIN_SPLIT - 1)
    with limit_threads(1):
        parallel_for(lambda lo, hi: calls.append((lo, hi, threading.get_ident())), 10, 10 * MIN_SPLIT)
    me = threading.get_ident()
    assert calls == [(0, 10, me), (0, 10, me)]


@pytest.mark.parametrize("n, parts", [(10, 2), (9, 2), (3, 4), (1, 2), (17, 5)])
def test_chunks_partition_the_range(n, parts):
    ranges = chunks(n, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [hi - lo for lo, hi in ranges]
    assert max(sizes) - min(sizes) <= 1 and len(ranges) == min(n, parts)


def test_errors_propagate_from_the_pool(two_threads):
    def work(lo, hi):
        if lo > 0:
            raise RuntimeError(f"chunk {lo}")

    with pytest.raises(RuntimeError, match="chunk"):
        parallel_for(work, 4, MIN_SPLIT)


def test_limit_threads_caps_and_restores(two_threads):
    assert num_threads() == 2
    with limit_threads(1):
        assert num_threads() == 1
        with limit_threads(2):          # a limit never raises the budget
            assert num_threads() == 1
    with limit_threads(0):              # 0 / None: as it is
        assert num_threads() == 2
    assert num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_rejected(bad):
    with pytest.raises(ValueError, match="threads"):
        set_num_threads(bad)


def test_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    set_num_threads(None)
    assert num_threads() == 1


def test_a_forked_child_gets_a_working_pool(two_threads):
    parallel_for(lambda lo, hi: None, 4, MIN_SPLIT)   # the parent's pool exists
    pid = os.fork()
    if pid == 0:   # child: the inherited pool has no threads; a new one must be made
        out = np.zeros(8)

        def work(lo, hi):
            out[lo:hi] = 1

        parallel_for(work, 8, MIN_SPLIT)
        os._exit(0 if out.sum() == 8 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_elementwise_converts_other_layouts(two_threads):
    rng = np.random.default_rng(0)
    x = batch_last(rng, (64, 8, 16, 16))
    g = np.ascontiguousarray(rng.standard_normal(x.shape).astype(np.float32))   # NCHW order
    out = elementwise(lambda a, b, o: np.multiply(a, b, out=o), np.empty_like(x), x, g)
    np.testing.assert_array_equal(out, x * g)


@pytest.mark.parametrize("layout", ["batch_last", "nchw"])
def test_relu_split_is_bitwise_the_plain_form(two_threads, layout):
    rng = np.random.default_rng(1)
    x = batch_last(rng, (96, 8, 28, 28))
    if layout == "nchw":
        x = np.ascontiguousarray(x)
    g = batch_last(rng, x.shape)
    assert x.size >= MIN_SPLIT

    def passes():
        layer = ReLU()
        y = layer.forward(x)
        return y, layer.backward(g)

    one, two = run_both(passes)
    assert_bitwise(one, two)
    np.testing.assert_array_equal(two[0], np.maximum(x, 0))
    np.testing.assert_array_equal(two[1], g * (x > 0))


@pytest.mark.parametrize("channels", [1, 8])
def test_conv_and_pool_split_are_bitwise_the_plain_form(two_threads, channels):
    rng = np.random.default_rng(2)
    x = batch_last(rng, (64, channels, 28, 28))
    x[:, :, ::3, ::5] = 0.5          # ties inside pooling windows

    def passes():
        conv, pool = Conv2d(channels, 8, 3, padding=1, seed=0), MaxPool2d(2)
        y = pool.forward(conv.forward(x))
        dy = batch_last(np.random.default_rng(3), y.shape)
        dx = conv.backward(pool.backward(dy))
        return y, dx, conv.weight.grad, conv.bias.grad

    one, two = run_both(passes)
    assert_bitwise(one, two)


def test_im2col_col2im_split_are_bitwise_the_plain_form(two_threads):
    rng = np.random.default_rng(4)
    x = batch_last(rng, (64, 16, 14, 14))

    def both():
        cols = im2col(x, 3, 1, 1)
        return cols, col2im(cols, x.shape, 3, 1, 1)

    one, two = run_both(both)
    assert_bitwise(one, two)
