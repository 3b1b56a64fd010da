"""One training epoch of the course CNN: numpy engine vs PyTorch, same machine, same run.

Run (2 cores shared; take the lock so the timings are honest)::

    flock /tmp/cpu-heavy.lock python -m benchmarks.bench_cnn                  # full MNIST, 5 epochs each
    flock /tmp/cpu-heavy.lock python -m benchmarks.bench_cnn --profile        # + where numpy's time goes
    python -m benchmarks.bench_cnn --quick                                    # 2,048 images, a smoke test

Method: both models are built from the same ``CourseCNNSpec().layers()`` description
(torch via ``torch_baselines.models.build``), start from the same weights (numpy's, copied
over), train with SGD + momentum on mini-batches of 64 drawn in the same order from one
``tinygrad_mnist.data.DataLoader`` (``set_epoch(e)`` replays epoch ``e`` for each side),
and alternate: numpy epoch 0, torch epoch 0, numpy epoch 1, torch epoch 1, ...  Torch uses
as many threads as numpy's BLAS (2 here).  Neither side computes the gradient with respect
to the images (torch: they do not require it; numpy: ``needs_input_grad=False`` on the
first convolution; ``--input-grad`` makes numpy compute it anyway).  Reported: every epoch's seconds, the medians
and the ratio numpy / torch of the medians.  Each side's time includes turning the uint8
batch into floats (and, for torch, ``torch.from_numpy``); evaluation is not timed.

``--profile`` times one more numpy epoch with explicit timers wrapped around the engine's
functions (im2col, the GEMMs, col2im, pooling, activations, linear, loss, optimiser,
data) and prints the breakdown; the timers add a little overhead of their own.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Dict, List

import numpy as np

from tinygrad_mnist.cnn import build_course_cnn
from tinygrad_mnist.data import DataLoader, load_mnist
from tinygrad_mnist.losses import SoftmaxCrossEntropy
from tinygrad_mnist.models import CourseCNNSpec
from tinygrad_mnist.optim import SGD


@dataclass
class BenchConfig:
    """What the benchmark runs; every field is a command-line flag (``--batch-size 64``)."""

    batch_size: int = 64
    epochs: int = 5          # timed epochs per framework (interleaved)
    subset: int = 0          # 0: all 60,000 training images; else the first ``subset``
    threads: int = 2         # BLAS threads for numpy and torch.set_num_threads for torch
    lr: float = 0.05
    momentum: float = 0.9
    seed: int = 0
    activation: str = "relu"
    warmup_batches: int = 20  # untimed steps on each side first (allocator, thread pools)
    input_grad: bool = False  # numpy also computes ∂L/∂(images), which torch skips (no requires_grad)
    profile: bool = False
    out: str = ""            # write a JSON of the results here when given

    def quick(self) -> "BenchConfig":
        self.subset, self.epochs, self.warmup_batches = 2048, 2, 5
        return self


def set_blas_threads(n: int) -> str:
    """Limit numpy's BLAS to ``n`` threads (via threadpoolctl when installed); describe it."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return f"BLAS threads not set (threadpoolctl missing); OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    threadpool_limits(n, user_api="blas")
    libs = [f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)"
            for i in threadpool_info() if i["user_api"] == "blas"]
    return ", ".join(libs)


# -- one epoch on each side -------------------------------------------------------------------
def numpy_epoch(model, loss, opt, loader: DataLoader, epoch: int, max_batches: int = -1) -> float:
    """Train one epoch; returns the mean batch loss."""
    model.train()
    loader.set_epoch(epoch)
    total, n = 0.0, 0
    for b, (x, y) in enumerate(loader):
        if b == max_batches:
            break
        opt.zero_grad()
        total += loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
        n += 1
    return total / n


def torch_epoch(model, loss, opt, loader: DataLoader, epoch: int, max_batches: int = -1) -> float:
    import torch

    model.train()
    loader.set_epoch(epoch)
    total, n = 0.0, 0
    for b, (x, y) in enumerate(loader):
        if b == max_batches:
            break
        opt.zero_grad(set_to_none=True)
        value = loss(model(torch.from_numpy(x)), torch.from_numpy(y))
        value.backward()
        opt.step()
        total += value.item()
        n += 1
    return total / n


