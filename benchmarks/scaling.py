"""``--scaling``: seconds per epoch against hidden width and against batch size, both sides.

- width: the ReLU MLP 784-w-w-10 at batch 256, w = 16, 32, ..., 2048;
- batch: every ``--models`` model at batch 16, 32, ..., 1024.

Each point trains on the first ``--scaling-size`` training images: a few warm-up steps per
side, then ``--epochs`` epochs per side, interleaved, each after the ``--settle`` pause,
exactly as the main benchmark.  The
plotted time is seconds per 60,000-image epoch, ``60000 / (samples per second)``, so the
points read like the main table; R is the median of the per-pair ratios.  Writes
``scaling.json``, ``scaling.md``, ``width_scaling.png`` and ``batch_scaling.png`` to ``--out``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Dict, List

from tinygrad_mnist.data import DataLoader

from .machine import thread_limit
from .models import load_data, mlp_model, model_by_name

WIDTHS = (16, 32, 64, 128, 256, 512, 1024, 2048)
BATCHES = (16, 32, 64, 128, 256, 512, 1024)
FULL_EPOCH = 60_000


def scaling_point(bench_model, batch_size: int, train, cfg, warmup_batches: int = 5) -> dict:
    """Interleaved epochs of both sides on ``train``; seconds per full-MNIST epoch and R."""
    from .steps import make_sides

    sides = make_sides(bench_model, cfg.seed, cfg.lr, cfg.momentum)
    loader = DataLoader(train, batch_size, shuffle=True, seed=cfg.seed, flatten=bench_model.flatten)
    for side in sides.values():
        side.epoch(loader, 0, warmup_batches)
    times: Dict[str, List[float]] = {"numpy": [], "torch": []}
    for e in range(cfg.epochs):
        for name, side in sides.items():
            times[name].append(side.timed_epoch(loader, e + 1, cfg.settle_s)[0])
    per_epoch = {k: statistics.median(v) * FULL_EPOCH / len(train) for k, v in times.items()}
    return {"model": bench_model.name, "batch_size": batch_size,
            "numpy_epoch_s": per_epoch["numpy"], "torch_epoch_s": per_epoch["torch"],
            "ratio": statistics.median(a / b for a, b in zip(times["numpy"], times["torch"], strict=True)),
            "gflops": bench_model.gemm_flops_per_sample() * FULL_EPOCH / per_epoch["numpy"] / 1e9,
            "measured_samples": len(train)}


def run_scaling(cfg, log=print) -> dict:
    """Both sweeps for every thread count of ``cfg``; writes the table, JSON and plots."""
    import torch  # noqa: F401  (loaded before the thread limits, so they reach it)

    train, _ = load_data(cfg.data, cfg.data_dir, cfg.scaling_size, 1, cfg.seed)
    widths = WIDTHS[:5:2] if cfg.quick else WIDTHS
    batches = BATCHES[:5:2] if cfg.quick else BATCHES
    out = {"width": [], "batch": [], "measured_samples": len(train), "epochs": cfg.epochs}
    for threads in cfg.threads:
        with thread_limit(threads):
            for w in widths:
                p = scaling_point(mlp_model((784, w, w, 10)), 256, train, cfg)
                p.update(threads=threads, width=w)
                out["width"].append(p)
                log(f"  width {w:5d}, batch 256, {threads} thr: numpy {p['numpy_epoch_s']:.3f} s, "
                    f"torch {p['torch_epoch_s']:.3f} s, R {p['ratio']:.2f}", flush=True)
            for name in cfg.models:
                for b in batches:
                    p = scaling_point(model_by_name(name), b, train, cfg)
                    p.update(threads=threads)
                    out["batch"].append(p)
                    log(f"  {name}, batch {b:5d}, {threads} thr: numpy {p['numpy_epoch_s']:.3f} s, "
                        f"torch {p['torch_epoch_s']:.3f} s, R {p['ratio']:.2f}", flush=True)
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    (root / "scaling.json").write_text(json.dumps(out, indent=1))
    (root / "scaling.md").write_text(format_scaling(out) + "\n")
    plot_scaling(out, root)
    log(format_scaling(out))
    log(f"wrote {root / 'scaling.json'}, {root / 'scaling.md'}, {root / 'width_scaling.png'}, "
        f"{root / 'batch_scaling.png'}")
    return out


def format_scaling(out: dict) -> str:
    lines = [f"Seconds per 60,000-image epoch (measured on {out['measured_samples']:,} images, "
             f"median of {out['epochs']} interleaved epochs per side)", "",
             "| sweep | model | batch | threads | numpy s | torch s | R |", "|---|---|---|---|---|---|---|"]
    for kind in ("width", "batch"):
        for p in out[kind]:
            lines.append(f"| {kind} | {p['model']} | {p['batch_size']} | {p['threads']} "
                         f"| {p['numpy_epoch_s']:.3f} | {p['torch_epoch_s']:.3f} | {p['ratio']:.2f} |")
    return "\n".join(lines)


def _series(points: List[dict], key: str, threads: int):
    pts = sorted((p for p in points if p["threads"] == threads), key=lambda p: p[key])
    return [p[key] for p in pts], pts


def plot_scaling(out: dict, root: Path) -> None:
    """Two figures: time and R against width, and against batch size per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threads = sorted({p["threads"] for p in out["width"] + out["batch"]})
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True, height_ratios=(2, 1))
    for t in threads:
        xs, pts = _series(out["width"], "width", t)
        ax.plot(xs, [p["numpy_epoch_s"] for p in pts], "o-", label=f"numpy, {t} thr")
        ax.plot(xs, [p["torch_epoch_s"] for p in pts], "s--", label=f"torch, {t} thr")
        axr.plot(xs, [p["ratio"] for p in pts], "o-", label=f"{t} thr")
    ax.set(xscale="log", yscale="log", ylabel="seconds per epoch",
           title="MLP 784-w-w-10 (ReLU), batch 256: cost against width")
    ax.legend()
    axr.axhline(1.0, color="grey", lw=0.8)
    axr.set(xscale="log", xlabel="hidden width w", ylabel="R = numpy / torch")
    axr.set_xticks(sorted({p["width"] for p in out["width"]}))
    axr.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    fig.tight_layout()
    fig.savefig(root / "width_scaling.png", dpi=120)
    plt.close(fig)

    models = list(dict.fromkeys(p["model"] for p in out["batch"]))
    fig, axes = plt.subplots(2, max(len(models), 1), figsize=(4.5 * max(len(models), 1), 6),
                             sharex=True, height_ratios=(2, 1), squeeze=False)
    for j, m in enumerate(models):
        pts_m = [p for p in out["batch"] if p["model"] == m]
        for t in threads:
            xs, pts = _series(pts_m, "batch_size", t)
            axes[0, j].plot(xs, [p["numpy_epoch_s"] for p in pts], "o-", label=f"numpy, {t} thr")
            axes[0, j].plot(xs, [p["torch_epoch_s"] for p in pts], "s--", label=f"torch, {t} thr")
            axes[1, j].plot(xs, [p["ratio"] for p in pts], "o-", label=f"{t} thr")
        axes[0, j].set(xscale="log", yscale="log", title=m, ylabel="seconds per epoch" if j == 0 else None)
        axes[0, j].legend(fontsize=8)
        axes[1, j].axhline(1.0, color="grey", lw=0.8)
        axes[1, j].set(xscale="log", xlabel="batch size", ylabel="R = numpy / torch" if j == 0 else None)
        axes[1, j].set_xticks(sorted({p["batch_size"] for p in pts_m}))
        axes[1, j].get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    fig.suptitle("Cost against batch size")
    fig.tight_layout()
    fig.savefig(root / "batch_scaling.png", dpi=120)
    plt.close(fig)
