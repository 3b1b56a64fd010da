"""Grid search: which hidden size, batch size and lr give the lowest validation error; which 2-layer MLP reaches 97%?

Run (full: 12 grid points × 2 engines, 10 epochs, then 3 larger MLPs; several minutes):

    python -m experiments run grid_search --jobs 2
    python -m experiments run grid_search --quick
    python -m experiments run grid_search --hidden-sizes 32 64 --batch-sizes 64 --lrs 0.1 0.5 1.0

Part 1, the grid: every combination of ``hidden_sizes`` × ``batch_sizes`` × ``lrs`` (the
baseline's one-hidden-layer sigmoid MLP, plain SGD) trains on the training images with a
held-out validation set.  Errors are the assignment's dataset errors, the mean
cross-entropy over a set.  For each combination the model is read at its epoch of
minimum validation error e_va*, and the table gives e_te at that epoch, with the
misclassification rates (%) there beside them; the combination with the lowest e_va*
is highlighted (chosen on validation, never on test).

Part 2, a 2-hidden-layer MLP with 0.5M–1M parameters reaching ≥ 97% validation
accuracy: each of ``deep_configs`` ("H1-H2/activation/optimizer/lr/batch/momentum")
is trained on the same split and the table of configurations tried says which reach
the target (an accuracy target, so this part reads the epoch of best validation accuracy).

Writes into ``results/grid_search/``: ``grid.md/.csv`` (per combination and engine),
``grid_heatmap.png`` (e_va*, mean cross-entropy, per combination, with the validation
misclassification rate there), ``deep_mlp.md/.csv``, ``deep_mlp_curves.png``, ``metrics.json``.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, replace
from typing import Dict, Mapping, Tuple

import numpy as np

from experiments.common import DataConfig, dataset_label, error_pct, output_dir, setup_info, write_json, write_table
from experiments.parallel import run_tasks
from experiments.recipes import wrap
from experiments.studies.mlp.baseline import CE, MIS, renamed
from experiments.studies.mlp.validation import best_pair
from experiments.training import Data, Run, history_of, train

NAME = "grid_search"
QUESTION = ("Which hidden size × batch size × learning rate gives the lowest validation error (mean cross-entropy), "
            "what is the test error there, and which 2-hidden-layer MLP of 0.5M–1M parameters reaches 97% "
            "validation accuracy?")


@dataclass
class Config(DataConfig):
    val_size: int = 10000
    hidden_sizes: Tuple[int, ...] = (32, 64, 128)
    batch_sizes: Tuple[int, ...] = (32, 128)
    lrs: Tuple[float, ...] = (0.1, 0.5)
    activation: str = "sigmoid"
    init: str = "normal"
    init_std: float = 0.1
    epochs: int = 10
    seed: int = 0
    engines: Tuple[str, ...] = ("numpy", "torch")
    deep_configs: Tuple[str, ...] = ("512-512/sigmoid/sgd/0.5/64/0", "512-512/relu/sgd/0.05/64/0.9",
                                     "800-400/relu/adam/0.001/128/0")
    deep_init: str = "glorot_uniform"
    deep_epochs: int = 6
    target: float = 0.97                       # validation accuracy the 2-hidden-layer MLP must reach

    def quick(self) -> "Config":
        return replace(self, train_size=5000, val_size=5000, test_size=2000, epochs=4, deep_epochs=3,
                       hidden_sizes=(32, 64), lrs=(0.1, 0.5, 1.0), deep_configs=self.deep_configs[1:])

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", train_size=0, val_size=300, test_size=0, epochs=2, deep_epochs=2,
                       hidden_sizes=(8, 16), batch_sizes=(32,), lrs=(0.1, 0.5),
                       deep_configs=("32-32/relu/sgd/0.05/32/0.9",))


def parse_deep(spec: str) -> dict:
    """``"512-512/relu/sgd/0.05/64/0.9"`` → hidden, activation, optimizer, lr, batch_size, momentum."""
    parts = spec.split("/")
    if len(parts) != 6:
        raise ValueError(f"grid_search: a deep config is 'H1-H2/activation/optimizer/lr/batch/momentum', got {spec!r}")
    try:
        hidden = tuple(int(h) for h in parts[0].split("-"))
        return {"hidden": hidden, "activation": parts[1], "optimizer": parts[2], "lr": float(parts[3]),
                "batch_size": int(parts[4]), "momentum": float(parts[5])}
    except ValueError:
        raise ValueError(f"grid_search: cannot read the deep config {spec!r} "
                         "('H1-H2/activation/optimizer/lr/batch/momentum')") from None


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.plots import plot_curves

    if not cfg.val_size:
        raise ValueError("grid_search: val_size must be positive (the grid is read on validation)")
    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    grid = list(itertools.product(cfg.hidden_sizes, cfg.batch_sizes, cfg.lrs))
    deep = [parse_deep(s) for s in cfg.deep_configs]
    tasks = [(Run(engine=e, hidden=(h,), activation=cfg.activation, init=cfg.init, init_std=cfg.init_std,
                  optimizer="sgd", lr=lr, batch_size=b, epochs=cfg.epochs, seed=cfg.seed, eval_train=False), data)
             for e in cfg.engines for h, b, lr in grid]
    tasks += [(Run(engine="numpy", init=cfg.deep_init, epochs=cfg.deep_epochs, seed=cfg.seed, eval_train=False, **d),
               data) for d in deep]
    log(f"{len(grid)} grid points × {len(cfg.engines)} engines + {len(deep)} 2-hidden-layer MLPs")
    results = run_tasks(train, tasks, cfg.jobs, cfg.scheduler, log)
    grid_results = {(e, *point): r for (e, point), r in zip(itertools.product(cfg.engines, grid),
                                                             results[:len(cfg.engines) * len(grid)], strict=True)}
    deep_results = results[len(cfg.engines) * len(grid):]

    rows = [grid_row(point, {e: grid_results[(e, *point)]["history"] for e in cfg.engines}) for point in grid]
    main_engine = cfg.engines[0]
    best = best_combination(rows, main_engine)
    log("\n" + write_table(out, "grid", renamed(rows, grid_columns(cfg.engines)), bold_row=best))
    _heatmap(rows, cfg, main_engine, out / "grid_heatmap.png")

    deep_rows, deep_histories = [], {}
    for spec, r in zip(cfg.deep_configs, deep_results, strict=True):
        h = history_of(r)
        k = int(np.argmax(h.val_accuracy))
        deep_rows.append({"configuration": spec, "parameters": r["parameters"],
                          "in_0.5M_1M": 500_000 <= r["parameters"] <= 1_000_000, "epochs": h.epochs,
                          "best_val_accuracy_%": 100 * h.val_accuracy[k], "epoch of best val accuracy": k + 1,
                          f"val_error {CE} there": h.val_loss[k], f"test_error {CE} there": h.test_loss[k],
                          f"test_{MIS} there": error_pct(h.test_accuracy[k]),
                          "reaches_target": h.val_accuracy[k] >= cfg.target, "seconds": r["seconds"]})
        deep_histories[spec] = h
    log(write_table(out, "deep_mlp", deep_rows))
    runs = "; ".join(f"{spec} ({r['seconds']:.0f} s)" for spec, r in zip(cfg.deep_configs, deep_results, strict=True))
    plot_curves(deep_histories, out / "deep_mlp_curves.png",
                wrap(f"2-hidden-layer MLPs — {dataset_label(cfg.dataset)}, {deep_results[0]['n_train']:,} train + "
                     f"{deep_results[0]['n_val']:,} validation images, {cfg.deep_epochs} epochs; "
                     f"hidden/activation/optimizer/lr/batch/momentum (training time): {runs}"),
                splits=("train", "val"))
    reached = [r for r in deep_rows if r["reaches_target"] and r["in_0.5M_1M"]]
    first = grid_results[(main_engine, *grid[0])]
    metrics = {"setup": setup_info(cfg, first, grid={"hidden": list(cfg.hidden_sizes), "batch": list(cfg.batch_sizes),
                                                     "lr": list(cfg.lrs)}, engines=list(cfg.engines), models=len(tasks),
                                   error="mean cross-entropy over the dataset; per combination the epoch of minimum "
                                         "validation error e_va*, e_te at that epoch; best = lowest e_va*"),
               "grid": rows, "best": rows[best], "best_engine": main_engine, "deep": deep_rows,
               "deep_reaching_target": [r["configuration"] for r in reached], "target": cfg.target}
    write_json(out / "metrics.json", metrics)
    log("Answer: " + answer(metrics))
    return metrics


def grid_row(point: Tuple[int, int, float], histories: Mapping[str, Mapping]) -> Dict:
    """One combination's row: per engine, the epoch of minimum validation error, e_va* and
    e_te there (mean cross-entropy) and the misclassification rates (%) there.

    Parameters
    ----------
    point : tuple
        ``(hidden, batch_size, lr)``.
    histories : dict
        ``{engine: History as a dict}``.

    Returns
    -------
    dict
        ``hidden``, ``batch_size``, ``lr`` and ``<engine>_<key>`` for each key of
        :func:`experiments.studies.mlp.validation.best_pair`.
    """
    h, b, lr = point
    row = {"hidden": h, "batch_size": b, "lr": lr}
    for e, history in histories.items():
        row.update({f"{e}_{k}": v for k, v in best_pair(history).items()})
    return row


def grid_columns(engines) -> Dict[str, str]:
    """The table column of each engine's key of :func:`grid_row`."""
    names = {"best_epoch": "best epoch", "e_va_star_mean_ce": f"e_va* {CE}", "e_te_star_mean_ce": f"e_te {CE} at e_va*",
             "val_misclassification_pct_at_best": f"val_{MIS} at e_va*",
             "test_misclassification_pct_at_best": f"test_{MIS} at e_va*"}
    return {f"{e}_{k}": f"{e} {v}" for e in engines for k, v in names.items()}


