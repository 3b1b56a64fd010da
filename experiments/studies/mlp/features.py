"""Features: does the trained hidden layer separate the digits better than the raw pixels? (t-SNE)

Run (full: the baseline MLP, 20 epochs, then t-SNE of 2,000 test images twice; about a
minute on 2 cores):

    python -m experiments run features
    python -m experiments run features --quick

The baseline network (784-64-10, sigmoid) is trained; for the first ``points`` test
images, scikit-learn's t-SNE (PCA initialisation, ``perplexity``, ``random_state = seed``,
one thread) embeds in 2-d (a) the raw pixels (784 values in [0, 1]) and (b) the 64
hidden-layer activations of the trained model.  Both are coloured by the true digit, side by side.
The silhouette score of each embedding by digit (−1..1, higher: tighter, better
separated clusters) and the accuracy of a 5-nearest-neighbour vote in the 2-d map
(leave-one-out) put numbers on what the eye sees.

Writes into ``results/features/``: ``tsne.png``, ``separation.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

from experiments.studies.mlp import baseline
from experiments.common import dataset_label, error_pct, load_splits, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.training import Data, train

NAME = "features"
QUESTION = ("Do the trained hidden-layer features separate the digits better than the raw pixels? "
            "(t-SNE of both, coloured by digit)")


@dataclass
class Config(baseline.Config):
    # the baseline's fields (network, optimiser, data), plus:
    engines: tuple = ("numpy",)      # the engine whose trained hidden layer is embedded
    points: int = 2000               # test images embedded
    perplexity: float = 30.0

    def quick(self) -> "Config":
        return replace(self, train_size=5000, test_size=1000, epochs=5, points=1000)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16,), epochs=2, points=120,
                       perplexity=10.0)


def separation(embedding: np.ndarray, labels: np.ndarray, k: int = 5) -> dict:
    """Silhouette score by label and leave-one-out k-NN accuracy of a 2-d embedding."""
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(embedding)
    idx = nn.kneighbors(embedding, return_distance=False)[:, 1:]   # drop the point itself
    votes = labels[idx]
    pred = np.array([np.bincount(v, minlength=labels.max() + 1).argmax() for v in votes])
    return {"silhouette": float(silhouette_score(embedding, labels)), "knn_accuracy": float((pred == labels).mean())}


def run(cfg: Config, log=print) -> dict:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    from tinygrad_mnist.plots import plot_embeddings

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    engine = cfg.engines[0]
    (result,) = run_tasks(train, [(baseline.make_run(cfg, engine, extras=("hidden_features",)), data)],
                          cfg.jobs, cfg.scheduler, log)
    _, _, test = load_splits(data, log=None)
    n = min(cfg.points, len(test))
    labels = test.labels[:n]
    pixels = test.images[:n].reshape(n, -1).astype(np.float32) / 255.0
    hidden = result["hidden_features"][:n]
    perplexity = min(cfg.perplexity, (n - 1) / 3)
    embeddings, rows = {}, []
    for name, x in (("raw pixels", pixels), (f"hidden layer ({hidden.shape[1]} units, {engine})", hidden)):
        with threadpool_limits(limits=1):  # one OpenMP thread: reproducible, and far faster on a busy machine
            emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=cfg.seed).fit_transform(x)
        sep = separation(emb, labels)
        embeddings[f"{name}: silhouette {sep['silhouette']:.2f}, 5-NN {100 * sep['knn_accuracy']:.1f}%"] = emb
        rows.append({"input": name, "dimensions": x.shape[1], **sep})
    log("\n" + write_table(out, "separation", rows))
    test_err = error_pct(result["history"]["test_accuracy"][-1])
    plot_embeddings(embeddings, labels, out / "tsne.png",
                    title=f"t-SNE of {n:,} {dataset_label(cfg.dataset)} test images (perplexity {perplexity:g}) — "
                          f"MLP {result['architecture']}, batch {cfg.batch_size}, lr {cfg.lr:g}, {cfg.epochs} epochs, "
                          f"{result['seconds']:.1f} s training, {test_err:.2f}% test error")
    metrics = {"setup": setup_info(cfg, result, points=n, perplexity=perplexity, engine=engine),
               "separation": {r["input"].split(" (")[0]: {k: r[k] for k in ("silhouette", "knn_accuracy")} for r in rows},
               "test_error_pct": test_err}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    raw, hid = metrics["separation"]["raw pixels"], metrics["separation"]["hidden layer"]
    better = hid["silhouette"] > raw["silhouette"]
    return (f"On {metrics['setup']['points']:,} test images, the t-SNE map of the raw pixels has a silhouette score of "
            f"{raw['silhouette']:.2f} by digit and a 5-nearest-neighbour accuracy of {100 * raw['knn_accuracy']:.1f}%; "
            f"the map of the trained hidden layer has {hid['silhouette']:.2f} and {100 * hid['knn_accuracy']:.1f}%. "
            + ("The hidden layer pulls each digit into a tighter, better separated cluster: training made the features "
               "linearly useful for the output layer, and the remaining overlaps are the digits the network confuses."
               if better else
               "Here the hidden features do not separate the digits better than the pixels (too little training in "
               "this mode), so the map mostly reflects pixel similarity."))


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