# -- explicit timers for the profile ------------------------------------------------------------
class Timers:
    """Exclusive wall time per label, for functions wrapped with :meth:`wrap`.

    A wrapped call's time is charged to its label minus the time of the wrapped calls it
    makes itself (so ``conv2d_forward``'s own label is its GEMM and bias, not im2col).
    """

    def __init__(self):
        self.seconds: Dict[str, float] = {}
        self.calls: Dict[str, int] = {}
        self._stack: List[float] = []
        self._patches = []

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            timers._stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                children = timers._stack.pop()
                timers.seconds[label] = timers.seconds.get(label, 0.0) + elapsed - children
                timers.calls[label] = timers.calls.get(label, 0) + 1
                if timers._stack:
                    timers._stack[-1] += elapsed

        self._patches.append((owner, name, original))
        setattr(owner, name, timed)

    def wrap_iterator(self, owner, name: str, label: str) -> None:
        """Like :meth:`wrap` for a method returning an iterator: times each ``next()``."""
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            it = iter(original(*args, **kwargs))
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    timers.seconds[label] = timers.seconds.get(label, 0.0) + time.perf_counter() - t0
                yield item

        self._patches.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches.clear()


def profile_numpy_epoch(model, loss, opt, loader, epoch, max_batches=-1):
    """One numpy epoch with timers around the engine's pieces; returns (total s, {label: s})."""
    import tinygrad_mnist.activations as acts
    import tinygrad_mnist.conv as conv
    import tinygrad_mnist.layers as layers
    import tinygrad_mnist.losses as losses
    import tinygrad_mnist.module as module
    import tinygrad_mnist.optim as optim

    t = Timers()
    # the pure functions (module-level, looked up at call time, so wrapping them works)
    t.wrap(conv, "im2col", "conv forward: im2col (pad + strided copies)")
    t.wrap(conv, "conv2d_forward", "conv forward: GEMM W·cols + bias")
    t.wrap(conv, "col2im", "conv backward: col2im (strided adds)")
    t.wrap(conv, "conv2d_backward", "conv backward: GEMMs dW, dcols + db")
    t.wrap(conv, "maxpool2d_forward", "maxpool forward")
    t.wrap(conv, "maxpool2d_backward", "maxpool backward")
    # layer methods: what is left in them is bookkeeping (checks, caches)
    t.wrap(conv.Conv2d, "forward", "layer bookkeeping (checks, caches)")
    t.wrap(conv.Conv2d, "backward", "layer bookkeeping (checks, caches)")
    t.wrap(conv.MaxPool2d, "forward", "layer bookkeeping (checks, caches)")
    t.wrap(conv.MaxPool2d, "backward", "layer bookkeeping (checks, caches)")
    for cls in (acts.ReLU, acts.Tanh, acts.Sigmoid):
        t.wrap(cls, "forward", "activations")
    t.wrap(acts._Elementwise, "backward", "activations")
    t.wrap(layers.Linear, "forward", "linear + flatten")
    t.wrap(layers.Linear, "backward", "linear + flatten")
    t.wrap(layers.Flatten, "forward", "linear + flatten")
    t.wrap(layers.Flatten, "backward", "linear + flatten")
    t.wrap(losses.SoftmaxCrossEntropy, "forward", "loss")
    t.wrap(losses.SoftmaxCrossEntropy, "backward", "loss")
    t.wrap(optim.SGD, "step", "optimiser step + zero_grad")
    t.wrap(module.Module, "zero_grad", "optimiser step + zero_grad")
    t.wrap(optim.Optimizer, "zero_grad", "optimiser step + zero_grad")
    t.wrap_iterator(DataLoader, "__iter__", "data (uint8 → float batches)")
    try:
        t0 = time.perf_counter()
        numpy_epoch(model, loss, opt, loader, epoch, max_batches)
        total = time.perf_counter() - t0
    finally:
        t.restore()
    return total, t.seconds