def best_combination(rows, engine: str) -> int:
    """The index of the row with the lowest e_va* (mean cross-entropy) on ``engine``; the first on ties."""
    return int(np.argmin([r[f"{engine}_e_va_star_mean_ce"] for r in rows]))


def answer(metrics: dict) -> str:
    """The study's answer: the best combination by e_va*, e_te there, and the deep MLPs reaching the target."""
    b, e = metrics["best"], metrics["best_engine"]
    text = (f"best combination ({e}, lowest e_va*): hidden {b['hidden']}, batch {b['batch_size']}, lr {b['lr']:g}: "
            f"e_va* = {b[f'{e}_e_va_star_mean_ce']:.4f}, e_te = {b[f'{e}_e_te_star_mean_ce']:.4f} (mean CE) at epoch "
            f"{b[f'{e}_best_epoch']}; misclassification there {b[f'{e}_test_misclassification_pct_at_best']:.2f} % "
            f"test, {b[f'{e}_val_misclassification_pct_at_best']:.2f} % validation")
    reached = metrics["deep_reaching_target"]
    return text + (f"\n2-hidden-layer MLPs of 0.5M–1M parameters reaching {100 * metrics['target']:.0f}% validation "
                   f"accuracy: {', '.join(reached) if reached else 'none in this run'}")


