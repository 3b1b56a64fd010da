"""Validation: with 10,000 images held out, what are the test and validation errors at the best-validation epoch?

Run (full: 5 seeds × 2 engines, 50,000 training + 10,000 validation images, 20 epochs):

    python -m experiments run validation --jobs 2
    python -m experiments run validation --quick

10,000 images of the training set (a seeded split, ``--split-seed``) become the
validation set; the baseline network trains on the other 50,000 (``--train-size``
selects among those).  After every epoch the validation and test errors are computed as
the assignment defines them, the mean cross-entropy over the set.  For each seed, e_va*
is the minimum validation error over the epochs and e_te* the test error at that epoch
(the earliest epoch on ties): the model one would keep by early stopping, without
looking at the test set.  The misclassification rates (%) at that epoch stand beside them.

Writes into ``results/validation/``: ``validation_curves.png`` (validation and test
error, mean cross-entropy, and misclassification rate per epoch, best epoch marked, one
column per engine), ``best_epochs.md/.csv`` (per seed: best epoch, e_te*, e_va*),
``summary.md/.csv`` (averages), ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Tuple

import numpy as np

from experiments.common import dataset_label, mean_std, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.studies.mlp import baseline
from experiments.studies.mlp.baseline import CE, MIS, error_curves, plot_error_grid, renamed
from experiments.training import Data, train

NAME = "validation"
QUESTION = ("With 10,000 validation images held out of the training set, what are the test and validation "
            "errors (e_te*, e_va*), as mean cross-entropy, at the epoch of minimum validation error, per seed and "
            "on average?")

#: The error keys of :func:`best_pair` (and metrics.json) and their table columns.
COLUMNS = {"e_te_star_mean_ce": f"e_te* {CE}", "e_va_star_mean_ce": f"e_va* {CE}",
           "test_misclassification_pct_at_best": f"test_{MIS} at best epoch",
           "val_misclassification_pct_at_best": f"val_{MIS} at best epoch"}


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


def best_pair(history: Mapping) -> Dict[str, float]:
    """The errors at the epoch of minimum validation error (the earliest on ties).

    Parameters
    ----------
    history : dict
        A ``History`` as a dict, with validation and test losses and accuracies.

    Returns
    -------
    dict
        ``best_epoch`` (from 1); ``e_te_star_mean_ce`` and ``e_va_star_mean_ce``, the test and
        validation errors (mean cross-entropy) at that epoch, e_va* being the minimum of
        ``history["val_loss"]``; ``test_misclassification_pct_at_best`` and
        ``val_misclassification_pct_at_best``, the misclassification rates (%) there.
    """
    if not history["val_loss"]:
        raise ValueError("validation: the run recorded no validation loss (val_size is 0)")
    va, va_mis = error_curves(history, "val")
    te, te_mis = error_curves(history, "test")
    k = int(np.argmin(va))
    return {"best_epoch": k + 1, "e_te_star_mean_ce": te[k], "e_va_star_mean_ce": va[k],
            "test_misclassification_pct_at_best": te_mis[k], "val_misclassification_pct_at_best": va_mis[k]}


def averages(rows: List[Mapping]) -> Dict[str, float]:
    """Mean and sample standard deviation over seeds of each error of :func:`best_pair`
    (``<key>`` and ``std_<key>``) and the number of seeds."""
    out: Dict[str, float] = {"seeds": len(rows)}
    for key in COLUMNS:
        ms = mean_std(r[key] for r in rows)
        out[key], out[f"std_{key}"] = ms["mean"], ms["std"]
    return out


def run(cfg: Config, log=print) -> dict:
    if not cfg.val_size:
        raise ValueError("validation: val_size must be positive")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    plan = [(e, s) for e in cfg.engines for s in cfg.seeds]
    tasks = [(baseline.make_run(cfg, e, seed=s), data) for e, s in plan]
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)

    rows = []
    for (e, s), r in zip(plan, results, strict=True):
        te, te_mis = error_curves(r["history"], "test")
        rows.append({"engine": e, "seed": s, **best_pair(r["history"]), "final_test_error_mean_ce": te[-1],
                     "final_test_misclassification_pct": te_mis[-1]})
    log("\n" + write_table(out, "best_epochs", renamed(rows, {
        **COLUMNS, "final_test_error_mean_ce": f"final test_error {CE}",
        "final_test_misclassification_pct": f"final test_{MIS}"})))
    summary = {e: averages([r for r in rows if r["engine"] == e]) for e in cfg.engines}
    names = {k: f"mean {v}" for k, v in COLUMNS.items()} | {f"std_{k}": f"std {v}" for k, v in COLUMNS.items()}
    log(write_table(out, "summary", renamed([{"engine": e, **m} for e, m in summary.items()], names)))

    panels = []
    for e in cfg.engines:
        lines = {}
        for i, ((_, s), r) in enumerate((p, r) for p, r in zip(plan, results, strict=True) if p[0] == e):
            best = best_pair(r["history"])["best_epoch"]
            lines[f"seed {s}: validation"] = (*error_curves(r["history"], "val"), "-", f"C{i}", best)
            lines[f"seed {s}: test"] = (*error_curves(r["history"], "test"), "--", f"C{i}", best)
        panels.append((f"{e} — ★: epoch of minimum validation error e_va*\n(the test line's ★ is e_te*)", lines))
    first = results[0]
    plot_error_grid(panels, out / "validation_curves.png",
                    f"Validation and test error (mean cross-entropy) and misclassification rate per epoch — "
                    f"MLP {first['architecture']}, {dataset_label(cfg.dataset)}, {first['n_train']:,} train + "
                    f"{first['n_val']:,} validation images, batch {cfg.batch_size}, lr {cfg.lr:g}, {cfg.epochs} "
                    f"epochs, {np.mean([r['seconds'] for r in results]):.1f} s per run")

    metrics = {"setup": setup_info(cfg, first, seeds=list(cfg.seeds), engines=list(cfg.engines),
                                   error="mean cross-entropy over the dataset; e_va* = minimum over the epochs of "
                                         "the validation error, e_te* = the test error at that epoch"),
               "per_seed": rows, "mean": summary}
    write_json(out / "metrics.json", metrics)
    log("Answer: " + answer(metrics))
    return metrics


def answer(metrics: dict) -> str:
    """The study's answer: the mean (e_te*, e_va*) per engine with the misclassification rates there."""
    return "\n".join(
        f"{e}: (e_te*, e_va*) = ({m['e_te_star_mean_ce']:.4f} ± {m['std_e_te_star_mean_ce']:.4f}, "
        f"{m['e_va_star_mean_ce']:.4f} ± {m['std_e_va_star_mean_ce']:.4f}) (mean CE, mean ± std over "
        f"{m['seeds']} seeds); misclassification at that epoch {m['test_misclassification_pct_at_best']:.2f} % test, "
        f"{m['val_misclassification_pct_at_best']:.2f} % validation" for e, m in metrics["mean"].items())


