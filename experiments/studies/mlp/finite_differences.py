"""Finite differences vs back-propagation: the V-shaped error of central differences.

Run (full: trains a 784-512-512-10 MLP for one epoch on MNIST, then 2 dtypes × 12 step
sizes × 10 weights; under a minute on 2 cores):

    python -m experiments.studies.mlp.finite_differences
    python -m experiments.studies.mlp.finite_differences --quick        # small network, seconds

After brief training, one training example's loss L(θ) is differentiated with respect to
the first ``p`` weights of the second layer (``W2.ravel()[:p]``, i.e. W2[0, :p]) twice:
analytically (back-propagation) and by central differences with ε = 1/N,

    ∇ᴺ_i = (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε,

for every N in ``ns``, in float64 and in float32 (the whole model converted with
``astype``, so every forward pass runs in that precision).  The error
``max_i |∇ᴺ_i − ∂L/∂θ_i|`` against N on log-log axes is a V: truncation (∝ ε² = 1/N²)
on the left, rounding (∝ u/ε = u·N) on the right, see ``docs/finite_differences.md``.

No learning curve is drawn (the training is one epoch by default); ``history.json`` keeps
its training loss as the running mean of the batch losses.  The title of ``errors.png``
names the model and the example, then the brief training it follows (dataset, batch
size, learning rate, epochs, training time).

Writes into ``results/finite_differences/``: ``config.json``, ``history.json``,
``errors.md/.csv`` (one row per N), ``gradients.md/.csv`` (the p analytic values per
dtype), ``metrics.json`` (the minimum error and its N per dtype, training accuracy) and
``errors.png``.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Optional, Tuple

import numpy as np

from experiments.common import dataset_label, output_dir, parse_config, save_config, write_json, write_table
from tinygrad_mnist.check.gradcheck import numerical_gradient
from tinygrad_mnist.data import load_dataset
from tinygrad_mnist.models import MLPSpec, build_mlp
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
from tinygrad_mnist.nn.module import Sequential
from tinygrad_mnist.optim import SGD
from tinygrad_mnist.train import evaluate, fit

NAME = "finite_differences"


@dataclass
class Config:
    hidden: Tuple[int, ...] = (512, 512)    # 784-512-512-10: 669,706 parameters
    activation: str = "sigmoid"
    init: str = "glorot_uniform"
    epochs: int = 1                          # "briefly": one pass over the training set
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 128
    train_size: int = 0                      # 0: all 60,000 training images
    example_index: int = 0                   # the training example whose loss is differentiated
    p: int = 10                              # how many weights of the second layer
    ns: Tuple[int, ...] = (1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000, 500000)
    dtypes: Tuple[str, ...] = ("float64", "float32")
    train_dtype: str = "float32"             # training precision; the checks convert copies
    seed: int = 0
    dataset: str = "mnist"                   # "mnist", "digits" or an IDX / PNG-folder directory
    data_dir: Optional[str] = None           # else $TINYGRAD_MNIST_DATA, then the cache
    out: str = "results"

    def quick(self) -> "Config":
        # A small network and more N values, so the float64 V closes within the range too.
        return replace(self, hidden=(32, 32), train_size=2000,
                       ns=(1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000))


def second_layer_weight(model: Sequential):
    """The weight Parameter of the model's second Linear layer (W2)."""
    linears = [m for m in model if hasattr(m, "weight")]
    if len(linears) < 2:
        raise ValueError(f"finite_differences: the model needs two Linear layers, got {len(linears)}")
    return linears[1].weight


def gradients(model: Sequential, x: np.ndarray, y: np.ndarray, p: int, ns) -> Dict[str, np.ndarray]:
    """Analytic ``∂L/∂θ_i`` and central differences ``∇ᴺ_i`` for ``θ = W2.ravel()[:p]``.

    Everything runs in the model's dtype; ``x`` must have it too.  Returns
    ``{"analytic": (p,), "numeric": (len(ns), p)}`` as float64 arrays.
    """
    loss = SoftmaxCrossEntropy()
    weight = second_layer_weight(model)
    model.zero_grad()
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())
    analytic = weight.grad.ravel()[:p].astype(np.float64)
    f = lambda: loss.forward(model.forward(x), y)  # noqa: E731
    numeric = np.stack([numerical_gradient(f, weight.data, 1.0 / n, indices=np.arange(p)) for n in ns])
    return {"analytic": analytic, "numeric": numeric}