def _heatmap(rows, cfg: Config, engine: str, path):
    from tinygrad_mnist.plots import pyplot

    plt = pyplot()
    cols = [(b, lr) for b in cfg.batch_sizes for lr in cfg.lrs]

    def cell(h, b, lr, key):
        return next(r[f"{engine}_{key}"] for r in rows if (r["hidden"], r["batch_size"], r["lr"]) == (h, b, lr))

    m = np.array([[cell(h, b, lr, "e_va_star_mean_ce") for b, lr in cols] for h in cfg.hidden_sizes])
    mis = np.array([[cell(h, b, lr, "val_misclassification_pct_at_best") for b, lr in cols] for h in cfg.hidden_sizes])
    fig, ax = plt.subplots(figsize=(1.4 * len(cols) + 2.8, 0.8 * len(cfg.hidden_sizes) + 2))
    im = ax.imshow(m, cmap="viridis_r", aspect="auto")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]:.3f}\n({mis[i, j]:.1f}%)", ha="center", va="center",
                    color="white" if m[i, j] > m.mean() else "black",
                    fontsize=7, fontweight="bold" if m[i, j] == m.min() else "normal")
    ax.set_xticks(range(len(cols)), [f"batch {b}\nlr {lr:g}" for b, lr in cols], fontsize=7)
    ax.set_yticks(range(len(cfg.hidden_sizes)), [f"hidden {h}" for h in cfg.hidden_sizes], fontsize=8)
    fig.colorbar(im, ax=ax, label="e_va* (mean cross-entropy)")
    ax.set_title(f"{engine}: minimum validation error e_va* (mean cross-entropy; validation misclassification\n"
                 f"rate there in brackets) — {dataset_label(cfg.dataset)}, {cfg.epochs} epochs; bold = best",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe(metrics: dict, config: dict) -> str:
    b, e = metrics["best"], metrics["best_engine"]
    text = (f"Of {len(metrics['grid'])} combinations, the lowest validation error (mean cross-entropy) on the {e} "
            f"engine is hidden {b['hidden']}, batch {b['batch_size']}, lr {b['lr']:g}: "
            f"e_va* = {b[f'{e}_e_va_star_mean_ce']:.4f} at epoch {b[f'{e}_best_epoch']}, where the test error is "
            f"e_te = {b[f'{e}_e_te_star_mean_ce']:.4f} ({b[f'{e}_test_misclassification_pct_at_best']:.2f}% "
            f"misclassified). ")
    worst = max(metrics["grid"], key=lambda r: r[f"{e}_e_va_star_mean_ce"])
    text += (f"The worst combination (hidden {worst['hidden']}, batch {worst['batch_size']}, lr {worst['lr']:g}) "
             f"stays at e_va* = {worst[f'{e}_e_va_star_mean_ce']:.4f} "
             f"({worst[f'{e}_val_misclassification_pct_at_best']:.2f}% misclassified). ")
    if "torch_e_va_star_mean_ce" in b:
        text += (f"The torch twin at the same point: e_va* = {b['torch_e_va_star_mean_ce']:.4f}, "
                 f"e_te = {b['torch_e_te_star_mean_ce']:.4f}. ")
    deep = metrics["deep"]
    if deep:
        tried = "; ".join(f"{r['configuration']} ({r['parameters']:,} parameters): {r['best_val_accuracy_%']:.2f}%"
                          for r in deep)
        reached = metrics["deep_reaching_target"]
        text += f"2-hidden-layer MLPs tried, best validation accuracy: {tried}. "
        text += (f"Reaching {100 * metrics['target']:.0f}% with 0.5M–1M parameters: "
                 + (", ".join(reached) if reached else "none in this run") + ".")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
