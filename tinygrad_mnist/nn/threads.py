"""Elementwise work on several cores: split a big array operation into chunks and run
them on a small persistent pool of threads.

BLAS already runs every GEMM on all cores, but numpy's ufuncs and copies (activations,
masks, pooling windows, im2col copies, optimiser updates) run on one.  They release the
GIL, so two threads working on the two halves of an array run side by side.  Each element
is computed by the same operation whichever thread does it, so the results are **bitwise
identical** to the one-thread form; only work that is independent per element (or per
channel) is ever split, never a reduction.

How many threads: ``set_num_threads(n)`` / ``with limit_threads(n):``, read by
``num_threads()``.  The default is the number of CPUs this process may use, capped by
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` when they are set, the same budget numpy's
BLAS takes.  With one thread every call runs inline, exactly the plain code.

Arrays below ``MIN_SPLIT`` elements are never split: waking a thread costs ~10-30 µs,
more than a small ufunc takes.  Measured gains are in docs/performance.md.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np

MIN_SPLIT = 1 << 17   # elements; below this one thread is faster

_state = threading.local()
_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None
_pool_pid: Optional[int] = None
_pool_size = 0
_default: Optional[int] = None


def default_num_threads() -> int:
    """CPUs this process may use, capped by ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        n = os.cpu_count() or 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            n = min(n, int(value))
    return max(1, n)


def num_threads() -> int:
    """The number of threads elementwise work may use now (1: everything inline)."""
    limit = getattr(_state, "limit", None)
    if limit is not None:
        return limit
    return _default if _default is not None else default_num_threads()


def set_num_threads(n: Optional[int]) -> None:
    """Use ``n`` threads for elementwise work from now on (None: back to the default)."""
    global _default
    _default = None if n is None else _checked(n)


@contextlib.contextmanager
def limit_threads(n: Optional[int]):
    """``with limit_threads(n):`` at most ``n`` threads inside the block, in this thread
    (None or 0: leave the setting as it is)."""
    if not n:
        yield
        return
    before = getattr(_state, "limit", None)
    _state.limit = min(_checked(n), num_threads())
    try:
        yield
    finally:
        _state.limit = before


def _checked(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"number of threads must be an int >= 1, got {n!r}")
    return int(n)


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, made again after a fork (a child process inherits no threads)."""
    global _pool, _pool_pid, _pool_size
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinygrad-mnist")
            _pool_pid, _pool_size = os.getpid(), workers
        return _pool


def chunks(n: int, parts: int):
    """``parts`` contiguous ``(lo, hi)`` ranges covering ``range(n)``, sizes differing by ≤ 1."""
    bounds = [n * k // parts for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def parallel_for(work: Callable[[int, int], None], n: int, size: int) -> None:
    """Run ``work(lo, hi)`` over chunks of ``range(n)``: inline when ``size`` (the number
    of elements the whole operation touches) is below ``MIN_SPLIT`` or one thread is set,
    else one chunk per thread, this thread doing the first.  ``work`` must write only
    its own chunk's part of the output."""
    parts = min(num_threads(), n)
    if parts <= 1 or size < MIN_SPLIT:
        work(0, n)
        return
    ranges = chunks(n, parts)
    futures = [_executor(parts - 1).submit(work, lo, hi) for lo, hi in ranges[1:]]
    work(*ranges[0])
    for f in futures:
        f.result()


def flat(a: np.ndarray) -> np.ndarray:
    """The elements of ``a`` in memory order as a 1-D view (``a.ravel('K')``, checked to be a view)."""
    v = a.ravel(order="K")
    if a.size and not np.shares_memory(v, a):
        raise ValueError("flat: the array is not contiguous in any axis order")
    return v


def same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape, and the same memory order of the elements (strides in items)."""
    return a.shape == b.shape and [s // a.itemsize for s in a.strides] == [s // b.itemsize for s in b.strides]


def elementwise(func: Callable[..., None], out: np.ndarray, *inputs: np.ndarray) -> np.ndarray:
    """``func(*input_chunks, out_chunk)`` over chunks of the flat memory of ``out``.

    Every input should have ``out``'s shape and memory order (:func:`same_layout`), so chunk ``k`` of
    each names the same elements.  Arrays of another layout are copied into it first.
    Returns ``out``.
    """
    flats = []
    for a in inputs:
        if not same_layout(a, out):
            same = np.empty_like(out, dtype=a.dtype)
            same[...] = a
            a = same
        flats.append(flat(a))
    out_flat = flat(out)

    def work(lo, hi):
        func(*(f[lo:hi] for f in flats), out_flat[lo:hi])

    parallel_for(work, out_flat.size, out_flat.size)
    return out
