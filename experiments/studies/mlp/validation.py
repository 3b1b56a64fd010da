"""Validation: with 10,000 validation images held out, what are the test and validation errors at the best-validation epoch?

Run (full: 5 seeds × 2 engines, 50,000 training + 10,000 validation images, 20 epochs):

    python -m experiments run validation --jobs 2
    python -m experiments run validation --quick

10,000 images of the training set (a seeded split, ``--split-seed``) become the
validation set; the baseline network trains on the other 50,000 (``--train-size``
selects among those).  For each seed, e_va* is the minimum validation error over the
epochs and e_te* the test error at that epoch (the earliest epoch on ties): the model one
would keep by early stopping, without looking at the test set.

Writes into ``results/validation/``: ``validation_curves.png`` (validation and test
error per epoch, best epoch marked, one panel per engine), ``best_epochs.md/.csv`` (per
seed: best epoch, e_te*, e_va*), ``summary.md/.csv`` (averages), ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from experiments.studies.mlp import baseline
from experiments.common import dataset_label, error_pct, mean_std, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.training import Data, train

NAME = "validation"
QUESTION = ("With 10,000 validation images held out of the training set, what are the test and validation "
            "errors (e_te*, e_va*) at the epoch of minimum validation error, per seed and on average?")


@dataclass
class Config(baseline.Config):
    # the baseline's fields (network, optimiser, data, engines), plus:
    val_size: int = 10000
    seeds: Tuple[int, ...] = (0, 1, 2, 3, 4)

    def quick(self) -> "Config":
        return replace(self, train_size=5000, val_size=5000, test_size=2000, epochs=6)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, val_size=300, test_size=0, hidden=(16,), epochs=3,
                       seeds=(0, 1))


def best_pair(history: dict) -> Tuple[int, float, float]:
    """``(epoch, e_te*, e_va*)`` in percent at the minimum validation error (earliest on ties)."""
    val = np.asarray(history["val_accuracy"])
    if val.size == 0:
        raise ValueError("validation: the run recorded no validation accuracy (val_size is 0)")
    k = int(np.argmax(val))
    return k + 1, error_pct(history["test_accuracy"][k]), error_pct(val[k])


def run(cfg: Config, log=print) -> dict:
    from matplotlib.ticker import MaxNLocator

    from tinygrad_mnist.plots import pyplot

    if not cfg.val_size:
        raise ValueError("validation: val_size must be positive")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    plan = [(e, s) for e in cfg.engines for s in cfg.seeds]
    tasks = [(baseline.make_run(cfg, e, seed=s), data) for e, s in plan]
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)

    rows, pairs = [], {e: [] for e in cfg.engines}
    for (e, s), r in zip(plan, results):
        epoch, e_te, e_va = best_pair(r["history"])
        pairs[e].append((e_te, e_va))
        rows.append({"engine": e, "seed": s, "best_epoch": epoch, "e_te_star_pct": e_te, "e_va_star_pct": e_va,
                     "final_test_error_pct": error_pct(r["history"]["test_accuracy"][-1])})
    log("\n" + write_table(out, "best_epochs", rows))
    summary = []
    for e, ps in pairs.items():
        te, va = mean_std(p[0] for p in ps), mean_std(p[1] for p in ps)
        summary.append({"engine": e, "seeds": te["n"], "mean_e_te_star_pct": te["mean"], "std_e_te_star": te["std"],
                        "mean_e_va_star_pct": va["mean"], "std_e_va_star": va["std"]})
    log(write_table(out, "summary", summary))

    plt = pyplot()
    fig, axes = plt.subplots(1, len(cfg.engines), figsize=(5.8 * len(cfg.engines), 4.3), squeeze=False)
    for ax, e in zip(axes[0], cfg.engines):
        for i, ((ee, s), r) in enumerate((p, r) for p, r in zip(plan, results) if p[0] == e):
            h = r["history"]
            epochs = np.arange(1, len(h["val_accuracy"]) + 1)
            ax.plot(epochs, [error_pct(a) for a in h["val_accuracy"]], "-", color=f"C{i}", label=f"seed {s}: validation")
            ax.plot(epochs, [error_pct(a) for a in h["test_accuracy"]], "--", color=f"C{i}", alpha=0.6,
                    label=f"seed {s}: test")
            epoch, e_te, e_va = best_pair(h)
            ax.plot([epoch], [e_va], "*", color=f"C{i}", markersize=12, markeredgecolor="black")
        ax.set(xlabel="epoch", ylabel="error (%)", title=f"{e}: ★ = minimum validation error")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    first = results[0]
    fig.suptitle(f"MLP {first['architecture']} — {dataset_label(cfg.dataset)}, {first['n_train']:,} train + "
                 f"{first['n_val']:,} validation images, batch {cfg.batch_size}, lr {cfg.lr:g}, {cfg.epochs} epochs, "
                 f"{np.mean([r['seconds'] for r in results]):.1f} s per run", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "validation_curves.png", dpi=110)
    plt.close(fig)

    metrics = {"setup": setup_info(cfg, first, seeds=list(cfg.seeds), engines=list(cfg.engines)),
               "per_seed": rows,
               "mean": {row["engine"]: {"e_te_star_pct": row["mean_e_te_star_pct"], "e_va_star_pct": row["mean_e_va_star_pct"],
                                        "std_e_te_star": row["std_e_te_star"], "std_e_va_star": row["std_e_va_star"]}
                        for row in summary}}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    parts = []
    for e, m in metrics["mean"].items():
        parts.append(f"{e}: (e_te*, e_va*) = ({m['e_te_star_pct']:.2f}%, {m['e_va_star_pct']:.2f}%) on average "
                     f"(std {m['std_e_te_star']:.2f} and {m['std_e_va_star']:.2f} points)")
    epochs = [r["best_epoch"] for r in metrics["per_seed"]]
    s = metrics["setup"]
    text = (f"Holding out {s['n_val']:,} validation images and training on {s['n_train']:,}: " + "; ".join(parts) + ". "
            f"The best-validation epoch ranges from {min(epochs)} to {max(epochs)} of {s['epochs']}. ")
    gaps = [r["e_te_star_pct"] - r["e_va_star_pct"] for r in metrics["per_seed"]]
    text += (f"e_te* − e_va* averages {np.mean(gaps):+.2f} points: the validation minimum is slightly optimistic "
             f"because the epoch was chosen on it, while the test set was never used to choose." if np.mean(gaps) > 0 else
             f"e_te* − e_va* averages {np.mean(gaps):+.2f} points: on these data the test set happens to be easier "
             f"than the validation set; the test set was never used to choose the epoch.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
