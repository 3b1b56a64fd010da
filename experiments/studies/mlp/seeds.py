"""Seeds: is the baseline's test error robust to the random seed, compared with changing the configuration?

Run (full: 5 seeds × 2 engines of the baseline, and 5 seeds of each compared hidden width;
a few minutes on 2 cores):

    python -m experiments run seeds --jobs 2
    python -m experiments run seeds --quick

The baseline (see ``experiments/studies/mlp/baseline.py``) is trained with each seed (the seed draws
the initial weights and the batch order; the data are fixed), on both engines.  One seed
is trained twice to show the run is deterministic (identical histories).  The test error
e_te is the assignment's dataset error, the mean cross-entropy over the test set; the
misclassification rate (%) is reported beside it.  To judge the spread, the same seeds
train the network with other hidden widths (numpy engine): the model is robust to the
seed when the seed-to-seed standard deviation of the final e_te is small against the
differences between configurations (their range of mean e_te is more than twice the
baseline's seed standard deviation).

Writes into ``results/seeds/``: ``test_error_curves.png`` (every seed's e_te, mean
cross-entropy, and misclassification rate per epoch, one column per engine),
``configurations.png`` (final e_te and misclassification per seed and configuration),
``seeds.md/.csv`` (final errors per seed), ``summary.md/.csv`` (mean ± std per engine and
configuration), ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from experiments.common import dataset_label, mean_std, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.studies.mlp import baseline
from experiments.studies.mlp.baseline import CE, MIS, error_curves, plot_error_grid, renamed
from experiments.training import Data, train

NAME = "seeds"
QUESTION = ("Is the final test error of the baseline network robust to the random seed, "
            "judged against the differences between configurations?")


@dataclass
class Config(baseline.Config):
    # the baseline's fields (network, optimiser, data, engines), plus:
    seeds: Tuple[int, ...] = (0, 1, 2, 3, 4)
    compare_hidden: Tuple[int, ...] = (32, 128)   # other configurations (numpy), the same seeds

    def quick(self) -> "Config":
        return replace(self, train_size=5000, test_size=2000, epochs=5, compare_hidden=(32,))

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16,), epochs=2,
                       seeds=(0, 1, 2), compare_hidden=(8,))


def robustness(finals: Dict[str, List[float]], main_key: str) -> Dict[str, Optional[float]]:
    """Whether the seed-to-seed spread is small against the differences between configurations.

    Parameters
    ----------
    finals : dict
        ``{configuration: final errors, one per seed}``.
    main_key : str
        The configuration whose seed standard deviation is judged.

    Returns
    -------
    dict
        ``seed_std`` (sample std of ``finals[main_key]``), ``configuration_range`` (largest
        minus smallest configuration mean) and ``robust``: True when the range exceeds twice
        the seed std, None when there is a single configuration to compare.
    """
    std = mean_std(finals[main_key])["std"]
    means = [mean_std(v)["mean"] for v in finals.values()]
    spread = max(means) - min(means) if len(means) > 1 else None
    return {"seed_std": std, "configuration_range": spread,
            "robust": None if spread is None else bool(spread > 2 * std)}


def run(cfg: Config, log=print) -> dict:
    if len(cfg.seeds) < 2:
        raise ValueError(f"seeds: give at least two seeds, got {cfg.seeds}")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    main_hidden = tuple(cfg.hidden)
    plan = [(e, main_hidden, s) for e in cfg.engines for s in cfg.seeds]
    plan += [("numpy", (h,), s) for h in cfg.compare_hidden for s in cfg.seeds]
    plan.append((cfg.engines[0], main_hidden, cfg.seeds[0]))   # the determinism check
    tasks = [(baseline.make_run(cfg, e, hidden=h, seed=s, label=f"{e} {h} seed {s}"), data) for e, h, s in plan]
    log(f"{len(plan) - 1} trainings for the tables, and training {len(plan)} repeats the first one "
        f"({cfg.engines[0]}, seed {cfg.seeds[0]}) to check that a run is repeatable bit for bit")
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)
    repeat, results, plan = results[-1], results[:-1], plan[:-1]
    deterministic = _same_numbers(repeat, results[0])
    log(f"the repeated training is {'identical to' if deterministic else 'DIFFERENT from'} the first one")

    rows: List[Dict[str, Any]] = []
    finals: Dict[str, List[float]] = {}
    finals_mis: Dict[str, List[float]] = {}
    for (e, h, s), r in zip(plan, results, strict=True):
        ce, mis = error_curves(r["history"], "test")
        key = _key(e, h)
        finals.setdefault(key, []).append(ce[-1])
        finals_mis.setdefault(key, []).append(mis[-1])
        rows.append({"engine": e, "hidden": "-".join(map(str, h)), "seed": s, "test_error_mean_ce": ce[-1],
                     "test_misclassification_pct": mis[-1], "seconds": r["seconds"]})
    write_table(out, "seeds", renamed(rows, {"test_error_mean_ce": f"final test_error {CE}",
                                             "test_misclassification_pct": f"final test_{MIS}"}))
    summary = []
    for key in finals:
        ce_stats, mis_stats = mean_std(finals[key]), mean_std(finals_mis[key])
        summary.append({"configuration": key, "seeds": ce_stats["n"], f"mean test_error {CE}": ce_stats["mean"],
                        f"std test_error {CE}": ce_stats["std"], f"min test_error {CE}": min(finals[key]),
                        f"max test_error {CE}": max(finals[key]), f"mean test_{MIS}": mis_stats["mean"],
                        f"std test_{MIS}": mis_stats["std"]})
    log("\n" + write_table(out, "summary", summary))

    first = results[0]
    panels = []
    for e in cfg.engines:
        lines = {f"seed {s}": (*error_curves(r["history"], "test"), "-", f"C{i}")
                 for i, ((ee, h, s), r) in enumerate((p, r) for p, r in zip(plan, results, strict=True)
                                                     if p[0] == e and p[1] == main_hidden)}
        panels.append((f"{e}: MLP {first['architecture']}, test error per seed", lines))
    title = (f"Test error e_te (mean cross-entropy over the test set) and misclassification rate per epoch, "
             f"{len(cfg.seeds)} seeds — {dataset_label(cfg.dataset)}, batch {cfg.batch_size}, lr {cfg.lr:g}, "
             f"{cfg.epochs} epochs, {np.mean([r['seconds'] for r in results]):.1f} s per run")
    plot_error_grid(panels, out / "test_error_curves.png", title)
    _plot_configurations(finals, finals_mis, cfg, out / "configurations.png")

    main_key = _key(cfg.engines[0], main_hidden)
    configurations = [main_key] + [_key("numpy", (h,)) for h in cfg.compare_hidden]   # not the other engine
    judged = robustness({k: finals[k] for k in configurations}, main_key)
    judged_mis = robustness({k: finals_mis[k] for k in configurations}, main_key)
    metrics = {"setup": setup_info(cfg, first, seeds=list(cfg.seeds), engines=list(cfg.engines),
                                   compared_hidden=list(cfg.compare_hidden),
                                   error="test error e_te: mean cross-entropy over the test set"),
               "main_configuration": main_key,
               "final_test_error_mean_ce": {k: mean_std(v) | {"values": v} for k, v in finals.items()},
               "final_test_misclassification_pct": {k: mean_std(v) | {"values": v} for k, v in finals_mis.items()},
               "deterministic": bool(deterministic),
               "seed_std_mean_ce": judged["seed_std"], "configuration_range_mean_ce": judged["configuration_range"],
               "robust": judged["robust"],
               "seed_std_misclassification_pct": judged_mis["seed_std"],
               "configuration_range_misclassification_pct": judged_mis["configuration_range"],
               "robust_by_misclassification": judged_mis["robust"]}
    write_json(out / "metrics.json", metrics)
    log("Answer: " + answer(metrics))
    return metrics


def _key(engine: str, hidden) -> str:
    return f"{engine}, hidden {'-'.join(map(str, hidden))}"


def answer(metrics: dict) -> str:
    """The study's answer: the main configuration's mean ± std of the final test error and the judgement."""
    key = metrics["main_configuration"]
    ce, mis = metrics["final_test_error_mean_ce"][key], metrics["final_test_misclassification_pct"][key]
    text = (f"{key}: mean final test error {ce['mean']:.4f} ± {ce['std']:.4f} (mean CE), misclassification "
            f"{mis['mean']:.2f} ± {mis['std']:.2f} % over {ce['n']} seeds; robust: ")
    if metrics["robust"] is None:
        return text + "not judged (no other configuration to compare)"
    std, spread = metrics["seed_std_mean_ce"], metrics["configuration_range_mean_ce"]
    return text + (f"{'yes' if metrics['robust'] else 'no'} because the seed-to-seed std {std:.4f} is "
                   f"{'below' if metrics['robust'] else 'not below'} half the range of the configuration means "
                   f"(range {spread:.4f}, mean CE)")


def _same_numbers(a: dict, b: dict) -> bool:
    """Equal histories up to the wall-clock times."""
    keys = ("train_loss", "train_eval_loss", "test_loss", "test_accuracy", "batch_loss")
    return all(a["history"][k] == b["history"][k] for k in keys)


def _plot_configurations(finals, finals_mis, cfg: Config, path):
    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4))
    for ax, values, label in ((axes[0], finals, "final test error e_te (mean cross-entropy)"),
                              (axes[1], finals_mis, "final test misclassification rate (%)")):
        for i, errs in enumerate(values.values()):
            ax.scatter([i] * len(errs), errs, color=f"C{i}", s=18, zorder=3)
            ms = mean_std(errs)
            ax.errorbar(i + 0.15, ms["mean"], yerr=ms["std"], fmt="s", color=f"C{i}", capsize=4)
        ax.set_xticks(range(len(values)), list(values), rotation=15, fontsize=8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Final test error per seed (dots) and mean ± std — {dataset_label(cfg.dataset)}, "
                 f"{cfg.epochs} epochs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe(metrics: dict, config: dict) -> str:
    f, m = metrics["final_test_error_mean_ce"], metrics["final_test_misclassification_pct"]
    parts = [f"{k}: {v['mean']:.4f} ± {v['std']:.4f} (range {min(v['values']):.4f}–{max(v['values']):.4f}; "
             f"misclassification {m[k]['mean']:.2f} ± {m[k]['std']:.2f}%) over {v['n']} seeds" for k, v in f.items()]
    text = ("Final test error e_te (mean cross-entropy over the test set), mean ± sample standard deviation: "
            + "; ".join(parts) + ". ")
    text += ("Training the same seed twice gave identical histories: the runs are deterministic. "
             if metrics["deterministic"] else "Training the same seed twice gave different histories. ")
    if metrics.get("robust") is not None:
        robust = metrics["robust"]
        text += (f"The seed-to-seed standard deviation of e_te ({metrics['seed_std_mean_ce']:.4f}) is "
                 f"{'well below' if robust else 'not small against'} the range of the configuration means "
                 f"({metrics['configuration_range_mean_ce']:.4f}), so the model is "
                 + ("robust to the seed: differences between these configurations are real."
                    if robust else "not robust enough to the seed to rank these configurations from one run each.")
                 + f" By misclassification rate: std {metrics['seed_std_misclassification_pct']:.2f} points against "
                 f"a range of {metrics['configuration_range_misclassification_pct']:.2f} points.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
