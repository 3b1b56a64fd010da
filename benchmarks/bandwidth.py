"""How close each phase of a training step runs to the machine's limit.

A phase is one layer's ``forward`` or ``backward`` without its GEMMs, or the loss, the
optimiser or the batch conversion.  Its **achieved bandwidth** is ``bytes / ms``, where
``bytes`` counts every array the phase reads once and every array it writes once (the
arrays' shapes and dtypes, itemsize ``E``; a buffer the phase creates and reads back,
like the zero-padded input of im2col, is one write and one read).  Passes numpy makes
over temporaries (the 0/1 mask of a ReLU backward, the per-offset comparisons of a
max-pool) are *not* counted: the figure says how fast the phase moves the data it must
move, so 100% of the copy bandwidth is the best a single pass could do.

Byte model, input ``x`` of shape (N, C, H, W) (``S = N·C·H·W`` elements), output ``y``:

- Conv2d forward (pad, im2col, bias add; the GEMM ``W·cols`` apart):
  ``E·(S + 2·C·H_p·W_p·N + K·M + 2·O·M)``: read x, write and read the padded copy
  (C, H_p, W_p, N), write cols (K, M) with ``K = C·k_h·k_w``, ``M = H_out·W_out·N``, read
  and write y (O, M) for the bias.
- Conv2d backward (bias sum, col2im; the GEMMs apart): ``E·(O·M + K·M + C·H_p·W_p·N)``:
  read G, read ``dcols`` (K, M), write the padded gradient; without an input gradient
  only ``E·O·M``.
- ReLU forward ``2·E·S`` (read x, write y); backward ``3·E·S`` (read x, read g, write dx).
- MaxPool2d forward ``E·S + (E + 1)·S_out`` (read x, write y and the uint8 argmax);
  backward ``(E + 1)·S_out + E·S`` (read g and argmax, write dx).
- Flatten forward ``2·E·S`` (the copy into NCHW order of a batch-last input, 0 when the
  input is already C-ordered); backward 0 (a reshape).
- Linear forward (bias add) ``2·E·N·out``; backward (bias sum) ``E·N·out``.
- loss (softmax cross-entropy, forward + backward, (N, classes)): ``6·E·N·classes + 8·N``:
  read logits, write and read the one-hot targets and the probabilities, write the
  gradient, read the int64 labels.
- optimiser (SGD with momentum, ``P`` parameters): ``7·E·P``: read the gradient, read and
  write the momentum buffer, the weights and the scratch array of ``lr·d``.
- data: ``(1 + E)·N·784``: read the uint8 images, write the float batch.

GEMMs are reported apart: ``2·m·k·n`` flops per product over its replayed milliseconds.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_mnist import Conv2d, Flatten, Linear, MaxPool2d, ReLU

Shape = Tuple[int, ...]


def _conv_geometry(layer: Conv2d, shape: Shape) -> Tuple[int, int, int, int, int]:
    """``(K, M, O, C·H_p·W_p·N, S)`` of a Conv2d on input ``shape`` (N, C, H, W)."""
    n, c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    padded = c * (h + 2 * ph) * (w + 2 * pw) * n
    return c * kh * kw, ho * wo * n, layer.out_channels, padded, n * c * h * w


def phase_bytes(layer, in_shape: Shape, out_shape: Shape, direction: str, itemsize: int = 4,
                input_c_ordered: bool = False) -> Optional[int]:
    """Bytes read + written by one layer's elementwise work (module docstring), or None
    for a layer type without a byte model.  ``direction`` is "forward" or "backward"."""
    if direction not in ("forward", "backward"):
        raise ValueError(f"phase_bytes: direction must be 'forward' or 'backward', got {direction!r}")
    e = itemsize
    s_in, s_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    fwd = direction == "forward"
    if isinstance(layer, Conv2d):
        k, m, o, padded, s = _conv_geometry(layer, in_shape)
        if fwd:
            return e * (s + 2 * padded + k * m + (2 * o * m if layer.bias is not None else 0))
        return e * (o * m + (k * m + padded if layer.needs_input_grad else 0))
    if isinstance(layer, ReLU):
        return (2 if fwd else 3) * e * s_in
    if isinstance(layer, MaxPool2d):
        return e * s_in + (e + 1) * s_out
    if isinstance(layer, Flatten):
        return 0 if (not fwd or input_c_ordered) else 2 * e * s_in
    if isinstance(layer, Linear):
        if layer.bias is None:
            return 0
        return (2 if fwd else 1) * e * s_out
    return None


def loss_bytes(batch: int, classes: int, itemsize: int = 4) -> int:
    """Softmax cross-entropy forward + backward on (batch, classes) logits with int64 labels."""
    return 6 * itemsize * batch * classes + 8 * batch


def optimiser_bytes(n_params: int, itemsize: int = 4) -> int:
    """SGD with momentum over ``n_params`` numbers (module docstring)."""
    return 7 * itemsize * n_params


def data_bytes(batch: int, features: int, itemsize: int = 4) -> int:
    """uint8 images to a float batch."""
    return (1 + itemsize) * batch * features


def gemm_flop_counts(layers: Sequence, shapes: Sequence[Optional[Shape]]) -> Dict[str, int]:
    """``2·m·k·n`` flops of each matrix product of one step, keyed like
    :func:`benchmarks.profile.gemm_calls`' labels."""
    flops: Dict[str, int] = {}
    for i, (layer, shape) in enumerate(zip(layers, shapes, strict=True)):
        if isinstance(layer, Linear) and shape is not None:
            mac = shape[0] * layer.in_features * layer.out_features
            flops[f"{i} Linear forward x Wᵀ"] = 2 * mac
            flops[f"{i} Linear dW = Gᵀ x"] = 2 * mac
            if layer.needs_input_grad:
                flops[f"{i} Linear dx = G W"] = 2 * mac
        elif isinstance(layer, Conv2d) and shape is not None:
            k, m, o, _, _ = _conv_geometry(layer, shape)
            flops[f"{i} Conv2d forward W·cols"] = 2 * o * k * m
            flops[f"{i} Conv2d dW = (cols Gᵀ)ᵀ"] = 2 * o * k * m
            if layer.needs_input_grad:
                flops[f"{i} Conv2d dcols = Wᵀ G"] = 2 * o * k * m
    return flops


