"""Baseline: how well does a two-layer fully connected network classify MNIST, and which digits does it get wrong?

Run (full: 20 epochs on all 60,000 training images, both engines, under a minute on 2 cores):

    python -m experiments run baseline
    python -m experiments run baseline --quick               # 5,000 images, 5 epochs

The classic network 784-64-10 (sigmoid hidden layer, N(0, 0.1²) weights, zero biases,
softmax cross-entropy) trained by plain SGD, on the numpy engine and on its torch twin
from the same initial weights and the same batches.

"Error" is the assignment's dataset error: the mean cross-entropy over a dataset,
e = (1/N) Σ_i L(y_i, f(x_i)).  After every epoch the end-of-epoch model is evaluated on
the whole training set (a separate pass in eval mode, ``History.train_eval_loss``: e_tr)
and on the test set (e_te); the running mean of the batch losses during the epoch is
not used for e_tr.  The misclassification rate (%) is reported beside every error.  The
final test error is the last epoch's (no selection on the test set); the misclassified
test images are the numpy model's.

Writes into ``results/baseline/``: ``learning_curves.png`` (cost; accuracy),
``error_curves.png`` (e_tr and e_te as mean cross-entropy; misclassification rates;
per epoch), ``misclassified.png``, ``epochs.md/.csv``, ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from experiments.common import DataConfig, dataset_label, error_pct, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.training import Data, Run, history_of, train
from tinygrad_mnist.presets import TUNED_RECIPE

NAME = "baseline"
QUESTION = ("How well does a two-layer fully connected network (784-64-10, sigmoid) classify MNIST, "
            "epoch by epoch, and which test digits does it get wrong?")

#: What e_tr is, said in every table, figure and metrics.json of the MLP studies.
TRAIN_ERROR_IS = "mean cross-entropy of the end-of-epoch model over the whole training set (a separate pass)"
CE = "(mean CE)"          # the unit of an error column: the mean cross-entropy over the dataset
MIS = "misclassification_%"


@dataclass
class Config(DataConfig):
    """The classic MLP trained with the tuned recipe (``tinygrad_mnist.presets.TUNED_RECIPE``:
    plain SGD, batch 64, lr 0.5 on the mean loss); ``tinygrad-mnist train`` uses the
    assignment recipe instead (batch 256, lr 0.001 on the summed loss).  The README's
    "Two recipes" explains why the learning rates differ by about the batch size."""

    hidden: Tuple[int, ...] = (64,)
    activation: str = "sigmoid"
    init: str = "normal"
    init_std: float = 0.1
    optimizer: str = TUNED_RECIPE.optimizer
    lr: float = TUNED_RECIPE.lr                 # learning rate, on the loss averaged over the batch
    momentum: float = 0.0
    batch_size: int = TUNED_RECIPE.batch_size
    epochs: int = 20
    seed: int = 0
    engines: Tuple[str, ...] = ("numpy", "torch")
    misclassified: int = 32          # how many misclassified test images to show

    def quick(self) -> "Config":
        return replace(self, train_size=5000, test_size=2000, epochs=5)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16,), epochs=2, misclassified=8)


def make_run(cfg: Config, engine: str, **changes) -> Run:
    """The :class:`Run` of this config on ``engine`` (``changes`` override fields)."""
    run = Run(engine=engine, hidden=tuple(cfg.hidden), activation=cfg.activation, init=cfg.init,
              init_std=cfg.init_std, optimizer=cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
              batch_size=cfg.batch_size, epochs=cfg.epochs, seed=cfg.seed)
    return replace(run, **changes)


def error_curves(history: Mapping, split: str) -> Tuple[List[float], List[float]]:
    """The dataset error and the misclassification rate of one split, per epoch.

    Parameters
    ----------
    history : dict
        A ``History`` as a dict (``result["history"]``).
    split : {"train", "val", "test"}
        "train" reads the end-of-epoch pass over the whole training set
        (``train_eval_*``), never the running mean of the batch losses.

    Returns
    -------
    errors : list of float
        e per epoch: the mean cross-entropy over the split.
    misclassification : list of float
        The misclassification rate per epoch, in percent.
    """
    key = "train_eval" if split == "train" else split
    losses, accuracies = history[f"{key}_loss"], history[f"{key}_accuracy"]
    if not losses:
        raise ValueError(f"error_curves: the history recorded no {key} loss"
                         + (" (train with eval_train=True)" if split == "train" else ""))
    return [float(v) for v in losses], [error_pct(a) for a in accuracies]


def renamed(rows: Sequence[Mapping], names: Mapping[str, str]) -> List[Dict]:
    """``rows`` with their keys renamed by ``names`` (keys not in ``names`` kept): the
    snake-case keys of metrics.json become the self-explaining column names of a table."""
    return [{names.get(k, k): v for k, v in row.items()} for row in rows]


def plot_error_grid(panels, path, title: str):
    """Error curves in two rows: the dataset error (mean cross-entropy) above, the
    misclassification rate (%) below; one column per panel.

    Parameters
    ----------
    panels : list of (str, dict)
        ``(column title, {label: (errors, misclassification %, matplotlib format, colour[, epoch])})``;
        x runs over epochs 1..len(errors); the optional epoch (from 1) puts a star on the
        line there, in both rows.
    path : str or Path
        Where the PNG goes; returned.
    title : str
        The figure's title.
    """
    from matplotlib.ticker import MaxNLocator

    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    width = max(7.5, 5.8 * len(panels))
    fig, axes = plt.subplots(2, len(panels), figsize=(width, 7.6), squeeze=False, sharex="col")
    for col, (panel_title, lines) in enumerate(panels):
        ax_ce, ax_mis = axes[0][col], axes[1][col]
        for label, (ce, mis, fmt, color, *mark) in lines.items():
            epochs = np.arange(1, len(ce) + 1)
            for ax, ys in ((ax_ce, ce), (ax_mis, mis)):
                ax.plot(epochs, ys, fmt, color=color, marker="o", markersize=2.5, label=label)
                for k in mark:
                    ax.plot([k], [ys[k - 1]], "*", color=color, markersize=12, markeredgecolor="black", zorder=4)
        ax_ce.set_ylabel("error e (mean cross-entropy)")
        ax_ce.set_title(panel_title, fontsize=9)
        ax_mis.set(xlabel="epoch", ylabel="misclassification rate (%)")
        for ax in (ax_ce, ax_mis):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, ncol=2 if len(lines) > 6 else 1)
    fig.suptitle(wrapped(title, int(13 * width)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def wrapped(title: str, width: int) -> str:
    """``title`` with each of its lines broken at ``width`` characters (a figure title that fits)."""
    import textwrap

    return "\n".join(part for line in title.splitlines() for part in textwrap.wrap(line, width))


def epoch_table(results: Mapping[str, dict]) -> List[Dict]:
    """One row per (engine, epoch): e_tr and e_te (mean cross-entropy) with the
    misclassification rates beside them, the running mean of the batch losses, seconds."""
    rows = []
    for engine, r in results.items():
        h = r["history"]
        (tr, tr_mis), (te, te_mis) = error_curves(h, "train"), error_curves(h, "test")
        for e in range(len(te)):
            rows.append({"engine": engine, "epoch": e + 1, f"train_error {CE}": tr[e], f"train_{MIS}": tr_mis[e],
                         f"test_error {CE}": te[e], f"test_{MIS}": te_mis[e],
                         "running mean of batch losses": h["train_loss"][e], "seconds": h["epoch_seconds"][e]})
    return rows


def final_errors(result: dict) -> Dict[str, float]:
    """The last epoch's e_tr and e_te (mean cross-entropy) and misclassification rates (%)."""
    (tr, tr_mis), (te, te_mis) = error_curves(result["history"], "train"), error_curves(result["history"], "test")
    return {"train_error_mean_ce": tr[-1], "train_misclassification_pct": tr_mis[-1], "test_error_mean_ce": te[-1],
            "test_misclassification_pct": te_mis[-1], "seconds": result["seconds"]}


