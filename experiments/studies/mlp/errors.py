"""Where it errs: which digits does the baseline confuse, and what does each hidden unit look for?

Run (full: the baseline MLP on both engines, 20 epochs; under a minute on 2 cores):

    python -m experiments run errors
    python -m experiments run errors --quick

The baseline network (784-64-10, sigmoid) is trained on each engine (same initial
weights, same batches).  On the test set: the 10×10 confusion matrix ``M[t, p]`` (rows
true digit, columns prediction; scikit-learn's ``ConfusionMatrixDisplay``) and the
hardest pairs, the off-diagonal cells with the most errors, named ("4 read as 9").
The first-layer weights of the numpy model, one row of 784 per hidden unit, are drawn
as 28×28 templates (red pixels push the unit on, blue ones off), and so is what training
changed (final − initial): pixels that are blank in every training image never receive
a gradient and keep their random initial values.

Writes into ``results/errors/``: ``confusion_<engine>.png``, ``confusion_<engine>.md/.csv``,
``hardest_pairs.md/.csv``, ``weight_templates.png`` (final weights),
``weight_changes.png`` (final − initial weights), ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

from experiments.common import dataset_label, error_pct, load_splits, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.studies.mlp import baseline
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
    tasks = [(baseline.make_run(cfg, e, extras=("test_outputs", "weights", "initial_weights")), data)
             for e in cfg.engines]
    results = dict(zip(cfg.engines, run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log), strict=True))
    _, _, test = load_splits(data, log=None)
    pair_rows, per_engine = [], {}
    for e, r in results.items():
        predicted = r["test_outputs"].argmax(axis=1)
        m = confusion_matrix(test.labels, predicted, test.num_classes)
        write_table(out, f"confusion_{e}", [{"true": t, **{f"pred_{p}": int(m[t, p]) for p in range(len(m))}}
                                             for t in range(len(m))])
        err = error_pct(r["history"]["test_accuracy"][-1])
        plot_confusion_matrix(m, out / f"confusion_{e}.png",
                              title=f"{e} MLP {r['architecture']}: {err:.2f}% test error\n{dataset_label(cfg.dataset)} "
                                    f"test set ({len(test):,} images), batch {cfg.batch_size}, lr {cfg.lr:g}, "
                                    f"{cfg.epochs} epochs, {r['seconds']:.1f} s training")
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
    r0 = results[first_engine]
    key = next(k for k in r0["weights"] if k.endswith("weight"))
    w1, w0 = r0["weights"][key], r0["initial_weights"][key]
    what = f"{first_engine} MLP {r0['architecture']}, {test.image_shape[0]}×{test.image_shape[1]}"
    plot_weight_templates(w1, test.image_shape, out / "weight_templates.png",
                          title=f"First-layer weights after training, one template per hidden unit ({what}; red +, "
                                "blue −)")
    plot_weight_templates(w1 - w0, test.image_shape, out / "weight_changes.png",
                          title=f"What training changed: final − initial first-layer weights ({what})")
    train_set, _, _ = load_splits(data, log=None)
    blank = train_set.images.reshape(len(train_set), -1).max(axis=0) == 0      # pixels never inked in training
    change = np.abs(w1 - w0)
    metrics = {"setup": setup_info(cfg, r0, engines=list(cfg.engines)), "engines": per_engine,
               "blank_pixels": int(blank.sum()),
               "mean_abs_change_blank": float(change[:, blank].mean()) if blank.any() else 0.0,
               "mean_abs_change_inked": float(change[:, ~blank].mean()),
               "mean_abs_weight": float(np.abs(w1).mean())}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    text = ""
    for e, m in metrics["engines"].items():
        named = ", ".join(f"{t} read as {p} ({c}×)" for t, p, c in m["pairs"])
        text += (f"{e}: {m['errors']} test errors ({m['test_error_pct']:.2f}%); the hardest pairs are {named}. "
                 f"Digit {m['worst_class']} is recognised least often ({100 * m['worst_class_recall']:.1f}%), digit "
                 f"{m['best_class']} most often ({100 * m['best_class_recall']:.1f}%). ")
    text += (f"The first-layer templates keep their random initial values wherever no gradient reaches them: the "
             f"{metrics['blank_pixels']} pixels that are blank in every training image changed by "
             f"{metrics['mean_abs_change_blank']:.2g} on average, the inked ones by "
             f"{metrics['mean_abs_change_inked']:.2g} (mean |w| {metrics['mean_abs_weight']:.2g}). The change map "
             "(final − initial) shows what each unit learned: stroke-shaped regions of positive and negative "
             "weight in the centre of the image, where the digits differ.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