def gemm_ms_by_phase(gemms: Dict[str, float]) -> Dict[Tuple[int, str], float]:
    """Replayed GEMM milliseconds summed per ``(layer index, "forward"|"backward")``."""
    out: Dict[Tuple[int, str], float] = {}
    for label, ms in gemms.items():
        index, rest = label.split(" ", 1)
        key = (int(index), "forward" if "forward" in rest else "backward")
        out[key] = out.get(key, 0.0) + ms
    return out


def phase_rows(layers: Sequence, shapes: Sequence[Optional[Shape]], c_ordered: Sequence[bool],
               out_shape: Shape, rows: List[dict], split: dict, n_params: int, itemsize: int = 4) -> List[dict]:
    """One row per elementwise phase: ``phase``, ``ms`` (the layer's measured milliseconds
    minus its replayed GEMMs, clamped at 0: the remainder also holds the layer's Python
    calls and checks), ``bytes`` and ``gb_per_s``.

    ``shapes`` and ``c_ordered``: each layer's input shape and whether it was C-ordered;
    ``out_shape``: the logits' (batch, classes); ``rows`` and ``split``: the profile's.
    """
    gemm = gemm_ms_by_phase(split["gemms"])
    batch, classes = out_shape
    first = shapes[0]
    features = int(np.prod(first[1:])) if first is not None else 0
    out_shapes = list(shapes[1:]) + [out_shape]
    phases: List[dict] = []
    for i, (layer, shape, y_shape) in enumerate(zip(layers, shapes, out_shapes, strict=True)):
        if shape is None or y_shape is None:
            continue
        for direction in ("forward", "backward"):
            measured = rows[i][f"numpy_{direction}_ms"]
            nbytes = phase_bytes(layer, shape, y_shape, direction, itemsize, c_ordered[i])
            if nbytes is None or nbytes == 0:
                continue
            phases.append({"phase": f"{rows[i]['layer']} {direction}",
                           "ms": max(measured - gemm.get((i, direction), 0.0), 0.0), "bytes": nbytes,
                           "gemm_ms_removed": gemm.get((i, direction), 0.0)})
    phases.append({"phase": "loss", "ms": split["loss_ms"], "bytes": loss_bytes(batch, classes, itemsize)})
    phases.append({"phase": "optimiser", "ms": split["optimiser_ms"],
                   "bytes": optimiser_bytes(n_params, itemsize)})
    phases.append({"phase": "data", "ms": split["data_ms"], "bytes": data_bytes(batch, features, itemsize)})
    for p in phases:
        p["gb_per_s"] = p["bytes"] / (p["ms"] * 1e6) if p["ms"] > 0 else None
    return phases


def format_phases(phases: List[dict], step_ms: float, copy_gbs: float, dram_bytes: int) -> str:
    """The phase table: ms, share of the step, bytes, GB/s, % of the out-of-cache copy
    bandwidth and of an in-cache copy of arrays the phase's size (``in_cache_gbs``)."""
    lines = [f"    elementwise phases against np.copyto: {copy_gbs:.1f} GB/s out of cache "
             f"({dram_bytes / 2**20:.0f} MiB arrays, read + write)",
             "    | phase | ms | share of step | bytes | GB/s | % of copy | in-cache copy GB/s | % of it |",
             "    |---|---|---|---|---|---|---|---|"]
    for p in phases:
        gbs = p["gb_per_s"]
        cached = p.get("in_cache_gbs")
        lines.append(
            f"    | {p['phase']} | {p['ms']:.3f} | {100 * p['ms'] / (step_ms or 1.0):.1f}% | {p['bytes']:,} | "
            + ("– | – |" if gbs is None else f"{gbs:.1f} | {100 * gbs / copy_gbs:.0f}% |")
            + (" – | – |" if cached is None or gbs is None else f" {cached:.1f} | {100 * gbs / cached:.0f}% |"))
    total_ms = sum(p["ms"] for p in phases)
    total_b = sum(p["bytes"] for p in phases)
    if total_ms > 0:
        gbs = total_b / (total_ms * 1e6)
        lines.append(f"    | all phases | {total_ms:.3f} | {100 * total_ms / (step_ms or 1.0):.1f}% | "
                     f"{total_b:,} | {gbs:.1f} | {100 * gbs / copy_gbs:.0f}% | | |")
    return "\n".join(lines)


def format_gemm_rates(gemms: Dict[str, float], flops: Dict[str, int], peak_gflops: float) -> str:
    """One line per replayed GEMM: ms, GFLOP/s and share of the measured GEMM peak."""
    lines = []
    for label, ms in gemms.items():
        rate = flops.get(label, 0) / (ms * 1e6) if ms > 0 else 0.0
        lines.append(f"      GEMM {label}: {ms:.3f} ms, {rate:.1f} GFLOP/s "
                     f"({100 * rate / peak_gflops:.0f}% of {peak_gflops:.0f})")
    return "\n".join(lines)
