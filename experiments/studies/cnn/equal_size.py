"""Equal size: with the same number of parameters as a 2-hidden-layer MLP (0.5M–1M), does a CNN fit MNIST
better, and what does dropout add?

Run (full: the MLP, the matched CNN and the CNN with dropout, 10 epochs each on 50,000
training images with 10,000 for validation, on both engines; about 19 minutes with
``--jobs 2`` on 2 cores, one thread per training: ``--train-size 20000`` took 455 s):

    python -m experiments run equal_size
    python -m experiments run equal_size --quick             # 5,000 images, 2 epochs

- The MLP: 784-512-512-10, ReLU (669,706 parameters).
- The CNN with the same count (within ``tolerance``): conv 1→``conv_channels[0]`` 3×3 →
  ReLU → max-pool → conv →``conv_channels[1]`` 3×3 → ReLU → max-pool → flatten → linear
  → ``h`` → ReLU → linear → 10, ``h`` chosen so that the counts agree.  The two
  convolutions keep the cost per image low; most parameters sit in the dense layer, as in
  the MLP.
- The regulariser: the same CNN with dropout ``dropout`` before both dense layers.

All Adam (lr ``lr``, torch defaults otherwise), batch ``batch_size``, He-uniform weights,
the same batches on both engines.  The training loss is the end-of-epoch model's on the
whole training set, directly comparable with the validation loss.

Writes into ``results/equal_size/``: ``losses.png`` (training and validation loss of the
MLP and the CNN on one plot, a panel per engine), ``regularizer.png`` (vanilla vs dropout
CNN), ``parameters.md/.csv``, ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Tuple

from experiments.common import (
    DataConfig,
    dataset_label,
    output_dir,
    write_json,
    write_table,
)
from experiments.parallel import run_tasks
from experiments.recipes import (
    image_size,
    parameter_rows,
    recipe,
    summary_row,
    wrap,
)
from experiments.training import Data, train

NAME = "equal_size"
QUESTION = ("With the same number of parameters as the 784-512-512-10 MLP, does a CNN reach lower training and "
            "validation loss in 10 epochs, and what does dropout change against the vanilla CNN?")


@dataclass
class Config(DataConfig):
    val_size: int = 10000
    mlp_hidden: Tuple[int, ...] = (512, 512)
    conv_channels: Tuple[int, ...] = (16, 32)
    tolerance: float = 0.10
    dropout: float = 0.5
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 10
    init: str = "he_uniform"
    eval_train: bool = True          # training loss of the end-of-epoch model on the whole set
    engines: Tuple[str, ...] = ("numpy", "torch")
    seed: int = 0
    threads: int = 1                 # BLAS / torch threads per training, both engines (0: library defaults)

    def quick(self) -> "Config":
        return replace(self, val_size=2000, train_size=5000, test_size=2000, epochs=2)

    def smoke(self) -> "Config":
        return replace(self, dataset="digits", val_size=300, train_size=300, test_size=0, epochs=2,
                       mlp_hidden=(32, 32), conv_channels=(4, 8))


def mlp_layers(cfg: Config, size: int):
    from tinygrad_mnist.models import MLPSpec

    return MLPSpec((size * size, *cfg.mlp_hidden, 10), "relu").layers()


def matched_cnn_layers(target: int, channels: Tuple[int, ...], size: int, dropout: float = 0.0,
                       tolerance: float = 0.10):
    """The two-convolution CNN whose dense width makes its count closest to ``target``.

    Count: ``9·c₁ + c₁ + 9·c₁·c₂ + c₂ + (f + 1)·h + (h + 1)·10`` with ``f = c₂·(size/4)²``,
    solved for ``h``; raises ValueError when no ``h ≥ 1`` comes within ``tolerance``.
    """
    from tinygrad_mnist.models import LayerDesc, num_parameters

    c1, c2 = (int(c) for c in channels)
    s = size // 4
    f = c2 * s * s
    convs = 10 * c1 + 9 * c1 * c2 + c2
    h = max(1, round((target - convs - 10) / (f + 11)))

    def layers(h):
        out = [LayerDesc.make("conv2d", in_channels=1, out_channels=c1, kernel_size=3, stride=1, padding=1),
               LayerDesc.make("activation", name="relu"), LayerDesc.make("maxpool2d", kernel_size=2, stride=2),
               LayerDesc.make("conv2d", in_channels=c1, out_channels=c2, kernel_size=3, stride=1, padding=1),
               LayerDesc.make("activation", name="relu"), LayerDesc.make("maxpool2d", kernel_size=2, stride=2),
               LayerDesc.make("flatten")]
        drop = [LayerDesc.make("dropout", p=dropout)] if dropout else []
        out += drop + [LayerDesc.make("linear", in_features=f, out_features=h),
                       LayerDesc.make("activation", name="relu")]
        out += drop + [LayerDesc.make("linear", in_features=h, out_features=10)]
        return tuple(out)

    result = layers(h)
    count = num_parameters(result)
    if abs(count - target) > tolerance * target:
        raise ValueError(f"equal_size: no dense width brings the CNN with channels {channels} within "
                         f"{100 * tolerance:g}% of {target:,} parameters (closest: {count:,} at width {h})")
    return result


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist.models import num_parameters
    from tinygrad_mnist.plots import plot_lines

    out = output_dir(NAME, cfg.out)
    data = Data.of(cfg)
    size = image_size(data)
    mlp = mlp_layers(cfg, size)
    target = num_parameters(mlp)
    nets = {"MLP": mlp, "CNN": matched_cnn_layers(target, tuple(cfg.conv_channels), size, 0.0, cfg.tolerance),
            "CNN + dropout": matched_cnn_layers(target, tuple(cfg.conv_channels), size, cfg.dropout, cfg.tolerance)}
    plan = {(n, e): recipe(e, layers, init=cfg.init, optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size,
                           epochs=cfg.epochs, seed=cfg.seed, threads=cfg.threads, eval_train=cfg.eval_train)
            for n, layers in nets.items() for e in cfg.engines}
    results = dict(zip(plan, run_tasks(train, [(r, data) for r in plan.values()], cfg.jobs, cfg.scheduler, log),
                       strict=True))
    train_key = "train_eval_loss" if cfg.eval_train else "train_loss"
    rows = []
    for (n, _e), r in results.items():
        h = r["history"]
        rows.append(summary_row(r, model=n, final_train_loss=h[train_key][-1], final_val_loss=h["val_loss"][-1],
                                min_val_loss=min(h["val_loss"]),
                                min_val_loss_epoch=h["val_loss"].index(min(h["val_loss"])) + 1))
    log("\n" + write_table(out, "summary", rows))
    params = parameter_rows("MLP", nets["MLP"]) + parameter_rows("CNN", nets["CNN"])
    params += [{"model": m, "layer": "", "description": "total", "parameters": num_parameters(nets[m])}
               for m in ("MLP", "CNN")]
    log(write_table(out, "parameters", params))

    any_r = next(iter(results.values()))
    curve = "whole training set, end of epoch" if cfg.eval_train else "running mean"
    title = (f"Equal size: MLP {num_parameters(nets['MLP']):,} vs CNN {num_parameters(nets['CNN']):,} parameters — "
             f"{dataset_label(cfg.dataset)} ({any_r['n_train']:,} training, {any_r['n_val']:,} validation), Adam lr "
             f"{cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs; train loss: {curve}")
    title = wrap(title)
    styles = {}
    panels = []
    for e in cfg.engines:
        lines = {}
        for n in ("MLP", "CNN"):
            h = results[(n, e)]["history"]
            lines[f"{n} train ({results[(n, e)]['seconds']:.0f} s)"] = h[train_key]
            lines[f"{n} validation"] = h["val_loss"]
            styles[f"{n} train ({results[(n, e)]['seconds']:.0f} s)"] = "-o" if n == "MLP" else "-s"
            styles[f"{n} validation"] = "--o" if n == "MLP" else "--s"
        panels.append((e, lines))
    plot_lines(panels, out / "losses.png", "epoch", "cross-entropy", title, styles=styles)
    panels = []
    for e in cfg.engines:
        lines = {}
        for n in ("CNN", "CNN + dropout"):
            h = results[(n, e)]["history"]
            lines[f"{n} train"] = h[train_key]
            lines[f"{n} validation"] = h["val_loss"]
        panels.append((e, lines))
    plot_lines(panels, out / "regularizer.png", "epoch", "cross-entropy",
               wrap(f"Vanilla CNN vs dropout {cfg.dropout:g} before both dense layers — {dataset_label(cfg.dataset)}"),
               styles={"CNN train": "-o", "CNN validation": "--o", "CNN + dropout train": "-s",
                       "CNN + dropout validation": "--s"})
    counts = {n: num_parameters(layers) for n, layers in nets.items()}
    metrics = {"setup": {"architecture": f"MLP {size * size}-" + "-".join(map(str, cfg.mlp_hidden)) + "-10 relu vs CNN "
                         + "-".join(map(str, cfg.conv_channels)) + f" + dense {nets['CNN'][-3].kwargs['out_features']}",
                         "parameters": counts, "activation": "relu", "optimizer": f"{cfg.optimizer} (torch defaults)",
                         "lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "initializer": cfg.init,
                         "seed": cfg.seed, "dataset": dataset_label(cfg.dataset), "n_train": any_r["n_train"],
                         "n_val": any_r["n_val"], "n_test": any_r["n_test"], "regularizer": f"dropout {cfg.dropout:g}",
                         "train_curve": curve, "engines": list(cfg.engines), "threads": cfg.threads},
               "count_difference_pct": 100 * (counts["CNN"] - counts["MLP"]) / counts["MLP"], "runs": rows}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    runs = {(r["model"], r["engine"]): r for r in metrics["runs"]}
    p = metrics["setup"]["parameters"]
    text = (f"The MLP has {p['MLP']:,} parameters, the CNN {p['CNN']:,} ({metrics['count_difference_pct']:+.1f}%). ")
    for e in metrics["setup"]["engines"]:
        m, c, d = runs[("MLP", e)], runs[("CNN", e)], runs[("CNN + dropout", e)]
        text += (f"{e}: MLP train/validation loss {m['final_train_loss']:.3f}/{m['final_val_loss']:.3f} "
                 f"({m['val_accuracy_pct']:.2f}% validation, {m['seconds']:.0f} s), CNN {c['final_train_loss']:.3f}/"
                 f"{c['final_val_loss']:.3f} ({c['val_accuracy_pct']:.2f}%, {c['seconds']:.0f} s), CNN + dropout "
                 f"{d['final_train_loss']:.3f}/{d['final_val_loss']:.3f} ({d['val_accuracy_pct']:.2f}%, "
                 f"{d['seconds']:.0f} s). ")
    e0 = metrics["setup"]["engines"][0]
    m, c, d = runs[("MLP", e0)], runs[("CNN", e0)], runs[("CNN + dropout", e0)]
    if c["final_val_loss"] < m["final_val_loss"]:
        text += ("At equal size the CNN's validation loss is lower than the MLP's: its convolutions find local "
                 "patterns anywhere in the image, so its dense layer works on features instead of raw pixels. ")
    else:
        text += ("In this run the CNN's validation loss is not lower than the MLP's: with this little training its "
                 "convolutions have not yet learned features worth more than the MLP's direct view of the pixels. ")
    rising = c["min_val_loss_epoch"] < c["epochs"]
    if rising:
        text += (f"The vanilla CNN's validation loss bottoms out at epoch {c['min_val_loss_epoch']} and rises "
                 f"while its training loss keeps falling (over-fitting); ")
    else:
        text += "The vanilla CNN's validation loss is still falling at the last epoch; "
    narrower = (d["final_val_loss"] - d["final_train_loss"]) < (c["final_val_loss"] - c["final_train_loss"])
    text += (f"dropout ends at {d['final_val_loss']:.3f} against {c['final_val_loss']:.3f}, with a "
             f"{'smaller' if narrower else 'larger'} train–validation gap.")
    return text


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
