"""Features: does the trained hidden layer separate the digits better than the raw pixels? (t-SNE)

Run (full: the baseline MLP, 20 epochs on all 60,000 training images, then t-SNE of all
60,000 training images twice):

    python -m experiments run features
    python -m experiments run features --quick               # 5,000 images, 5 epochs
    python -m experiments run features --tsne-split test --points 2000

The baseline network (784-64-10, sigmoid) is trained on the numpy engine.  For every image
x_i of the chosen set (``tsne_split``: the training images by default, as the assignment
asks; ``points`` > 0 keeps the first ``points``), the hidden features
z_i = σ(W⁽¹⁾ᵀ x_i + b⁽¹⁾) are computed from the trained first layer, and two 2-d maps are
made with openTSNE's FFT-accelerated t-SNE (``negative_gradient_method="fft"``, PCA
initialisation, ``perplexity``, ``random_state = seed``, ``tsne_jobs`` threads): one of the
64 hidden features z_i, one of the raw pixels x_i (784 values in [0, 1]) first reduced by
a seeded scikit-learn PCA to ``pca_components`` dimensions.  Both are coloured by the true
digit (ten colours, one legend), side by side.

The silhouette score of each map by digit (−1..1, higher: tighter, better separated
clusters) and the accuracy of a 5-nearest-neighbour vote in the 2-d map (leave-one-out)
put numbers on what the eye sees; above ``score_points`` points they are computed on a
seeded random subsample of that many points (the table says how many).  Each map's
t-SNE time (seconds) is recorded in the table and metrics.json.

Time on 2 cores: ``--quick`` (5 epochs on 5,000 images, then both maps of those 5,000)
took about 50 s here, each t-SNE 22–24 s, on a machine shared with other jobs.  The full
run embeds 60,000 points per map; its time is what the manifest and metrics.json record.

Needs openTSNE (``pip install openTSNE``, in the ``experiments`` extra).

Writes into ``results/features/``: ``tsne.png``, ``separation.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, Mapping, Tuple

import numpy as np

from experiments.common import dataset_label, load_splits, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.studies.mlp import baseline
from experiments.studies.mlp.baseline import CE, error_curves, renamed, wrapped
from experiments.training import Data, train

NAME = "features"
QUESTION = ("Do the trained hidden-layer features separate the digits better than the raw pixels? "
            "(t-SNE of both, for every training image, coloured by digit)")

SPLITS = ("train", "test")


@dataclass
class Config(baseline.Config):
    # the baseline's fields (network, optimiser, data), plus:
    engines: tuple = ("numpy",)      # the engine whose trained hidden layer is embedded
    tsne_split: str = "train"        # the images embedded: "train" (the assignment) or "test"
    points: int = 0                  # the first `points` images of that set (0: all)
    perplexity: float = 30.0
    pca_components: int = 50         # the pixels are reduced to this many dimensions before t-SNE
    tsne_jobs: int = 2               # openTSNE threads
    exaggeration_iter: int = 250     # t-SNE iterations with early exaggeration (openTSNE's default)
    tsne_iter: int = 500             # t-SNE iterations after them (openTSNE's default)
    score_points: int = 10000        # silhouette and k-NN on a seeded subsample above this size

    def quick(self) -> "Config":
        return replace(self, train_size=5000, test_size=1000, epochs=5)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, test_size=0, hidden=(16,), epochs=2, points=300,
                       perplexity=10.0, score_points=200, tsne_jobs=1, exaggeration_iter=50, tsne_iter=100)


def hidden_features(weights: Mapping[str, np.ndarray], x: np.ndarray, activation: str = "sigmoid",
                    batch_size: int = 10000) -> np.ndarray:
    """The first hidden layer's output z = act(W⁽¹⁾ᵀ x + b⁽¹⁾) of each row of ``x``.

    Parameters
    ----------
    weights : dict
        The trained parameters (``result["weights"]``); the first layer's are ``"0.weight"``,
        an ndarray of shape (n_hidden, n_features) (that is W⁽¹⁾ᵀ), and ``"0.bias"``.
    x : ndarray of shape (n_samples, n_features)
        The inputs, scaled as in training (pixels in [0, 1]).
    activation : {"sigmoid", "relu", "tanh"}, default="sigmoid"
    batch_size : int, default=10000
        Rows per matrix product (bounds the float32 temporaries).

    Returns
    -------
    ndarray of shape (n_samples, n_hidden), float32
    """
    acts: Dict[str, Callable[[np.ndarray], np.ndarray]]
    acts = {"sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)), "relu": lambda a: np.maximum(a, 0.0), "tanh": np.tanh}
    if activation not in acts:
        raise ValueError(f"hidden_features: activation must be one of {sorted(acts)}, got {activation!r}")
    w, b = np.asarray(weights["0.weight"], np.float32), np.asarray(weights["0.bias"], np.float32)
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"hidden_features: expected x of shape (n, {w.shape[1]}), got {x.shape}")
    act = acts[activation]
    out = [act(np.asarray(x[i:i + batch_size], np.float32) @ w.T + b) for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32)


def tsne(x: np.ndarray, perplexity: float, seed: int, n_jobs: int = 2, exaggeration_iter: int = 250,
         n_iter: int = 500) -> Tuple[np.ndarray, float]:
    """openTSNE's FFT-accelerated t-SNE of ``x`` in 2-d (PCA initialisation).

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)
    perplexity : float
        Lowered to (n_samples − 1) / 3 when the set is too small for it.
    seed : int
        ``random_state`` of openTSNE.
    n_jobs : int, default=2
    exaggeration_iter, n_iter : int, default=250, 500
        Iterations with early exaggeration, then without (openTSNE's defaults).

    Returns
    -------
    embedding : ndarray of shape (n_samples, 2)
    seconds : float
        The wall time of the fit.
    """
    try:
        from openTSNE import TSNE
    except ImportError as err:
        raise ImportError("features: the t-SNE maps need openTSNE; install it with `pip install openTSNE` "
                          "(it is in the project's `experiments` extra)") from err
    t0 = time.perf_counter()
    model = TSNE(n_components=2, perplexity=min(perplexity, (len(x) - 1) / 3), initialization="pca",
                 negative_gradient_method="fft", early_exaggeration_iter=exaggeration_iter, n_iter=n_iter,
                 n_jobs=n_jobs, random_state=seed, verbose=False)
    emb = model.fit(np.ascontiguousarray(x, dtype=np.float64))
    return np.asarray(emb, dtype=np.float64), time.perf_counter() - t0


def pca(x: np.ndarray, components: int, seed: int) -> np.ndarray:
    """``x`` projected on its first ``components`` principal components (scikit-learn PCA,
    ``random_state = seed``; at most min(n_samples, n_features) components)."""
    from sklearn.decomposition import PCA

    k = min(components, *x.shape)
    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)


def subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """Indices of a seeded random subsample of ``limit`` of ``n`` points, sorted (all when ``n <= limit``)."""
    if limit <= 0 or n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def separation(embedding: np.ndarray, labels: np.ndarray, k: int = 5) -> dict:
    """Silhouette score by label and leave-one-out k-NN accuracy of a 2-d embedding."""
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(embedding)
    idx = nn.kneighbors(embedding, return_distance=False)[:, 1:]   # drop the point itself
    votes = labels[idx]
    pred = np.array([np.bincount(v, minlength=labels.max() + 1).argmax() for v in votes])
    return {"silhouette": float(silhouette_score(embedding, labels)), "knn_accuracy": float((pred == labels).mean())}


def plot_maps(embeddings: Mapping[str, np.ndarray], labels: np.ndarray, path, title: str, seed: int = 0):
    """Side-by-side 2-d maps coloured by digit (ten tab10 colours, one legend).

    Points are drawn in a seeded random order (no digit hidden under another), their size
    and opacity shrinking with their number (tiny, translucent dots for 60,000).
    """
    from matplotlib.lines import Line2D

    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    labels = np.asarray(labels)
    n = len(labels)
    size, alpha = float(np.clip(12000 / n, 0.8, 8.0)), float(np.clip(2000 / n ** 0.9, 0.5, 0.9))
    order = np.random.default_rng(seed).permutation(n)
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(embeddings), figsize=(6.4 * len(embeddings), 6.2), squeeze=False)
    for ax, (panel, emb) in zip(axes[0], embeddings.items(), strict=True):
        emb = np.asarray(emb)[order]
        ax.scatter(emb[:, 0], emb[:, 1], s=size, c=labels[order] % 10, cmap=cmap, vmin=-0.5, vmax=9.5, alpha=alpha,
                   linewidths=0, rasterized=True)
        ax.set_title(panel, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], marker="o", linestyle="", color=cmap(c % 10), markersize=7, label=str(c))
               for c in np.unique(labels)]
    fig.legend(handles=handles, title="digit", loc="center right")
    fig.suptitle(wrapped(title, int(13 * 6.4 * len(embeddings))), fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.94, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(cfg: Config, log=print) -> dict:
    if cfg.tsne_split not in SPLITS:
        raise ValueError(f"features: tsne_split must be one of {SPLITS}, got {cfg.tsne_split!r}")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    engine = cfg.engines[0]
    (result,) = run_tasks(train, [(baseline.make_run(cfg, engine, extras=("weights",)), data)],
                          cfg.jobs, cfg.scheduler, log)
    train_set, _, test_set = load_splits(data, log=None)
    images = train_set if cfg.tsne_split == "train" else test_set
    n = len(images) if cfg.points <= 0 else min(cfg.points, len(images))
    labels = np.asarray(images.labels[:n])
    pixels = np.multiply(images.images[:n].reshape(n, -1), 1 / 255, dtype=np.float32)   # as the DataLoader scales
    z = hidden_features(result["weights"], pixels, cfg.activation)
    reduced = pca(pixels, cfg.pca_components, cfg.seed)
    scored = subsample(n, cfg.score_points, cfg.seed)
    scored_on = f"all {n:,}" if len(scored) == n else f"{len(scored):,} of {n:,} (seeded subsample)"
    inputs = {"hidden layer": (z, f"hidden layer z ({z.shape[1]} units, {engine})", f"{z.shape[1]}"),
              "raw pixels": (reduced, "raw pixels x", f"{pixels.shape[1]} → PCA {reduced.shape[1]}")}
    maps, rows, seconds = {}, [], {}
    for key, (x, name, dims) in inputs.items():
        emb, seconds[key] = tsne(x, cfg.perplexity, cfg.seed, cfg.tsne_jobs, cfg.exaggeration_iter, cfg.tsne_iter)
        sep = separation(emb[scored], labels[scored])
        log(f"t-SNE of {n:,} × {dims} ({key}): {seconds[key]:.1f} s")
        maps[f"{name}: silhouette {sep['silhouette']:.2f}, 5-NN {100 * sep['knn_accuracy']:.1f}%"] = emb
        rows.append({"input": key, "dimensions": dims, "points embedded": n, "t-SNE seconds": seconds[key],
                     "scored on": scored_on, **sep})
    log("\n" + write_table(out, "separation", renamed(rows, {"silhouette": "silhouette by digit",
                                                             "knn_accuracy": "5-NN accuracy (leave-one-out)"})))
    te, te_mis = error_curves(result["history"], "test")
    perplexity = min(cfg.perplexity, (n - 1) / 3)
    plot_maps(maps, labels, out / "tsne.png", seed=cfg.seed,
              title=f"openTSNE (FFT, perplexity {perplexity:g}) of {n:,} {dataset_label(cfg.dataset)} "
                    f"{cfg.tsne_split}ing images — MLP {result['architecture']}, batch {cfg.batch_size}, "
                    f"lr {cfg.lr:g}, {cfg.epochs} epochs, {result['seconds']:.1f} s training; test error "
                    f"{te[-1]:.3f} {CE}, {te_mis[-1]:.2f}% misclassified; scores on {scored_on} points")
    metrics = {"setup": setup_info(cfg, result, engine=engine, tsne_split=cfg.tsne_split, points=n,
                                   perplexity=perplexity, pca_components=int(reduced.shape[1]),
                                   tsne="openTSNE, FFT gradients, PCA initialisation", tsne_jobs=cfg.tsne_jobs,
                                   tsne_iterations=[cfg.exaggeration_iter, cfg.tsne_iter],
                                   scored_points=int(len(scored))),
               "separation": {r["input"]: {k: r[k] for k in ("silhouette", "knn_accuracy")} for r in rows},
               "tsne_seconds": seconds,
               "test_error_mean_ce": te[-1], "test_misclassification_pct": te_mis[-1]}
    write_json(out / "metrics.json", metrics)
    log("Answer: " + answer(metrics))
    return metrics


def answer(metrics: dict) -> str:
    """The study's answer: both maps' separation scores, their t-SNE times and the verdict."""
    raw, hid = metrics["separation"]["raw pixels"], metrics["separation"]["hidden layer"]
    better = hid["silhouette"] > raw["silhouette"] and hid["knn_accuracy"] >= raw["knn_accuracy"]
    s, t = metrics["setup"], metrics["tsne_seconds"]
    return (f"{s['points']:,} {s['tsne_split']} images: hidden layer silhouette {hid['silhouette']:.3f}, 5-NN "
            f"{100 * hid['knn_accuracy']:.1f}% (t-SNE {t['hidden layer']:.1f} s); raw pixels silhouette "
            f"{raw['silhouette']:.3f}, 5-NN {100 * raw['knn_accuracy']:.1f}% (t-SNE {t['raw pixels']:.1f} s); "
            f"the hidden layer separates the digits {'better' if better else 'not better'} than the pixels")


def describe(metrics: dict, config: dict) -> str:
    raw, hid = metrics["separation"]["raw pixels"], metrics["separation"]["hidden layer"]
    s, t = metrics["setup"], metrics["tsne_seconds"]
    better = hid["silhouette"] > raw["silhouette"]
    scored = (f"all {s['points']:,} points" if s["scored_points"] == s["points"]
              else f"a seeded subsample of {s['scored_points']:,} of the {s['points']:,} points")
    return (f"On {s['points']:,} {s['tsne_split']}ing images (openTSNE, {t['hidden layer']:.0f} s and "
            f"{t['raw pixels']:.0f} s for the two maps), the t-SNE map of the raw pixels (after PCA to "
            f"{s['pca_components']} dimensions) has a silhouette score of {raw['silhouette']:.2f} by digit and a "
            f"5-nearest-neighbour accuracy of {100 * raw['knn_accuracy']:.1f}%; the map of the trained hidden layer "
            f"has {hid['silhouette']:.2f} and {100 * hid['knn_accuracy']:.1f}% (scores on {scored}). "
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