def _print_profile(total: float, seconds: Dict[str, float], n_batches: int) -> List[dict]:
    rows = []
    rest = total - sum(seconds.values())
    items = sorted(seconds.items(), key=lambda kv: -kv[1]) + [("rest (Python loop, Sequential, generator)", rest)]
    print(f"\nnumpy epoch with timers: {total:.2f} s ({1e3 * total / n_batches:.2f} ms per batch of this epoch)")
    print(f"{'part':48s} {'seconds':>8s} {'share':>6s} {'ms/batch':>9s}")
    for label, s in items:
        print(f"{label:48s} {s:8.2f} {100 * s / total:5.1f}% {1e3 * s / n_batches:9.3f}")
        rows.append({"part": label, "seconds": s, "share": s / total})
    return rows


# -- the benchmark ---------------------------------------------------------------------------
def run(cfg: BenchConfig) -> dict:
    import torch

    from torch_baselines.bridge import numpy_to_torch
    from torch_baselines.models import build as torch_build

    blas = set_blas_threads(cfg.threads)
    torch.set_num_threads(cfg.threads)
    train, _ = load_mnist()
    if cfg.subset:
        train = train.first(cfg.subset)
    loader = DataLoader(train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed, flatten=False)
    spec = CourseCNNSpec(activation=cfg.activation)

    np_model = build_course_cnn(spec, seed=cfg.seed, needs_input_grad=cfg.input_grad)
    t_model = numpy_to_torch(np_model, torch_build(spec.layers()))
    np_loss, t_loss = SoftmaxCrossEntropy(), torch.nn.CrossEntropyLoss()
    np_opt = SGD(np_model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    t_opt = torch.optim.SGD(t_model.parameters(), lr=cfg.lr, momentum=cfg.momentum)

    print(f"course CNN ({np_model.num_parameters():,} parameters), batch {cfg.batch_size}, "
          f"{len(train):,} training images = {len(loader)} batches per epoch")
    print(f"numpy {np.__version__}, BLAS: {blas}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"numpy computes the input gradient: {cfg.input_grad}")
    # warm-up on epoch 0's first batches, then put the weights back in sync
    numpy_epoch(np_model, np_loss, np_opt, loader, 0, cfg.warmup_batches)
    torch_epoch(t_model, t_loss, t_opt, loader, 0, cfg.warmup_batches)

    times = {"numpy": [], "torch": []}
    losses = {"numpy": [], "torch": []}
    for e in range(cfg.epochs):
        for name, fn, args in (("numpy", numpy_epoch, (np_model, np_loss, np_opt)),
                               ("torch", torch_epoch, (t_model, t_loss, t_opt))):
            t0 = time.perf_counter()
            losses[name].append(fn(*args, loader, e + 1))
            times[name].append(time.perf_counter() - t0)
        print(f"epoch {e + 1}: numpy {times['numpy'][-1]:6.2f} s (loss {losses['numpy'][-1]:.4f})   "
              f"torch {times['torch'][-1]:6.2f} s (loss {losses['torch'][-1]:.4f})", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["numpy"] / med["torch"]
    print(f"\nmedian seconds per epoch: numpy {med['numpy']:.2f}, torch {med['torch']:.2f}; "
          f"ratio numpy/torch = {ratio:.2f}x  (per batch: numpy {1e3 * med['numpy'] / len(loader):.2f} ms, "
          f"torch {1e3 * med['torch'] / len(loader):.2f} ms)")
    result = {"config": asdict(cfg), "blas": blas, "torch_threads": torch.get_num_threads(),
              "batches_per_epoch": len(loader), "seconds": times, "train_loss": losses,
              "median_seconds": med, "ratio": ratio}
    if cfg.profile:
        total, seconds = profile_numpy_epoch(np_model, np_loss, np_opt, loader, cfg.epochs + 1)
        result["profile"] = {"total_seconds": total, "rows": _print_profile(total, seconds, len(loader))}
    if cfg.out:
        from experiments.common import write_json

        write_json(cfg.out, result)
        print(f"wrote {cfg.out}")
    return result


def main(argv=None) -> dict:
    from experiments.common import parse_config

    return run(parse_config(BenchConfig, argv, description=__doc__.split("\n")[0]))


if __name__ == "__main__":
    main()
