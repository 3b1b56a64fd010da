"""The machine: its description, thread limits for both sides, and its float32 GEMM peak."""

from __future__ import annotations

import os
import platform
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, Optional

import numpy as np


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_description() -> str:
    """numpy's BLAS library, version, kernel family and thread count (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(libs) or "none found"


def describe_machine() -> Dict[str, object]:
    """Everything that makes a timing comparable: CPU, cores, libraries, load."""
    cores: Optional[int]
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count()
    desc: Dict[str, object] = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": cores,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": blas_description(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import torch

        desc["torch"] = torch.__version__
    except ImportError:
        desc["torch"] = None
    return desc


@contextmanager
def thread_limit(n: int):
    """Both sides on ``n`` threads: threadpoolctl limits numpy's BLAS (and any OpenMP
    runtime loaded), ``torch.set_num_threads(n)`` limits torch when it is imported."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=int(n)):
        if torch is not None:
            torch.set_num_threads(int(n))
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old)


def gemm_gflops(n: int = 1024, repeats: int = 10, backend: str = "numpy") -> float:
    """Best float32 ``n×n @ n×n`` throughput in GFLOP/s (``2n³`` flops per product).

    Run it inside :func:`thread_limit` to measure the throughput the models get.  The
    best of ``repeats`` is the machine's peak (a busy neighbour only slows runs down).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    product: Callable[[], object]
    if backend == "torch":
        import torch

        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        product = lambda: torch.mm(ta, tb, out=tout)  # noqa: E731
    else:
        product = lambda: np.matmul(a, b, out=out)  # noqa: E731
    product()  # warm-up: thread pool, page faults
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def cache_sizes() -> Dict[str, int]:
    """Data and unified cache sizes in bytes of CPU 0 by level ("L1d", "L2", "L3"), from
    /sys/devices/system/cpu/cpu0/cache (Linux); empty elsewhere."""
    sizes: Dict[str, int] = {}
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(e for e in os.listdir(root) if e.startswith("index"))
    except OSError:
        return sizes
    for entry in entries:
        try:
            with open(f"{root}/{entry}/level") as f:
                level = f.read().strip()
            with open(f"{root}/{entry}/type") as f:
                kind = f.read().strip()
            with open(f"{root}/{entry}/size") as f:
                text = f.read().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        value = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
        sizes[f"L{level}" + ("d" if kind == "Data" else "")] = value
    return sizes


def copy_bandwidth_gbs(nbytes: int, repeats: int = 10) -> float:
    """Best ``np.copyto`` throughput between two float32 arrays of ``nbytes`` each, in GB/s,
    counting the bytes read and the bytes written: ``2·nbytes / t``.

    One thread, as numpy's elementwise operations run.  Arrays far beyond the last-level
    cache measure memory; arrays of a phase's size, copied again and again, measure the
    cache they fit in (each repeat finds them where the previous one left them).  The best
    of ``repeats`` is the machine's figure (a busy neighbour only slows runs down).
    """
    n = max(int(nbytes) // 4, 1)
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # warm-up: page faults
    best = float("inf")
    for _ in range(max(int(repeats), 1)):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n * 4 / best / 1e9


def out_of_cache_bytes(cap: int = 2**30) -> int:
    """An array size well beyond the last-level cache: twice it, at least 64 MiB, at most ``cap``."""
    llc = max(cache_sizes().values(), default=32 * 2**20)
    return int(min(max(2 * llc, 64 * 2**20), cap))
