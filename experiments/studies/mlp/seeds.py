"""Seeds: is the baseline's test error robust to the random seed, compared with changing the configuration?

Run (full: 5 seeds × 2 engines of the baseline, and 5 seeds of each compared hidden width;
a few minutes on 2 cores):

    python -m experiments run seeds --jobs 2
    python -m experiments run seeds --quick

The baseline (see ``experiments/studies/mlp/baseline.py``) is trained with each seed (the seed draws
the initial weights and the batch order; the data are fixed), on both engines.  One seed
is trained twice to show the run is deterministic (identical histories).  To judge the
spread, the same seeds train the network with other hidden widths (numpy engine): the
model is robust to the seed when the seed-to-seed standard deviation is small against
the differences between configurations.

Writes into ``results/seeds/``: ``test_error_curves.png`` (every seed's test error per
epoch on one plot, one panel per engine), ``configurations.png`` (final test error per
seed and configuration), ``seeds.md/.csv`` (final errors per seed),
``summary.md/.csv`` (mean ± std per engine and configuration), ``metrics.json``.
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


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.plots import plot_lines

    if len(cfg.seeds) < 2:
        raise ValueError(f"seeds: give at least two seeds, got {cfg.seeds}")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    main_hidden = tuple(cfg.hidden)
    plan = [(e, main_hidden, s) for e in cfg.engines for s in cfg.seeds]
    plan += [("numpy", (h,), s) for h in cfg.compare_hidden for s in cfg.seeds]
    plan.append((cfg.engines[0], main_hidden, cfg.seeds[0]))   # the determinism check
    tasks = [(baseline.make_run(cfg, e, hidden=h, seed=s, label=f"{e} {h} seed {s}"), data) for e, h, s in plan]
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)
    repeat, results, plan = results[-1], results[:-1], plan[:-1]
    deterministic = _same_numbers(repeat, results[0])

    rows, finals = [], {}
    for (e, h, s), r in zip(plan, results):
        err = error_pct(r["history"]["test_accuracy"][-1])
        key = f"{e}, hidden {'-'.join(map(str, h))}"
        finals.setdefault(key, []).append(err)
        rows.append({"engine": e, "hidden": "-".join(map(str, h)), "seed": s, "test_error_pct": err,
                     "seconds": r["seconds"]})
    write_table(out, "seeds", rows)
    summary = []
    for key, errs in finals.items():
        ms = mean_std(errs)
        summary.append({"configuration": key, "seeds": ms["n"], "mean_test_error_pct": ms["mean"],
                        "std_pct": ms["std"], "min_pct": min(errs), "max_pct": max(errs)})
    log("\n" + write_table(out, "summary", summary))

    first = results[0]
    panels = []
    for e in cfg.engines:
        lines = {f"seed {s}": [error_pct(a) for a in r["history"]["test_accuracy"]]
                 for (ee, h, s), r in zip(plan, results) if ee == e and h == main_hidden}
        panels.append((f"{e}: MLP {first['architecture']}", lines))
    title = (f"Test error per epoch, {len(cfg.seeds)} seeds — {dataset_label(cfg.dataset)}, batch {cfg.batch_size}, "
             f"lr {cfg.lr:g}, {cfg.epochs} epochs, {np.mean([r['seconds'] for r in results]):.1f} s per run")
    plot_lines(panels, out / "test_error_curves.png", "epoch", "test error (%)", title)
    _plot_configurations(finals, cfg, out / "configurations.png")

    main_key = f"{cfg.engines[0]}, hidden {'-'.join(map(str, main_hidden))}"
    main_std = mean_std(finals[main_key])["std"]
    numpy_means = {k: mean_std(v)["mean"] for k, v in finals.items() if k.startswith("numpy")}
    spread = max(numpy_means.values()) - min(numpy_means.values()) if len(numpy_means) > 1 else 0.0
    metrics = {"setup": setup_info(cfg, first, seeds=list(cfg.seeds), engines=list(cfg.engines),
                                   compared_hidden=list(cfg.compare_hidden)),
               "final_test_error_pct": {k: mean_std(v) | {"values": v} for k, v in finals.items()},
               "deterministic": bool(deterministic), "seed_std_pct": main_std,
               "configuration_range_pct": spread, "robust": bool(spread > 2 * main_std) if spread else None}
    write_json(out / "metrics.json", metrics)
    return metrics


def _same_numbers(a: dict, b: dict) -> bool:
    """Equal histories up to the wall-clock times."""
    keys = ("train_loss", "train_eval_loss", "test_loss", "test_accuracy", "batch_loss")
    return all(a["history"][k] == b["history"][k] for k in keys)


def _plot_configurations(finals, cfg: Config, path):
    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, (key, errs) in enumerate(finals.items()):
        ax.scatter([i] * len(errs), errs, color=f"C{i}", s=18, zorder=3)
        ms = mean_std(errs)
        ax.errorbar(i + 0.15, ms["mean"], yerr=ms["std"], fmt="s", color=f"C{i}", capsize=4)
    ax.set_xticks(range(len(finals)), list(finals), rotation=15, fontsize=8)
    ax.set(ylabel="final test error (%)",
           title=f"Final test error per seed (dots) and mean ± std — {dataset_label(cfg.dataset)}, {cfg.epochs} epochs")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe(metrics: dict, config: dict) -> str:
    f = metrics["final_test_error_pct"]
    parts = [f"{k}: {v['mean']:.2f} ± {v['std']:.2f}% over {v['n']} seeds (range {min(v['values']):.2f}–"
             f"{max(v['values']):.2f}%)" for k, v in f.items()]
    text = "Final test error, mean ± sample standard deviation: " + "; ".join(parts) + ". "
    text += ("Training the same seed twice gave identical histories: the runs are deterministic. "
             if metrics["deterministic"] else "Training the same seed twice gave different histories. ")
    if metrics.get("robust") is not None:
        text += (f"The seed-to-seed standard deviation ({metrics['seed_std_pct']:.2f} points) is "
                 f"{'well below' if metrics['robust'] else 'comparable to'} the range of the configuration means "
                 f"({metrics['configuration_range_pct']:.2f} points), so the model is "
                 f"{'robust to the seed: differences between these configurations are real' if metrics['robust'] else 'not robust enough to the seed to rank these configurations from one run each'}.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
