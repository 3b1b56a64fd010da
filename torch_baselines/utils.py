"""Seeding, device choice and parameter counting for the torch baselines."""

from __future__ import annotations

import os
import random
from typing import List, Set, Tuple, TypedDict

import numpy as np
import torch
from torch import nn

__all__ = ["seed_everything", "resolve_device", "num_parameters", "parameter_rows", "parameter_table"]


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's ``random``, numpy's legacy global RNG and torch (CPU and CUDA), and
    make torch choose deterministic algorithms.

    After this call, building a model and training it with the same arguments gives the
    same weights and the same history, run after run (dropout masks come from torch's
    RNG, data order from the seeded numpy ``DataLoader``).  The engine itself never uses
    numpy's global RNG; it is seeded for third-party code that does.

    Parameters
    ----------
    seed : int
    deterministic : bool, default=True
        ``torch.use_deterministic_algorithms(True)``, cuDNN deterministic and not
        benchmarking, and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (needed by cuBLAS on CUDA
        ≥ 10.2).  ``False`` restores torch's defaults.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(bool(deterministic))
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` as given.

    Raises
    ------
    RuntimeError
        When CUDA is asked for and torch cannot see a CUDA device.
    """
    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"resolve_device: {device!r} requested but torch {torch.__version__} "
                           "sees no CUDA device; use --device cpu or --device auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ValueError(f"resolve_device: expected 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    return torch.device(name)


def num_parameters(model: nn.Module) -> int:
    """Learnable scalars of a torch model (shared parameters once), like the numpy
    ``Module.num_parameters()``."""
    return parameter_rows(model)[1]


class ParameterRow(TypedDict):
    """One row of :func:`parameter_rows`."""

    layer: str
    type: str
    shapes: str
    parameters: int


def parameter_rows(model: nn.Module) -> Tuple[List[ParameterRow], int]:
    """Learnable parameters per layer and in total.

    Returns
    -------
    rows : list of dict
        One per module that owns learnable parameters directly, in registration order:
        ``{"layer": dotted name, "type": class name, "shapes": "8×1×3×3 + 8",
        "parameters": int}``.
    total : int
        The sum over rows (shared parameters counted once).
    """
    rows: List[ParameterRow] = []
    seen: Set[int] = set()
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad and id(p) not in seen]
        if not params:
            continue
        seen.update(id(p) for p in params)
        rows.append({
            "layer": name or "(root)",
            "type": type(module).__name__,
            "shapes": " + ".join("×".join(str(s) for s in p.shape) for p in params),
            "parameters": int(sum(p.numel() for p in params)),
        })
    return rows, int(sum(r["parameters"] for r in rows))


def parameter_table(model: nn.Module) -> str:
    """A readable table of :func:`parameter_rows`, one line per layer and a total."""
    rows, total = parameter_rows(model)
    header = ("layer", "type", "shapes", "parameters")
    cells = [header] + [(r["layer"], r["type"], r["shapes"], f"{r['parameters']:,}") for r in rows]
    cells.append(("total", "", "", f"{total:,}"))
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for k, c in enumerate(cells):
        lines.append("  ".join(c[i].ljust(widths[i]) if i < 3 else c[i].rjust(widths[i]) for i in range(4)).rstrip())
        if k == 0 or k == len(cells) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
