"""Figures with matplotlib (imported lazily, Agg backend so no display is needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history, path, title: Optional[str] = None):
    """Two panels, cost and accuracy per epoch, for train / validation / test.

    ``history`` is a :class:`~tinygrad_mnist.train.History`; the figure is saved to
    ``path`` (PNG) and the path is returned.
    """
    plt = _pyplot()
    epochs = range(1, history.epochs + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for split, style in (("train", "-o"), ("val", "-s"), ("test", "-^")):
        losses, accs = getattr(history, f"{split}_loss"), getattr(history, f"{split}_accuracy")
        if losses:
            label = {"train": "train", "val": "validation", "test": "test"}[split]
            ax_loss.plot(epochs, losses, style, label=label, markersize=3)
            ax_acc.plot(epochs, [100 * a for a in accs], style, label=label, markersize=3)
    ax_loss.set(xlabel="epoch", ylabel="cost (mean cross-entropy)", title="Cost")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_jacobian(matrix, path, title: Optional[str] = None, xlabel: str = "input index j",
                  ylabel: str = "output index i"):
    """Heat map of a Jacobian ``J[i, j] = ∂y_i/∂x_j``, for teaching.

    A diverging colour map centred on zero (red positive, blue negative, white zero) makes
    the structure visible: the diagonal of an elementwise activation, the dense
    ``diag(s) − s sᵀ`` of softmax, the repeated ``xᵀ`` blocks of ``I ⊗ xᵀ`` for a Linear
    weight.  ``matrix`` is any 2-d array (a 1-d one is drawn as a row); the figure is
    saved to ``path`` (PNG) and the path is returned.
    """
    import numpy as np

    plt = _pyplot()
    m = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    if m.ndim != 2:
        raise ValueError(f"plot_jacobian: expected a 2-d matrix, got shape {m.shape}")
    limit = float(np.abs(m).max()) or 1.0
    rows, cols = m.shape
    width = min(12.0, 2.5 + 0.35 * cols) if cols <= 40 else 12.0
    height = min(9.0, 1.8 + 0.35 * rows) if rows <= 40 else 9.0
    fig, ax = plt.subplots(figsize=(max(width, 4.0), max(height, 2.2)))
    image = ax.imshow(m, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or f"Jacobian {rows}×{cols}")
    if rows * cols <= 400:
        for i in range(rows):
            for j in range(cols):
                ax.text(j, i, f"{m[i, j]:.2g}", ha="center", va="center", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_finite_difference_errors(ns, errors, path, title: Optional[str] = None, guides: bool = True):
    """Log-log plot of the central-difference error against N (ε = 1/N), one line per dtype.

    Parameters
    ----------
    ns : sequence of int
        The N values (x axis).
    errors : dict
        ``{label: sequence of float}``, e.g. ``{"float64": [...], "float32": [...]}``:
        ``max_i |∇ᴺ_i − ∂L/∂θ_i|`` for each N.  Zeros are drawn at the axis floor.
    path : str or Path
        Where to save the PNG; returned.
    title : str, optional
    guides : bool, default=True
        Dashed reference slopes through the first line's ends: ∝ ε² = N⁻² (truncation)
        and ∝ 1/ε = N (rounding).
    """
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ns = np.asarray(ns, dtype=np.float64)
    for (label, errs), marker in zip(errors.items(), "os^dv"):
        errs = np.asarray(errs, dtype=np.float64)
        positive = errs[errs > 0]
        floor = positive.min() / 10 if positive.size else 1e-20
        k = int(np.argmin(errs))
        line, = ax.loglog(ns, np.where(errs > 0, errs, floor), marker=marker,
                          label=f"{label}: min {errs[k]:.1e} at N = {int(ns[k]):,}")
        ax.loglog(ns[k], max(errs[k], floor), marker="*", markersize=16, color=line.get_color(),
                  markeredgecolor="black", zorder=5)
    if guides and errors:
        first = np.asarray(next(iter(errors.values())), dtype=np.float64)
        k = int(np.argmin(first))
        left, right = ns[: k + 1], ns[k:]
        ax.loglog(left, first[0] * (left / ns[0]) ** -2.0, "k--", lw=0.8, alpha=0.6, label="∝ ε² (truncation)")
        if len(right) > 1 and first[-1] > 0:
            ax.loglog(right, first[-1] * right / ns[-1], "k:", lw=1.0, alpha=0.7, label="∝ 1/ε (rounding)")
    ax.set(xlabel="N  (ε = 1/N)", ylabel=r"$\max_i\,|\nabla^N_i - \partial L/\partial\theta_i|$")
    ax.set_title(title or "Central differences: truncation (∝ ε²) vs rounding (∝ 1/ε)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
