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
