"""Numpy vs torch: trained from the same initial weights on the same batches, do the two engines agree, and how
fast is each?

Run (full: the baseline MLP, 10 epochs on 60,000 images, each engine in turn; under a
minute on 2 cores; time it on an otherwise idle machine):

    python -m experiments run numpy_vs_torch
    python -m experiments run numpy_vs_torch --quick
    python -m experiments run numpy_vs_torch --hidden 512 512 --activation relu --threads 1

The numpy model is built from the layer descriptions with ``seed``; the torch twin is
built from the same descriptions and receives a copy of the numpy weights
(``torch_baselines.numpy_to_torch``); both read the data through the numpy
``DataLoader`` seeded with ``seed``, so they see the same batches in the same order.
Both run in this process, one after the other, with ``threads`` BLAS / torch threads
(0: the libraries' defaults, stated in the output).  The epoch time includes the test
evaluation on both sides; the ratio is the median numpy epoch over the median torch
epoch (> 1: numpy slower).  For larger, interleaved, repeated timings see
``python -m benchmarks``.

Writes into ``results/numpy_vs_torch/``: ``curves.png`` (both engines, cost; accuracy),
``epoch_times.png``, ``epochs.md/.csv``, ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

from experiments.common import dataset_label, error_pct, output_dir, setup_info, write_json, write_table
from experiments.manifest import thread_info
from experiments.studies.mlp import baseline
from experiments.training import Data, history_of, train

NAME = "numpy_vs_torch"
QUESTION = ("Trained from the same initial weights on the same batches, do the numpy engine and its torch twin "
            "reach the same accuracy, and what is the ratio of their epoch times?")


@dataclass
class Config(baseline.Config):
    # the baseline's fields (network, optimiser, data), plus:
    epochs: int = 10
    threads: int = 0                 # BLAS and torch threads for both engines; 0: the defaults

    def quick(self) -> "Config":
        return replace(self, train_size=10000, test_size=2000, epochs=3)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16,), epochs=2)


def run(cfg: Config, log=print) -> dict:
    import torch

    from tinygrad_mnist.plots import plot_curves, plot_lines

    if tuple(cfg.engines) != ("numpy", "torch"):
        raise ValueError(f"numpy_vs_torch: engines must be numpy and torch, got {cfg.engines}")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    # serially in this process: a fair timing needs the machine to itself
    results = {e: train(baseline.make_run(cfg, e, eval_train=False, threads=cfg.threads, extras=("weights",)), data)
               for e in cfg.engines}
    threads = thread_info()   # the limits of cfg.threads hold during training only: report them, not what is left
    blas = [cfg.threads] if cfg.threads else sorted(
        {p["num_threads"] for p in threads.get("blas", []) if p.get("internal_api") == "openblas"})
    torch_threads = cfg.threads or torch.get_num_threads()
    hs = {e: history_of(r) for e, r in results.items()}
    med = {e: float(np.median(h.epoch_seconds[1:] if h.epochs > 1 else h.epoch_seconds)) for e, h in hs.items()}
    ratio = med["numpy"] / med["torch"]
    title = (f"MLP {results['numpy']['architecture']} — {dataset_label(cfg.dataset)}, batch {cfg.batch_size}, "
             f"lr {cfg.lr:g}, {cfg.epochs} epochs, training numpy {results['numpy']['seconds']:.1f} s, "
             f"torch {results['torch']['seconds']:.1f} s")
    plot_curves(hs, out / "curves.png", title, splits=("train", "test"))
    plot_lines([("seconds per epoch (training + test evaluation)", {e: h.epoch_seconds for e, h in hs.items()})],
               out / "epoch_times.png", "epoch", "seconds",
               f"numpy / torch median epoch time = {ratio:.2f} (numpy BLAS threads {blas or '?'}, torch threads "
               f"{torch_threads}, {threads['cpu_count']} CPUs)")
    rows = []
    for k in range(hs["numpy"].epochs):
        rows.append({"epoch": k + 1, "numpy_test_accuracy_pct": 100 * hs["numpy"].test_accuracy[k],
                     "torch_test_accuracy_pct": 100 * hs["torch"].test_accuracy[k],
                     "numpy_train_loss": hs["numpy"].train_loss[k], "torch_train_loss": hs["torch"].train_loss[k],
                     "numpy_seconds": hs["numpy"].epoch_seconds[k], "torch_seconds": hs["torch"].epoch_seconds[k]})
    write_table(out, "epochs", rows)
    weight_diff = max(float(np.abs(results["numpy"]["weights"][k] - results["torch"]["weights"][k]).max())
                      for k in results["numpy"]["weights"])
    summary = [{"engine": e, "test_accuracy_pct": 100 * hs[e].test_accuracy[-1],
                "test_error_pct": error_pct(hs[e].test_accuracy[-1]), "final_train_loss": hs[e].train_loss[-1],
                "median_epoch_seconds": med[e], "total_seconds": results[e]["seconds"],
                "threads": torch_threads if e == "torch" else ",".join(map(str, blas)) or "?"} for e in cfg.engines]
    log("\n" + write_table(out, "summary", summary))
    log(f"numpy / torch median epoch time: {ratio:.2f}; largest final weight difference {weight_diff:.2e}")
    metrics = {"setup": setup_info(cfg, results["numpy"], threads=cfg.threads or "library defaults"),
               "test_accuracy": {e: hs[e].test_accuracy[-1] for e in cfg.engines},
               "median_epoch_seconds": med, "time_ratio_numpy_over_torch": ratio,
               "max_final_weight_difference": weight_diff,
               "max_test_accuracy_difference_pct": 100 * max(abs(a - b) for a, b in zip(hs["numpy"].test_accuracy,
                                                                                       hs["torch"].test_accuracy,
                                                                                       strict=True)),
               "threads": {"numpy_blas": blas, "torch": torch_threads, "cpu_count": threads["cpu_count"]}}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    acc = metrics["test_accuracy"]
    t = metrics["median_epoch_seconds"]
    th = metrics["threads"]
    return (f"From the same initial weights on the same batches, numpy reaches {100 * acc['numpy']:.2f}% and torch "
            f"{100 * acc['torch']:.2f}% test accuracy (largest per-epoch difference "
            f"{metrics['max_test_accuracy_difference_pct']:.2f} points; final weights differ by at most "
            f"{metrics['max_final_weight_difference']:.1e}, float32 rounding accumulated over the steps). "
            f"A median epoch takes {t['numpy']:.2f} s in numpy and {t['torch']:.2f} s in torch, a ratio of "
            f"{metrics['time_ratio_numpy_over_torch']:.2f} (numpy BLAS threads {th['numpy_blas']}, torch threads "
            f"{th['torch']}, {th['cpu_count']} CPUs).")


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
