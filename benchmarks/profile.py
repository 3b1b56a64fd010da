"""``--profile``: milliseconds per layer on both sides, and where numpy's time goes.

Per layer (median over ``steps`` training steps on the benchmark's batches):

- numpy: each layer's ``forward`` and ``backward`` timed one by one in the same loop the
  ``Sequential`` runs, plus the loss, the optimiser (``zero_grad`` + ``step``) and the
  data (uint8 → float batch);
- torch: forward pre/post hooks time each module's forward; backward pre-hooks stamp the
  moment each module's output gradient is ready, so a module's backward is the time from
  its stamp to the next one (the first module's ends when ``loss.backward()`` returns).

numpy's step time T is then split three ways:

- GEMM: every matrix product of one step replayed alone at the same shapes, operand
  layouts and threads (median of repeats), summed; a weight gradient's product is
  replayed as the engine computes it after ``zero_grad``: written straight into the
  gradient (Linear, ``np.matmul(..., out=)``) or copied in (Conv2d);
- Python overhead: one step of the same model at batch size 1, minus its replayed GEMMs
  and minus its optimiser step (whose work grows with the parameter count, not the
  batch): the cost of the calls, checks and loops, which does not grow with the batch
  (an upper bound: batch-1 arithmetic is small, not zero);
- elementwise: what is left, T - GEMM - overhead (activations, pooling, im2col/col2im
  copies, bias adds, loss, optimiser updates, batch conversion).
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from tinygrad_mnist import Conv2d, Linear
from tinygrad_mnist.data import DataLoader

from .bandwidth import format_gemm_rates, format_phases, gemm_flop_counts, phase_rows
from .machine import cache_sizes, copy_bandwidth_gbs, gemm_gflops, out_of_cache_bytes


def _median_ms(values) -> float:
    return 1e3 * statistics.median(values) if values else 0.0


def _numpy_steps(side, loader: DataLoader, steps: int, epoch: int = 10_000):
    """Per-layer forward/backward seconds of ``steps`` steps; also each layer's first input
    shape, whether that input was C-ordered, and the model's output shape."""
    model, loss, opt = side.model, side.loss, side.opt
    layers = list(model)
    fwd: List[List[float]] = [[] for _ in layers]
    bwd: List[List[float]] = [[] for _ in layers]
    parts: Dict[str, List[float]] = {"loss": [], "optimiser": [], "data": [], "step": []}
    shapes: List[Optional[Tuple[int, ...]]] = [None] * len(layers)
    c_ordered: List[bool] = [False] * len(layers)
    out_shape: Tuple[int, ...] = ()
    model.train()
    loader.set_epoch(epoch)
    it = iter(loader)
    for _ in range(steps):
        t_step = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        t = time.perf_counter()
        parts["data"].append(t - t_step)
        opt.zero_grad()
        t1 = time.perf_counter()
        out = x
        for i, layer in enumerate(layers):
            if shapes[i] is None:
                shapes[i], c_ordered[i] = out.shape, bool(out.flags.c_contiguous)
            t0 = time.perf_counter()
            out = layer.forward(out)
            fwd[i].append(time.perf_counter() - t0)
        out_shape = out.shape
        t0 = time.perf_counter()
        loss.forward(out, y)
        g = loss.backward()
        t2 = time.perf_counter()
        parts["loss"].append(t2 - t0)
        for i in range(len(layers) - 1, -1, -1):
            t0 = time.perf_counter()
            g = layers[i].backward(g)
            bwd[i].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        opt.step()
        t_end = time.perf_counter()
        parts["optimiser"].append(t_end - t0 + (t1 - t))
        parts["step"].append(t_end - t_step)
    return layers, fwd, bwd, parts, shapes, (c_ordered, out_shape)


