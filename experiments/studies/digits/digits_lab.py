"""The 8×8 digits lab: how far does a single sigmoid layer trained by full-batch gradient descent on the squared
error get?

Run (full: 3,000 full-batch steps on scikit-learn's 1,797 digits; seconds):

    python -m experiments run digits_lab
    python -m experiments run digits_lab --quick

The lab's model, with no hidden layer: the 64 pixels (scaled to [0, 1]) get a bias
column of ones appended, ``x̃ = [x, 1]`` (65 values), and one fully connected layer
without its own bias feeds a sigmoid per class,

    ŷ = σ(x̃ Wᵀ),  W of shape (10, 65),   L = 1/(n·10) Σ_ic (ŷ_ic − y_ic)²

against one-hot targets y.  Every step is plain gradient descent on the **whole**
training set, ``W ← W − lr ∂L/∂W``; the prediction is ``argmax_c ŷ_c``.  The torch twin
(``nn.Linear(65, 10, bias=False)`` → ``nn.Sigmoid``, ``OneHotMSELoss``) starts from a
copy of the numpy weights and takes the same steps.

Writes into ``results/digits_lab/``: ``learning_curves.png`` (cost; accuracy per
step, both engines), ``first_training_image.png``, ``predictions.png`` (test images with
predicted and true labels, errors in red), ``summary.md/.csv``, ``metrics.json``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np

from experiments.common import output_dir, write_json, write_table

NAME = "digits_lab"
QUESTION = ("On the 8×8 digits, how accurate is one fully connected sigmoid layer (bias as an input column, "
            "squared error on one-hot targets) trained by full-batch gradient descent?")


@dataclass
class Config:
    steps: int = 3000                # full-batch gradient-descent steps
    lr: float = 2.0
    init_std: float = 0.01           # W ~ N(0, init_std²)
    test_size: float = 0.2           # fraction of the 1,797 images held out (a stratified, seeded split)
    split_seed: int = 0
    seed: int = 0
    engines: Tuple[str, ...] = ("numpy", "torch")
    record_every: int = 10           # steps between two points of the curves
    show: int = 24                   # test images shown with their predictions
    out: str = "results"

    def quick(self) -> "Config":
        return replace(self, steps=500)

    def smoke(self) -> "Config":
        return replace(self, steps=40, record_every=5, show=8)


def with_bias_column(images: np.ndarray) -> np.ndarray:
    """``(n, 8, 8)`` uint8 → ``(n, 65)`` float32: pixels in [0, 1], then a column of ones."""
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return np.hstack([x, np.ones((len(x), 1), np.float32)])


def layers(n_in: int, n_out: int):
    from tinygrad_mnist.models import LayerDesc

    return (LayerDesc.make("linear", in_features=n_in, out_features=n_out, bias=False),
            LayerDesc.make("activation", name="sigmoid"))


def _curves_point(predict, loss_value, x_tr, y_tr, x_te, y_te):
    return {"loss": float(loss_value), "train_accuracy": float((predict(x_tr).argmax(1) == y_tr).mean()),
            "test_accuracy": float((predict(x_te).argmax(1) == y_te).mean())}


def train_numpy(cfg: Config, model, x_tr, y_tr, x_te, y_te):
    from tinygrad_mnist import SGD, MSELoss

    loss, opt = MSELoss(), SGD(model.parameters(), lr=cfg.lr)
    curve = []
    for step in range(1, cfg.steps + 1):
        opt.zero_grad()
        value = loss.forward(model.forward(x_tr), y_tr)
        model.backward(loss.backward())
        opt.step()
        if step % cfg.record_every == 0 or step == cfg.steps:
            curve.append({"step": step, **_curves_point(model.forward, value, x_tr, y_tr, x_te, y_te)})
    return curve, model.forward


def train_torch(cfg: Config, numpy_model, x_tr, y_tr, x_te, y_te):
    import torch

    import torch_baselines as tb

    model = tb.build(layers(x_tr.shape[1], 10))
    tb.numpy_to_torch(numpy_model, model)
    loss, opt = tb.loss_by_name("mse"), torch.optim.SGD(model.parameters(), lr=cfg.lr)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(np.asarray(y_tr, dtype=np.int64))

    @torch.no_grad()
    def predict(x):
        return model(torch.from_numpy(x)).numpy()

    curve = []
    for step in range(1, cfg.steps + 1):
        opt.zero_grad()
        value = loss(model(xt), yt)
        value.backward()
        opt.step()
        if step % cfg.record_every == 0 or step == cfg.steps:
            curve.append({"step": step, **_curves_point(predict, value.item(), x_tr, y_tr, x_te, y_te)})
    return curve, predict


def run(cfg: Config, log=print) -> dict:
    from tinygrad_mnist import build
    from tinygrad_mnist.data import load_digits
    from tinygrad_mnist.plots import plot_image_grid, pyplot

    out = output_dir(NAME, cfg.out)
    train, test = load_digits(test_size=cfg.test_size, seed=cfg.split_seed)
    x_tr, x_te = with_bias_column(train.images), with_bias_column(test.images)
    y_tr, y_te = train.labels, test.labels
    log(f"{train!r}, {test!r}; inputs with the bias column: {x_tr.shape}")
    curves, predicts, seconds = {}, {}, {}
    for e in cfg.engines:
        model = build(layers(x_tr.shape[1], train.num_classes), seed=cfg.seed, init="normal",
                      init_kwargs={"std": cfg.init_std})
        t0 = time.perf_counter()
        if e == "numpy":
            curves[e], predicts[e] = train_numpy(cfg, model, x_tr, y_tr, x_te, y_te)
        elif e == "torch":
            curves[e], predicts[e] = train_torch(cfg, model, x_tr, y_tr, x_te, y_te)
        else:
            raise ValueError(f"digits_lab: unknown engine {e!r}; choose numpy or torch")
        seconds[e] = time.perf_counter() - t0

    plt = pyplot()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 4.3))
    for k, (e, c) in enumerate(curves.items()):
        steps = [p["step"] for p in c]
        ax_l.plot(steps, [p["loss"] for p in c], "-" if k == 0 else "--", color=f"C{k}", label=f"{e}: train")
        ax_a.plot(steps, [100 * p["train_accuracy"] for p in c], "-" if k == 0 else "--", color=f"C{k}",
                  label=f"{e}: train")
        ax_a.plot(steps, [100 * p["test_accuracy"] for p in c], ":", color=f"C{k}", label=f"{e}: test")
    ax_l.set(xlabel="full-batch step", ylabel="cost (mean squared error)", title="Cost")
    ax_a.set(xlabel="full-batch step", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    times = ", ".join(f"{e} {s:.1f} s" for e, s in seconds.items())
    fig.suptitle(f"digits 8×8 — one sigmoid layer 65→10, full batch ({len(train):,} images), lr {cfg.lr:g}, "
                 f"{cfg.steps} steps, training {times}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=110)
    plt.close(fig)

    plot_image_grid(train.images[:1], [f"label {train.labels[0]}"], out / "first_training_image.png",
                    title="The first training image (8×8)", ncols=1)
    first = cfg.engines[0]
    pred = predicts[first](x_te).argmax(1)
    n = min(cfg.show, len(test))
    plot_image_grid(test.images[:n], [f"pred {p} / true {t}" for p, t in zip(pred[:n], y_te[:n], strict=True)],
                    out / "predictions.png",
                    colors=["black" if p == t else "red" for p, t in zip(pred[:n], y_te[:n], strict=True)],
                    title=f"{first}: predictions on the first {n} test images (errors in red)")
    rows = [{"engine": e, "steps": cfg.steps, "lr": cfg.lr, "final_loss": c[-1]["loss"],
             "train_accuracy_pct": 100 * c[-1]["train_accuracy"], "test_accuracy_pct": 100 * c[-1]["test_accuracy"],
             "seconds": seconds[e]} for e, c in curves.items()]
    log("\n" + write_table(out, "summary", rows))
    metrics = {"setup": {"architecture": "65 (64 pixels + bias column) → 10 sigmoid, no hidden layer",
                         "parameters": 65 * 10, "activation": "sigmoid (output)", "loss": "MSE on one-hot targets",
                         "optimizer": "full-batch gradient descent", "lr": cfg.lr, "batch_size": len(train),
                         "epochs": cfg.steps, "initializer": f"normal (std {cfg.init_std:g})", "seed": cfg.seed,
                         "dataset": "digits 8×8", "n_train": len(train), "n_val": 0, "n_test": len(test)},
               "final": {e: c[-1] for e, c in curves.items()}, "seconds": seconds,
               "first_training_label": int(train.labels[0])}
    write_json(out / "metrics.json", metrics)
    return metrics


def describe(metrics: dict, config: dict) -> str:
    parts = [f"{e}: {100 * f['test_accuracy']:.2f}% test accuracy ({100 * f['train_accuracy']:.2f}% train, final "
             f"squared error {f['loss']:.4f})" for e, f in metrics["final"].items()]
    s = metrics["setup"]
    return (f"After {s['epochs']} full-batch steps with lr {s['lr']:g}: " + "; ".join(parts) + ". "
            "A single layer is a linear classifier with a squashing output: the digits are close to linearly separable "
            "at 8×8, so it does well, and the two engines, from the same weights, take the same steps.")


def main(argv=None) -> int:
    from experiments.runner import run_study

    run_study(NAME, sys.argv[1:] if argv is None else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
