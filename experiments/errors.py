"""Where it errs: which digits does the baseline confuse, and what does each hidden unit look for?

Run (full: the baseline MLP on both engines, 20 epochs; under a minute on 2 cores):

    flock /tmp/cpu-heavy.lock python -m experiments run errors
    python -m experiments run errors --quick

The baseline network (784-64-10, sigmoid) is trained on each engine (same initial
weights, same batches).  On the test set: the 10×10 confusion matrix ``M[t, p]`` (rows
true digit, columns prediction; scikit-learn's ``ConfusionMatrixDisplay``) and the
hardest pairs, the off-diagonal cells with the most errors, named ("4 read as 9").
The first-layer weights of the numpy model, one row of 784 per hidden unit, are drawn
as 28×28 templates: red pixels push the unit on, blue ones off.

Writes into ``results/errors/``: ``confusion_<engine>.png``, ``confusion_<engine>.md/.csv``,
``hardest_pairs.md/.csv``, ``weight_templates.png``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

from experiments import baseline
from experiments.common import dataset_label, error_pct, load_splits, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.training import Data, train

NAME = "errors"
QUESTION = ("Which digits does the baseline MLP confuse (confusion matrix, hardest pairs), and what pattern does "
            "each of its 64 hidden units respond to (first-layer weights as 28×28 templates)?")


@dataclass
class Config(baseline.Config):
    # the baseline's fields (network, optimiser, data, engines), plus:
    pairs: int = 5                    # how many hardest pairs to name

    def quick(self) -> "Config":
        return replace(self, train_size=5000, test_size=2000, epochs=5)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16,), epochs=2, pairs=3)


def hardest_pairs(matrix: np.ndarray, k: int):
    """The ``k`` off-diagonal cells with the most errors: ``[(true, predicted, count), ...]``."""
    m = np.asarray(matrix).copy()
    np.fill_diagonal(m, -1)
    order = np.argsort(m.ravel(), kind="stable")[::-1][:k]
    return [(int(i // m.shape[1]), int(i % m.shape[1]), int(m.ravel()[i])) for i in order if m.ravel()[i] > 0]


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.metrics import confusion_matrix
    from tinygrad_mnist.plots import plot_confusion_matrix, plot_weight_templates

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    tasks = [(baseline.make_run(cfg, e, extras=("test_outputs", "weights")), data) for e in cfg.engines]
    results = dict(zip(cfg.engines, run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)))
    _, _, test = load_splits(data, log=None)
    pair_rows, per_engine = [], {}
    for e, r in results.items():
        predicted = r["test_outputs"].argmax(axis=1)
        m = confusion_matrix(test.labels, predicted, test.num_classes)
        write_table(out, f"confusion_{e}", [{"true": t, **{f"pred_{p}": int(m[t, p]) for p in range(len(m))}}
                                             for t in range(len(m))])
        err = error_pct(r["history"]["test_accuracy"][-1])
        plot_confusion_matrix(m, out / f"confusion_{e}.png",
                              title=f"{e} MLP {r['architecture']} — {dataset_label(cfg.dataset)} test set "
                                    f"({len(test):,} images), batch {cfg.batch_size}, lr {cfg.lr:g}, {cfg.epochs} epochs, "
                                    f"{r['seconds']:.1f} s: {err:.2f}% error")
        pairs = hardest_pairs(m, cfg.pairs)
        for t, p, c in pairs:
            pair_rows.append({"engine": e, "true": t, "predicted": p, "count": c,
                              "share_of_true_class_pct": 100 * c / max(1, m[t].sum()),
                              "share_of_all_errors_pct": 100 * c / max(1, m.sum() - np.trace(m))})
        recall = np.diag(m) / np.maximum(1, m.sum(axis=1))
        per_engine[e] = {"test_error_pct": err, "errors": int(m.sum() - np.trace(m)), "pairs": pairs,
                         "worst_class": int(np.argmin(recall)), "worst_class_recall": float(recall.min()),
                         "best_class": int(np.argmax(recall)), "best_class_recall": float(recall.max()),
                         "matrix": m.tolist()}
    log("\n" + write_table(out, "hardest_pairs", pair_rows))
    first_engine = cfg.engines[0]
    weights = results[first_engine]["weights"]
    w1 = next(v for k, v in weights.items() if k.endswith("weight"))
    plot_weight_templates(w1, test.image_shape, out / "weight_templates.png",
                          title=f"First-layer weights of the {first_engine} MLP {results[first_engine]['architecture']} as "
                                f"{test.image_shape[0]}×{test.image_shape[1]} templates (red +, blue −, one per hidden unit)")
    norms = np.linalg.norm(w1, axis=1)
    metrics = {"setup": setup_info(cfg, results[first_engine], engines=list(cfg.engines)), "engines": per_engine,
               "weight_norms": {"min": float(norms.min()), "max": float(norms.max()), "mean": float(norms.mean())}}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    text = ""
    for e, m in metrics["engines"].items():
        named = ", ".join(f"{t} read as {p} ({c}×)" for t, p, c in m["pairs"])
        text += (f"{e}: {m['errors']} test errors ({m['test_error_pct']:.2f}%); the hardest pairs are {named}. "
                 f"Digit {m['worst_class']} is recognised least often ({100 * m['worst_class_recall']:.1f}%), digit "
                 f"{m['best_class']} most often ({100 * m['best_class_recall']:.1f}%). ")
    text += ("The weight templates show what each hidden unit looks for: blobs and strokes of positive weight where a "
             "digit has ink, negative weight where it must not, with the unused border near zero "
             f"(row norms {metrics['weight_norms']['min']:.2f}–{metrics['weight_norms']['max']:.2f}).")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