def run(cfg: Config, log=print) -> dict:
    out = output_dir(NAME, cfg.out)
    save_config(out, cfg)
    train, test = load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.data_dir is None)
    if cfg.train_size:
        train = train.first(min(cfg.train_size, len(train)))
    spec = MLPSpec((train.n_features, *cfg.hidden, train.num_classes), cfg.activation, "logits", cfg.init)
    model = build_mlp(spec, seed=cfg.seed, dtype=np.dtype(cfg.train_dtype))
    log(f"{train!r}\nmodel: {model.num_parameters():,} parameters, {spec.sizes}, {cfg.activation}")
    optimizer = SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    history = fit(model, SoftmaxCrossEntropy(), optimizer, train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                  seed=cfg.seed, log=log, progress=False, config=asdict(cfg))
    history.save(out / "history.json")
    test_loss, test_acc = evaluate(model, SoftmaxCrossEntropy(), test)
    log(f"after {cfg.epochs} epoch(s): test accuracy {100 * test_acc:.2f}%")

    image = train.images[cfg.example_index].reshape(1, -1)
    label = train.labels[cfg.example_index:cfg.example_index + 1]
    results = {}
    for name in cfg.dtypes:
        dtype = np.dtype(name)
        twin = copy.deepcopy(model).astype(dtype)          # every forward pass in this dtype
        x = (image / 255.0).astype(dtype)
        results[name] = gradients(twin, x, label, cfg.p, cfg.ns)

    errors = {name: np.abs(r["numeric"] - r["analytic"]).max(axis=1) for name, r in results.items()}
    rows = []
    for k, n in enumerate(cfg.ns):
        row = {"N": n, "eps": 1.0 / n}
        for name in cfg.dtypes:
            row[f"max_abs_error_{name}"] = float(errors[name][k])
        rows.append(row)
    table = write_table(out, "errors", rows, floatfmt=".3e")
    log("\n" + table)
    write_table(out, "gradients", [{"i": i, **{f"dL/dtheta_{name}": float(results[name]["analytic"][i])
                                                for name in cfg.dtypes}} for i in range(cfg.p)], floatfmt=".9e")

    metrics: Dict[str, Any]
    metrics = {"test_accuracy_after_training": test_acc, "test_loss_after_training": test_loss,
               "parameters": model.num_parameters(), "example_index": cfg.example_index,
               "label": int(label[0]), "p": cfg.p,
               "max_abs_gradient": float(np.abs(results[cfg.dtypes[0]]["analytic"]).max())}
    for name in cfg.dtypes:
        k = int(np.argmin(errors[name]))
        metrics[name] = {"min_error": float(errors[name][k]), "N": int(cfg.ns[k]), "eps": 1.0 / cfg.ns[k],
                         "errors": [float(e) for e in errors[name]]}
        log(f"{name}: smallest error {errors[name][k]:.3e} at N = {cfg.ns[k]:,} (ε = {1.0 / cfg.ns[k]:.1e})")
    if len(cfg.dtypes) > 1:
        a, b = (results[d]["analytic"] for d in cfg.dtypes[:2])
        metrics["analytic_dtype_difference"] = float(np.abs(a - b).max())
    metrics["ns"] = list(cfg.ns)
    write_json(out / "metrics.json", metrics)

    from tinygrad_mnist.plots import plot_finite_difference_errors, run_title

    arch = "-".join(map(str, spec.sizes))
    data_label = dataset_label(cfg.dataset)
    trained = run_title(data_label, cfg.batch_size, cfg.lr, history.epochs, history.total_seconds,
                        prefix=f"after SGD (momentum {cfg.momentum:g}), {100 * test_acc:.2f}% test")
    plot_finite_difference_errors(cfg.ns, errors, out / "errors.png",
                                  title=f"Central differences vs back-propagation\nMLP {arch} {cfg.activation}, "
                                        f"first {cfg.p} weights of W2, training example #{cfg.example_index}\n"
                                        f"{trained}")
    log(f"wrote {out}")
    return metrics


def main(argv=None) -> int:
    cfg = parse_config(Config, argv, description=__doc__.splitlines()[0])
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