def run(cfg: Config, log=print) -> dict:
    from experiments.common import load_splits
    from tinygrad_mnist.plots import plot_curves, plot_misclassified

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    tasks = [(make_run(cfg, e, extras=("test_outputs",)), data) for e in cfg.engines]
    results = dict(zip(cfg.engines, run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log), strict=True))
    histories = {e: history_of(r) for e, r in results.items()}
    first = results[cfg.engines[0]]
    times = ", ".join(f"{e} {r['seconds']:.1f} s" for e, r in results.items())
    title = (f"MLP {first['architecture']} — {dataset_label(cfg.dataset)}, batch {cfg.batch_size}, "
             f"lr {cfg.lr:g}, {cfg.epochs} epochs, training {times}")
    plot_curves(histories, out / "learning_curves.png", title, train="full", splits=("train", "test"))
    lines = {}
    for k, (e, r) in enumerate(results.items()):
        prefix = f"{e}: " if len(results) > 1 else ""
        lines[prefix + "train (whole set, end of epoch)"] = (*error_curves(r["history"], "train"), "-", f"C{k}")
        lines[prefix + "test"] = (*error_curves(r["history"], "test"), "--", f"C{k}")
    plot_error_grid([("e_tr and e_te after every epoch", lines)], out / "error_curves.png",
                    f"{title}\ne_tr: {TRAIN_ERROR_IS}")
    write_table(out, "epochs", epoch_table(results))

    finals = {e: final_errors(r) for e, r in results.items()}
    rows = [{"engine": e, "architecture": r["architecture"], "parameters": r["parameters"],
             "epochs": len(r["history"]["test_loss"]), **finals[e]} for e, r in results.items()]
    log("\n" + write_table(out, "summary", renamed(rows, {
        "train_error_mean_ce": f"final train_error {CE}", "test_error_mean_ce": f"final test_error {CE}",
        "train_misclassification_pct": f"final train_{MIS}", "test_misclassification_pct": f"final test_{MIS}"})))

    _, _, test = load_splits(data, log=None)
    predicted = results[cfg.engines[0]]["test_outputs"].argmax(axis=1)
    n_wrong = int((predicted != test.labels).sum())
    shown = min(cfg.misclassified, n_wrong)
    plot_misclassified(test.images, test.labels, predicted, out / "misclassified.png", limit=cfg.misclassified,
                       title=f"{cfg.engines[0]} MLP {first['architecture']}: the first {shown} "
                             f"of {n_wrong} misclassified test images (true → predicted)")
    wrong_by_class = np.bincount(test.labels[predicted != test.labels], minlength=test.num_classes)
    metrics = {"setup": setup_info(cfg, first, engines=list(cfg.engines), train_error=TRAIN_ERROR_IS,
                                   error="mean cross-entropy over the dataset (the assignment's e)"),
               "final": finals, "n_misclassified": n_wrong,
               "misclassified_by_true_class": wrong_by_class.tolist()}
    write_json(out / "metrics.json", metrics)
    log("Answer: " + answer(metrics))
    return metrics


