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