def gemm_calls(layers, shapes, dtype=np.float32):
    """The matrix products of one training step as ``(label, thunk)`` pairs with fresh operands.

    Linear, input (n, in): ``x Wᵀ``, ``Gᵀ x`` and ``G W`` (the last only with an input
    gradient).  Conv2d, input (n, C, H, W): ``W_mat cols``, ``cols Gᵀ`` and ``W_matᵀ G``
    with ``cols`` of shape (C·k_h·k_w, H_out·W_out·n), as the engine computes them.
    """
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)

    calls = []
    for i, (layer, shape) in enumerate(zip(layers, shapes, strict=True)):
        if isinstance(layer, Linear):
            n = shape[0]
            x = rand(n, layer.in_features)
            w = rand(layer.out_features, layer.in_features)
            g = rand(n, layer.out_features)
            calls.append((f"{i} Linear forward x Wᵀ", lambda x=x, w=w: x @ w.T))
            acc = np.zeros((layer.out_features, layer.in_features), dtype)
            calls.append((f"{i} Linear dW = Gᵀ x", lambda x=x, g=g, acc=acc: np.matmul(g.T, x, out=acc)))
            if layer.needs_input_grad:
                calls.append((f"{i} Linear dx = G W", lambda g=g, w=w: g @ w))
        elif isinstance(layer, Conv2d):
            n, c, h, wd = shape
            (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
            ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
            k, m, o = c * kh * kw, ho * wo * n, layer.out_channels
            cols, w, g = rand(k, m), rand(o, k), rand(o, m)
            calls.append((f"{i} Conv2d forward W·cols", lambda w=w, cols=cols: w @ cols))
            acc = np.zeros((o, k), dtype)
            calls.append((f"{i} Conv2d dW = (cols Gᵀ)ᵀ",
                          lambda cols=cols, g=g, acc=acc: np.copyto(acc, (cols @ g.T).T)))
            if layer.needs_input_grad:
                calls.append((f"{i} Conv2d dcols = Wᵀ G", lambda w=w, g=g: w.T @ g))
    return calls


def time_gemms(calls, repeats: int = 20) -> Dict[str, float]:
    """Median milliseconds of each GEMM thunk (after one untimed call)."""
    out = {}
    for label, fn in calls:
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        out[label] = _median_ms(ts)
    return out


def _torch_steps(side, loader: DataLoader, steps: int, epoch: int = 10_000):
    """Per-module forward/backward seconds of the torch twin, from hooks."""
    torch = side.torch
    modules = list(side.model.children())
    fwd: List[List[float]] = [[] for _ in modules]
    bwd: List[List[float]] = [[] for _ in modules]
    stamp: Dict[str, float] = {}
    handles = []
    for i, m in enumerate(modules):
        handles.append(m.register_forward_pre_hook(
            lambda mod, inp, i=i: stamp.__setitem__(f"f{i}", time.perf_counter())))
        handles.append(m.register_forward_hook(
            lambda mod, inp, out, i=i: fwd[i].append(time.perf_counter() - stamp[f"f{i}"])))
        handles.append(m.register_full_backward_pre_hook(
            lambda mod, gout, i=i: stamp.__setitem__(f"b{i}", time.perf_counter())))
    loss_ms: List[float] = []
    try:
        side.model.train()
        loader.set_epoch(epoch)
        it = iter(loader)
        for _ in range(steps):
            try:
                x, y = next(it)
            except StopIteration:
                it = iter(loader)
                x, y = next(it)
            side.opt.zero_grad(set_to_none=True)
            value = side.loss(side.model(torch.from_numpy(x)), torch.from_numpy(y))
            t0 = time.perf_counter()
            with warnings.catch_warnings():  # "hook fires on outputs" for the data-fed first module
                warnings.simplefilter("ignore", UserWarning)
                value.backward()
            t_end = time.perf_counter()
            last = len(modules) - 1
            loss_ms.append(stamp[f"b{last}"] - t0)
            for i in range(len(modules)):
                start = stamp[f"b{i}"]
                stop = stamp[f"b{i - 1}"] if i > 0 else t_end
                bwd[i].append(stop - start)
            side.opt.step()
    finally:
        for h in handles:
            h.remove()
    return modules, fwd, bwd


def profile_model(bench_model, sides, loader: DataLoader, steps: int = 30, log=print,
                  gemm_peak: Optional[float] = None, copy_bytes: Optional[int] = None) -> dict:
    """Per-layer table for both sides, numpy's GEMM / elementwise / overhead split, and each
    phase's bandwidth (:mod:`benchmarks.bandwidth`) against ``np.copyto`` of ``copy_bytes``
    arrays (default :func:`~benchmarks.machine.out_of_cache_bytes`) and each GEMM's rate
    against ``gemm_peak`` GFLOP/s (measured at 1024³ when None)."""
    layers, fwd, bwd, parts, shapes, (c_ordered, out_shape) = _numpy_steps(sides["numpy"], loader, steps)
    modules, tfwd, tbwd = _torch_steps(sides["torch"], loader, steps)
    rows = []
    for i, layer in enumerate(layers):
        rows.append({"layer": f"{i} {type(layer).__name__}", "numpy_forward_ms": _median_ms(fwd[i]),
                     "numpy_backward_ms": _median_ms(bwd[i]),
                     "torch_forward_ms": _median_ms(tfwd[i]) if i < len(modules) else None,
                     "torch_backward_ms": _median_ms(tbwd[i]) if i < len(modules) else None})
    step_ms = _median_ms(parts["step"])
    gemm = time_gemms(gemm_calls(layers, shapes))
    gemm_ms = sum(gemm.values())
    # Python overhead: the same model at batch size 1, minus that step's own GEMMs
    from .steps import NumpySide

    tiny = NumpySide(bench_model.build_numpy(seed=1), lr=1e-3, momentum=0.9)
    tiny_loader = DataLoader(loader.dataset, 1, shuffle=True, seed=0, flatten=loader.flatten)
    t_layers, _, _, t_parts, t_shapes, _ = _numpy_steps(tiny, tiny_loader, max(steps, 50))
    overhead_ms = max(_median_ms(t_parts["step"]) - _median_ms(t_parts["optimiser"])
                      - sum(time_gemms(gemm_calls(t_layers, t_shapes)).values()), 0.0)
    elementwise_ms = max(step_ms - gemm_ms - overhead_ms, 0.0)
    split = {"step_ms": step_ms, "gemm_ms": gemm_ms, "elementwise_ms": elementwise_ms,
             "python_overhead_ms": overhead_ms, "gemms": gemm,
             "loss_ms": _median_ms(parts["loss"]), "optimiser_ms": _median_ms(parts["optimiser"]),
             "data_ms": _median_ms(parts["data"])}
    log(format_profile(rows, split))
    bandwidth = measure_bandwidth(sides["numpy"], layers, shapes, c_ordered, out_shape, rows, split,
                                  gemm_peak, copy_bytes, log)
    return {"layers": rows, "numpy_split": split, "steps": steps, "bandwidth": bandwidth}


def measure_bandwidth(side, layers, shapes, c_ordered, out_shape, rows, split, gemm_peak: Optional[float],
                      copy_bytes: Optional[int], log=print) -> dict:
    """The phases' GB/s against the measured copy bandwidth (out of cache, and in cache at
    each phase's size) and the GEMMs' GFLOP/s against the peak; printed and returned."""
    dtype = side.model[0].weight.data.dtype if hasattr(side.model[0], "weight") else np.dtype(np.float32)
    n_params = sum(p.data.size for p in side.model.parameters())
    phases = phase_rows(layers, shapes, c_ordered, out_shape, rows, split, n_params, dtype.itemsize)
    big = int(copy_bytes) if copy_bytes else out_of_cache_bytes()
    copy_gbs = copy_bandwidth_gbs(big, repeats=5)
    for p in phases:  # in-cache figure: two arrays sharing the phase's bytes
        p["in_cache_gbs"] = copy_bandwidth_gbs(max(p["bytes"] // 2, 4096), repeats=30)
    peak = gemm_peak if gemm_peak else gemm_gflops(1024, repeats=5)
    flops = gemm_flop_counts(layers, shapes)
    gemm_rates = {label: {"ms": ms, "flops": flops.get(label, 0),
                          "gflops": flops.get(label, 0) / (ms * 1e6) if ms > 0 else None}
                  for label, ms in split["gemms"].items()}
    log(format_phases(phases, split["step_ms"], copy_gbs, big))
    log(format_gemm_rates(split["gemms"], flops, peak))
    return {"copy_gbs": copy_gbs, "copy_array_bytes": big, "cache_sizes": cache_sizes(),
            "gemm_peak_gflops": peak, "phases": phases, "gemms": gemm_rates}


def format_profile(rows, split) -> str:
    lines = ["    | layer | numpy fwd ms | numpy bwd ms | torch fwd ms | torch bwd ms |",
             "    |---|---|---|---|---|"]
    for r in rows:
        t_f = "–" if r["torch_forward_ms"] is None else f"{r['torch_forward_ms']:.3f}"
        t_b = "–" if r["torch_backward_ms"] is None else f"{r['torch_backward_ms']:.3f}"
        lines.append(f"    | {r['layer']} | {r['numpy_forward_ms']:.3f} | {r['numpy_backward_ms']:.3f} | "
                     f"{t_f} | {t_b} |")
    s, T = split, split["step_ms"] or 1.0
    lines.append(f"    numpy loss {s['loss_ms']:.3f} ms, optimiser {s['optimiser_ms']:.3f} ms, "
                 f"data {s['data_ms']:.3f} ms per step")
    lines.append(f"    numpy step {T:.3f} ms = GEMM {s['gemm_ms']:.3f} ({100 * s['gemm_ms'] / T:.0f}%) "
                 f"+ elementwise {s['elementwise_ms']:.3f} ({100 * s['elementwise_ms'] / T:.0f}%) "
                 f"+ Python overhead {s['python_overhead_ms']:.3f} ({100 * s['python_overhead_ms'] / T:.0f}%)")
    return "\n".join(lines)
