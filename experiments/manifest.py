"""What a run leaves behind besides its results: the manifest (config, seeds, commit,
library versions, threads, wall time, the rerun command) and the band that states a
reduced mode on every figure."""

from __future__ import annotations

import platform
import sys
import textwrap
import time
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from benchmarks.machine import cpu_model
from experiments.common import write_json

# -- what quick mode changed, stated on every figure --------------------------------------
EXECUTION_FIELDS = ("jobs", "scheduler", "out", "run", "data_dir", "threads")


def mode_note(config, full) -> str:
    """One line naming every field a reduced mode changed, e.g.
    ``"quick mode: train_size 5000 (full: 0 = all), epochs 3 (full: 20)"``; "" when none."""
    changes = []
    for f in fields(config):
        if f.name in EXECUTION_FIELDS:
            continue
        new, old = getattr(config, f.name), getattr(full, f.name)
        if new != old:
            fmt = lambda v: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)  # noqa: E731
            changes.append(f"{f.name} {fmt(new)} (full: {fmt(old)}{' = all' if old == 0 and 'size' in f.name else ''})")
    return "; ".join(changes)


def stamp_png(path, note: str, color: str = "#b00000") -> Path:
    """Add a band with ``note`` under a PNG figure (pixels of the figure kept as they are)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    path = Path(path)
    image = mpimg.imread(path)
    if image.dtype != np.float32 and image.dtype != np.float64:
        image = image.astype(np.float32) / 255.0
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.shape[2] == 3:
        image = np.concatenate([image, np.ones(image.shape[:2] + (1,), image.dtype)], axis=2)
    h, w = image.shape[:2]
    dpi = 100
    lines = textwrap.wrap(note, max(40, int(w / 6.5)))
    band_h = 8 + 15 * len(lines)
    fig = plt.figure(figsize=(w / dpi, band_h / dpi), dpi=dpi)
    fig.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=9, color=color)
    fig.canvas.draw()
    # matplotlib types fig.canvas as FigureCanvasBase; under Agg (selected above) it is a FigureCanvasAgg
    band = np.asarray(fig.canvas.buffer_rgba(), dtype=np.float32)[:band_h, :w] / 255.0  # type: ignore[attr-defined]
    plt.close(fig)
    if band.shape[1] < w:
        band = np.concatenate([band, np.ones((band.shape[0], w - band.shape[1], 4), np.float32)], axis=1)
    plt.imsave(path, np.clip(np.concatenate([image.astype(np.float32), band], axis=0), 0, 1))
    return path


# -- the manifest ------------------------------------------------------------------------------
def git_commit(repo=None) -> Optional[str]:
    """The commit the working tree is at, with ``+dirty`` when files differ; None outside git."""
    import subprocess

    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) or None


def library_versions() -> Dict[str, str]:
    """Versions of the libraries a run may use (only those installed)."""
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "torch", "scikit-learn", "matplotlib", "joblib", "distributed", "dask", "tinygrad_mnist"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def thread_info() -> Dict[str, Any]:
    """CPU count, BLAS thread pools (threadpoolctl when installed) and torch's threads when loaded."""
    import os

    info: Dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "version")} for p in threadpool_info()]
    except ImportError:
        pass
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def rerun_command(name: str, config, mode: str = "") -> str:
    """The command that reruns ``name`` with exactly ``config`` (every field spelled out)."""
    parts = ["python -m experiments run", name]
    for f in fields(config):
        value = getattr(config, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif value is None:
            continue
        elif isinstance(value, (list, tuple)):
            parts += [flag] + [str(v) for v in value]
        else:
            parts += [flag, str(value)]
    return " ".join(parts)


def write_manifest(out, name: str, config, wall_seconds: float, mode: str, note: str = "",
                   files: Sequence[str] = ()) -> Path:
    """``manifest.json``: the full config, its seeds, the commit, library versions, threads,
    wall time, the mode and the command that reruns it."""
    cfg = asdict(config) if is_dataclass(config) and not isinstance(config, type) else dict(config)
    seeds = {k: v for k, v in cfg.items() if "seed" in k}
    manifest = {"experiment": name, "mode": mode, "mode_note": note, "config": cfg, "seeds": seeds,
                "git_commit": git_commit(), "versions": library_versions(), "threads": thread_info(),
                "platform": platform.platform(), "machine": cpu_model(), "wall_seconds": wall_seconds,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv),
                "rerun": rerun_command(name, config) if is_dataclass(config) else None,
                "files": sorted(files)}
    return write_json(Path(out) / "manifest.json", manifest)
