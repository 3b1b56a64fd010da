"""Speedrun: how many seconds of training does the numpy engine need for 99.0% and 99.5% MNIST test accuracy?

Run (full: 5 seeds × 2 engines × 2 recipes on all 60,000 training images, 2 threads; each
run stops once past its threshold — estimated 40–50 minutes on a quiet 2-core machine,
nearly all of it the 16-epoch 99.5% recipe and its evaluations)::

    python -m experiments run speedrun
    python -m experiments run speedrun --quick      # one seed, 99.0% only (under a minute per engine)
    python -m experiments run speedrun --smoke      # synthetic images, seconds (the tests)

The goal: 99.0% test accuracy within 30 s of training, and 99.5% within 5 minutes, each
for at least 4 of 5 seeds, numpy engine on 2 threads.  The measurement is
:mod:`benchmarks.time_to_accuracy` (the same as ``tinygrad-mnist bench --time-to-accuracy``):
only training is timed (data loading and the test evaluations, every quarter or half
epoch, are outside the clock); both engines train the same recipe from the same initial
weights on the same batches.  The recipes were fixed on a validation split of the
training images (``docs/speedrun-tuning.md``) before they met the test set.

Writes into ``results/speedrun/``: ``time_to_accuracy.md/.csv`` (seconds per seed, median,
seeds within the goal), ``curves.png`` (test accuracy against training seconds, every
seed), ``records.json`` (the bench records) and ``metrics.json``.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, replace
from typing import Optional, Tuple

from experiments.common import output_dir, write_json, write_table

NAME = "speedrun"
QUESTION = ("How many seconds of training (2 threads) does the numpy engine need to reach 99.0% and 99.5% MNIST test "
            "accuracy, against its torch twin on the same recipe; does it meet 30 s and 5 minutes for 4 of 5 seeds?")


@dataclass
class Config:
    thresholds: Tuple[float, ...] = (0.99, 0.995)
    seeds: int = 5
    engines: Tuple[str, ...] = ("numpy", "torch")
    threads: int = 2                  # BLAS / torch threads, both engines
    data: str = "mnist"               # or "synthetic" (smoke)
    data_dir: Optional[str] = None    # else $TINYGRAD_MNIST_DATA
    train_size: int = 0               # 0: all 60,000
    test_size: int = 0                # 0: all 10,000
    epochs: int = 0                   # 0: each recipe's own length
    validation: bool = False          # score the last 10,000 training images instead of the test set
    out: str = "results"

    def quick(self) -> "Config":
        return replace(self, seeds=1, thresholds=(0.99,))

    def smoke(self) -> "Config":
        return replace(self, data="synthetic", train_size=256, test_size=128, epochs=1, seeds=1, thresholds=(0.99,),
                       threads=1)


def run(cfg: Config, log=print) -> dict:
    from benchmarks.time_to_accuracy import TTAConfig, format_table, goal_met, measure, plot_curves

    out = output_dir(NAME, cfg.out)
    tta = TTAConfig(thresholds=tuple(cfg.thresholds), seeds=cfg.seeds, engines=tuple(cfg.engines),
                    threads=cfg.threads, validation=cfg.validation, train_size=cfg.train_size,
                    test_size=cfg.test_size, epochs=cfg.epochs, data=cfg.data, data_dir=cfg.data_dir)
    records = measure(tta, log)
    log("\n" + format_table(records))
    rows = []
    for r in records:
        reached = [s for s in r["seconds"] if s is not None]
        rows.append({"engine": r["engine"], "threshold_pct": 100 * r["threshold"], "recipe": r["recipe"],
                     "seconds_per_seed": " ".join("-" if s is None else f"{s:.1f}" for s in r["seconds"]),
                     "median_s": statistics.median(reached) if len(reached) == len(r["seconds"]) else None,
                     "seeds_reached": len(reached), "goal_s": r["goal_s"],
                     "seeds_within_goal": sum(r["goal_s"] is not None and s <= r["goal_s"] for s in reached),
                     "goal_met": goal_met(r)})
    write_table(out, "time_to_accuracy", rows)
    plot_curves(records, out / "curves.png")
    write_json(out / "records.json", records)
    metrics = {"setup": {"thresholds": list(cfg.thresholds), "seeds": cfg.seeds, "engines": list(cfg.engines),
                         "threads": cfg.threads, "machine": records[0]["machine"] if records else None,
                         "n_train": records[0]["n_train"] if records else 0,
                         "n_test": records[0]["n_test"] if records else 0,
                         "recipes": {r["recipe"]: r["recipe_detail"] for r in records},
                         "clock": "training only: data loading and evaluations excluded"},
               "runs": rows}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    parts = []
    for r in metrics["runs"]:
        med = "not reached by every seed" if r["median_s"] is None else f"median {r['median_s']:.1f} s"
        goal = "" if r["goal_s"] is None else (f"; {r['seeds_within_goal']} seed(s) within {r['goal_s']:g} s, goal "
                                               f"{'met' if r['goal_met'] else 'missed'}")
        parts.append(f"{r['engine']} to {r['threshold_pct']:.1f}% ({r['recipe']}): {r['seconds_per_seed']} s per seed, "
                     f"{med}{goal}")
    return ("Training seconds to each threshold (data loading and evaluations excluded, "
            f"{metrics['setup']['threads']} threads): " + "; ".join(parts) + ".")


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