def describe(metrics: dict, config: dict) -> str:
    parts = []
    for e, m in metrics["mean"].items():
        te_mis, va_mis = m["test_misclassification_pct_at_best"], m["val_misclassification_pct_at_best"]
        parts.append(f"{e}: (e_te*, e_va*) = ({m['e_te_star_mean_ce']:.4f}, {m['e_va_star_mean_ce']:.4f}) on average "
                     f"(std {m['std_e_te_star_mean_ce']:.4f} and {m['std_e_va_star_mean_ce']:.4f}), with "
                     f"{te_mis:.2f}% (test) and {va_mis:.2f}% (validation) misclassified at that epoch")
    epochs = [r["best_epoch"] for r in metrics["per_seed"]]
    s = metrics["setup"]
    text = (f"Holding out {s['n_val']:,} validation images and training on {s['n_train']:,}, with errors as the mean "
            f"cross-entropy over each set: " + "; ".join(parts) + ". "
            f"The epoch of minimum validation error ranges from {min(epochs)} to {max(epochs)} of {s['epochs']}. ")
    gap = float(np.mean([r["e_te_star_mean_ce"] - r["e_va_star_mean_ce"] for r in metrics["per_seed"]]))
    text += (f"e_te* − e_va* averages {gap:+.4f}: the validation minimum is slightly optimistic "
             f"because the epoch was chosen on it, while the test set was never used to choose." if gap > 0 else
             f"e_te* − e_va* averages {gap:+.4f}: on these data the test set happens to be easier "
             f"than the validation set; the test set was never used to choose the epoch.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
