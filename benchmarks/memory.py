"""Peak resident memory of one side, measured in a fresh child process.

::

    python -m benchmarks.memory --side numpy --model course-cnn --batch-size 64

The child loads the data (uint8, as the harness does), builds that side's model only
(the numpy child never imports torch), trains ``--batches`` steps (0: one whole epoch),
computes the test accuracy in batches of the same size, and prints one JSON line with its peak resident set size
(``VmHWM`` on Linux, see :func:`_rss_mb`), so the figure holds the interpreter, the
libraries that side loads, the dataset and the training buffers, and nothing of the
other side.  :func:`peak_rss_mb` runs it from the harness.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from typing import Optional


def _rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process image only.
    (``ru_maxrss`` would do elsewhere, but on Linux it survives fork + exec, so a child
    started by a large parent reports at least the parent's size.)
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux and in bytes on macOS
    scale = 1 / (1024 * 1024) if sys.platform == "darwin" else 1 / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child_main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", choices=["numpy", "torch"], required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, default=100, help="training steps (0: one epoch)")
    p.add_argument("--data", default="mnist", choices=["mnist", "synthetic"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--train-size", type=int, default=0)
    p.add_argument("--test-size", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    a = p.parse_args(argv)

    from tinygrad_mnist.data import DataLoader

    from .machine import thread_limit
    from .models import load_data, model_by_name
    from .steps import make_sides

    baseline = _rss_mb()
    if a.side == "torch":
        import torch  # noqa: F401  (imported before the thread limit so it applies to torch)
    with thread_limit(a.threads):
        bench_model = model_by_name(a.model)
        train, test = load_data(a.data, a.data_dir, a.train_size, a.test_size, a.seed)
        side = make_sides(bench_model, a.seed, a.lr, a.momentum, which=(a.side,))[a.side]
        loader = DataLoader(train, a.batch_size, shuffle=True, seed=a.seed, flatten=bench_model.flatten)
        side.epoch(loader, 0, a.batches if a.batches > 0 else -1)
        accuracy = side.accuracy(test, bench_model.flatten, a.batch_size)
    result = {"side": a.side, "model": a.model, "batch_size": a.batch_size, "peak_rss_mb": _rss_mb(),
              "interpreter_rss_mb": baseline, "accuracy": accuracy, "torch_loaded": "torch" in sys.modules}
    print(json.dumps(result))
    return result


def peak_rss_mb(side: str, model: str, batch_size: int, threads: int, batches: int, data: str,
                data_dir: Optional[str], train_size: int, test_size: int, seed: int = 0,
                lr: float = 0.05, momentum: float = 0.9, timeout: float = 900) -> dict:
    """Run :func:`child_main` in a new interpreter; its JSON result (``peak_rss_mb`` ...)."""
    cmd = [sys.executable, "-m", "benchmarks.memory", "--side", side, "--model", model,
           "--batch-size", str(batch_size), "--threads", str(threads), "--batches", str(batches),
           "--data", data, "--train-size", str(train_size), "--test-size", str(test_size),
           "--seed", str(seed), "--lr", str(lr), "--momentum", str(momentum)]
    if data_dir:
        cmd += ["--data-dir", str(data_dir)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.memory ({side}, {model}) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    child_main()