def answer(metrics: dict) -> str:
    """The study's answer in one line per engine: the final e_te and e_tr with their misclassification rates."""
    return "\n".join(f"{e}: final test error e_te = {f['test_error_mean_ce']:.4f} (mean CE), misclassification "
                     f"{f['test_misclassification_pct']:.2f} %; train error e_tr = {f['train_error_mean_ce']:.4f} "
                     f"(mean CE), {f['train_misclassification_pct']:.2f} %" for e, f in metrics["final"].items())


def describe(metrics: dict, config: dict) -> str:
    """The report's reading of the numbers."""
    finals = metrics["final"]
    parts = [f"{e}: a final test error e_te of {f['test_error_mean_ce']:.4f} (mean cross-entropy; "
             f"{f['test_misclassification_pct']:.2f}% misclassified), e_tr {f['train_error_mean_ce']:.4f} "
             f"({f['train_misclassification_pct']:.2f}%) after {metrics['setup']['epochs']} epochs in "
             f"{f['seconds']:.1f} s" for e, f in finals.items()]
    by_class = metrics["misclassified_by_true_class"]
    worst = int(np.argmax(by_class))
    text = (f"The {metrics['setup']['architecture']} network ({metrics['setup']['parameters']:,} parameters) reaches "
            + "; ".join(parts) + ". ")
    if len(finals) == 2:
        (a, am), (b, bm) = ((f["test_error_mean_ce"], f["test_misclassification_pct"]) for f in finals.values())
        text += (f"The two engines, started from the same weights on the same batches, differ by {abs(a - b):.4f} in "
                 f"e_te and {abs(am - bm):.2f} points in misclassification. ")
    f0 = next(iter(finals.values()))
    gap = f0["test_error_mean_ce"] - f0["train_error_mean_ce"]
    ratio = f0["test_error_mean_ce"] / f0["train_error_mean_ce"] if f0["train_error_mean_ce"] > 0 else float("inf")
    text += (f"e_te − e_tr = {gap:+.4f} (e_te/e_tr = {ratio:.2f}), "
             f"{'a small generalisation gap' if ratio < 1.5 else 'a visible generalisation gap'}. "
             f"Of the {metrics['n_misclassified']} misclassified test images, the true digit {worst} is the most "
             f"frequent ({by_class[worst]}). e_tr is the {TRAIN_ERROR_IS}, directly comparable with e_te.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
