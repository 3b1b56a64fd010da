"""Figures with matplotlib (imported lazily, Agg backend so no display is needed)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple

from .types import PathLike

if TYPE_CHECKING:  # annotations only: numpy and the History class load when a figure is drawn
    import numpy as np
    from numpy.typing import ArrayLike

    from .history import History


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (imported on first use; no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG; folders made as needed), close it, return the path."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_learning_curves(history: History, path: PathLike, title: Optional[str] = None) -> Path:
    """Two panels, cost and accuracy per epoch, for train / validation / test.

    ``history`` is a :class:`~tinygrad_mnist.train.History`; the figure is saved to
    ``path`` (PNG) and the path is returned.
    """
    plt = pyplot()
    epochs = range(1, history.epochs + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = {"train": "train (running mean over the epoch's batches)", "val": "validation (end of epoch)",
              "test": "test (end of epoch)"}
    for split, style in (("train", "-o"), ("val", "-s"), ("test", "-^")):
        losses, accs = getattr(history, f"{split}_loss"), getattr(history, f"{split}_accuracy")
        if losses:
            ax_loss.plot(epochs, losses, style, label=labels[split], markersize=3 if len(losses) > 1 else 6)
            ax_acc.plot(epochs, [100 * a for a in accs], style, label=labels[split],
                        markersize=3 if len(accs) > 1 else 6)
    ax_loss.set(xlabel="epoch", ylabel="cost (mean cross-entropy)", title="Cost")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if history.epochs <= 20:
            ax.set_xticks(list(epochs))
        if history.epochs == 1:   # one point per line: a readable axis instead of 0.96 … 1.04
            ax.set_xlim(0.5, 1.5)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def plot_jacobian(matrix: ArrayLike, path: PathLike, title: Optional[str] = None, xlabel: str = "input index j",
                  ylabel: str = "output index i") -> Path:
    """Heat map of a Jacobian ``J[i, j] = ∂y_i/∂x_j``, for teaching.

    A diverging colour map centred on zero (red positive, blue negative, white zero) makes
    the structure visible: the diagonal of an elementwise activation, the dense
    ``diag(s) − s sᵀ`` of softmax, the repeated ``xᵀ`` blocks of ``I ⊗ xᵀ`` for a Linear
    weight.  ``matrix`` is any 2-d array (a 1-d one is drawn as a row); the figure is
    saved to ``path`` (PNG) and the path is returned.
    """
    import numpy as np

    plt = pyplot()
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
    return _save(fig, path, dpi=120)


def plot_finite_difference_errors(ns: ArrayLike, errors: Mapping[str, ArrayLike], path: PathLike,
                                  title: Optional[str] = None,
                                  guides: bool = True) -> Path:
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

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ns = np.asarray(ns, dtype=np.float64)
    # strict=False: a marker pool of five, not one marker per line (a sixth line is not drawn, as before)
    for (label, errs), marker in zip(errors.items(), "os^dv", strict=False):
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
    return _save(fig, path)


# -- figures of the course experiments ------------------------------------------------------
def run_title(dataset: str, batch_size: Optional[int] = None, lr: Optional[float] = None,
              epochs: Optional[int] = None, seconds: Optional[float] = None, prefix: str = "") -> str:
    """``"prefix — MNIST, batch 64, lr 0.5, 20 epochs, 12.3 s training"`` (parts left out when None)."""
    parts = [dataset]
    if batch_size is not None:
        parts.append(f"batch {batch_size}")
    if lr is not None:
        parts.append(f"lr {lr:g}")
    if epochs is not None:
        parts.append(f"{epochs} epoch{'' if epochs == 1 else 's'}")
    if seconds is not None:
        parts.append(f"{seconds:.1f} s training")
    text = ", ".join(parts)
    return f"{prefix} — {text}" if prefix else text


def plot_curves(histories: Mapping[str, History], path: PathLike, title: str, train: str = "running",
                splits: Sequence[str] = ("train", "val", "test"), error: bool = False) -> Path:
    """Two panels, cost and accuracy (or error) per epoch, for one or more runs.

    Parameters
    ----------
    histories : dict
        ``{label: History}``; each run has its own colour, the splits their line styles
        (train solid, validation dotted, test dashed).
    path : str or Path
        Where the PNG goes; returned.
    title : str
        The figure title (see :func:`run_title`: dataset name, batch size, lr, epochs, time).
    train : {"running", "full"}, default="running"
        Which training figures: the running mean of the batch values during the epoch, or
        the end-of-epoch model on the whole training set (``History.train_eval_*``).
    splits : tuple of str
        Which of "train", "val", "test" to draw (when recorded).
    error : bool, default=False
        Plot the error rate (100 − accuracy, %) instead of the accuracy.
    """
    if train not in ("running", "full"):
        raise ValueError(f"plot_curves: train must be 'running' or 'full', got {train!r}")
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.3))
    styles = {"train": "-", "val": ":", "test": "--"}
    names = {"train": "train" + (" (running mean)" if train == "running" else " (whole set, end of epoch)"),
             "val": "validation", "test": "test"}
    for k, (label, h) in enumerate(histories.items()):
        color = f"C{k}"
        for split in splits:
            key = "train_eval" if (split == "train" and train == "full") else split
            losses, accs = getattr(h, f"{key}_loss"), getattr(h, f"{key}_accuracy")
            if not losses:
                continue
            epochs = range(1, len(losses) + 1)
            name = names[split] if len(histories) == 1 else f"{label}: {names[split]}"
            ax_loss.plot(epochs, losses, styles[split], color=color, marker="o", markersize=2.5, label=name)
            ys = [100 * (1 - a) for a in accs] if error else [100 * a for a in accs]
            ax_acc.plot(epochs, ys, styles[split], color=color, marker="o", markersize=2.5, label=name)
    ax_loss.set(xlabel="epoch", ylabel="cost (mean cross-entropy)", title="Cost")
    ax_acc.set(xlabel="epoch", ylabel="error (%)" if error else "accuracy (%)", title="Error" if error else "Accuracy")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_lines(panels: Sequence[Tuple[str, Mapping[str, Sequence[float]]]], path: PathLike, xlabel: str,
               ylabel: str, title: Optional[str] = None, logy: bool = False,
               styles: Optional[Mapping[str, str]] = None) -> Path:
    """One or more panels of labelled lines.

    ``panels`` is a list of ``(panel title, {label: sequence of y})``; x runs 1..len(y).
    ``styles`` optionally maps a label to a matplotlib format string.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), squeeze=False)
    for ax, (panel_title, lines) in zip(axes[0], panels, strict=True):
        for label, ys in lines.items():
            fmt = (styles or {}).get(label, "-o")
            ax.plot(range(1, len(ys) + 1), ys, fmt, markersize=2.5, label=label)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=panel_title)
        if logy:
            ax.set_yscale("log")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _mosaic(tiles: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """``(n, H, W)`` tiles → one ``(rows·(H+pad), cols·(W+pad))`` array (NaN between tiles)."""
    import numpy as np

    n, h, w = tiles.shape
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = tiles[i]
    return out


def plot_image_grid(images: ArrayLike, captions: Sequence[str], path: PathLike, title: Optional[str] = None,
                    ncols: int = 8, colors: Optional[Sequence[str]] = None) -> Path:
    """Images (``(n, H, W)``, any range) in a grid, each with its caption above it.

    Drawn as one mosaic in a single axes (fast for many images); ``colors`` optionally
    gives each caption a colour (e.g. red for an error).
    """
    import numpy as np

    plt = pyplot()
    images = np.asarray(images, dtype=np.float64)
    n = len(images)
    if n == 0:
        raise ValueError("plot_image_grid: no images")
    if images.ndim != 3:
        raise ValueError(f"plot_image_grid: expected images of shape (n, H, W), got {images.shape}")
    if len(captions) != n:
        raise ValueError(f"plot_image_grid: {n} images but {len(captions)} captions")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    _, h, w = images.shape
    pad = max(2, h // 3)                       # room for the caption above each image
    lo, hi = images.min(axis=(1, 2), keepdims=True), images.max(axis=(1, 2), keepdims=True)
    tiles = np.pad((images - lo) / np.where(hi > lo, hi - lo, 1.0), ((0, 0), (pad, 0), (0, 0)), constant_values=np.nan)
    mosaic = _mosaic(tiles, ncols, pad=max(1, w // 10))
    fig, ax = plt.subplots(figsize=(1.5 * ncols, 1.75 * nrows + 0.5))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    step_y, step_x = h + pad + max(1, w // 10), w + max(1, w // 10)
    for i, caption in enumerate(captions):
        r, c = divmod(i, ncols)
        ax.text(c * step_x + w / 2 - 0.5, r * step_y + pad / 2 - 0.5, caption, ha="center", va="center",
                fontsize=7, color="black" if colors is None else colors[i])
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_misclassified(images: ArrayLike, labels: ArrayLike, predicted: ArrayLike, path: PathLike,
                       title: Optional[str] = None, limit: int = 32, ncols: int = 8) -> Path:
    """The first ``limit`` test images whose prediction is wrong, captioned "true t → pred p"."""
    import numpy as np

    labels, predicted = np.asarray(labels), np.asarray(predicted)
    wrong = np.flatnonzero(labels != predicted)[:limit]
    if wrong.size == 0:
        raise ValueError("plot_misclassified: every image is classified correctly")
    captions = [f"#{i}: true {labels[i]} → {predicted[i]}" for i in wrong]
    return plot_image_grid(np.asarray(images)[wrong], captions, path, title, ncols=ncols)


def plot_confusion_matrix(matrix: ArrayLike, path: PathLike, title: Optional[str] = None,
                          labels: Optional[Sequence[str]] = None) -> Path:
    """The confusion matrix ``M[t, p]`` with scikit-learn's ``ConfusionMatrixDisplay``."""
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = pyplot()
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay(m, display_labels=labels if labels is not None else range(len(m))).plot(
        ax=ax, cmap="Blues", colorbar=True, values_format="d")
    ax.set(xlabel="predicted digit", ylabel="true digit")
    ax.set_title(title or "Confusion matrix", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_embeddings(embeddings: Mapping[str, np.ndarray], labels: ArrayLike, path: PathLike,
                    title: Optional[str] = None) -> Path:
    """Side-by-side 2-d scatter plots coloured by class, one legend.

    ``embeddings`` is ``{panel title: ndarray of shape (n, 2)}``; ``labels`` (n,) ints.
    """
    import numpy as np

    plt = pyplot()
    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(embeddings), figsize=(6.2 * len(embeddings), 5.6), squeeze=False)
    classes = np.unique(labels)
    for ax, (panel, emb) in zip(axes[0], embeddings.items(), strict=True):
        emb = np.asarray(emb)
        for c in classes:
            sel = labels == c
            ax.scatter(emb[sel, 0], emb[sel, 1], s=4, color=f"C{int(c) % 10}", label=str(c), alpha=0.8)
        ax.set_title(panel, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, names = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, names, title="digit", loc="center right", markerscale=3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    return _save(fig, path)


def plot_weight_templates(weights: ArrayLike, image_shape: Tuple[int, int], path: PathLike,
                          title: Optional[str] = None, ncols: int = 8) -> Path:
    """Each row of a first-layer weight matrix ``(units, H·W)`` drawn as an ``H×W`` image
    (diverging colours, each unit scaled to its own largest magnitude so that red is +1
    and blue −1): what pattern each hidden unit looks for."""
    import numpy as np

    plt = pyplot()
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != int(np.prod(image_shape)):
        raise ValueError(f"plot_weight_templates: expected (units, {int(np.prod(image_shape))}), got {w.shape}")
    n = w.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    limit = np.abs(w).max(axis=1, keepdims=True)
    tiles = (w / np.where(limit > 0, limit, 1.0)).reshape(n, *image_shape)
    fig, ax = plt.subplots(figsize=(1.25 * ncols, 1.25 * nrows + 0.6))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    ax.imshow(_mosaic(tiles, ncols, pad=max(1, image_shape[1] // 7)), cmap=cmap, vmin=-1, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
