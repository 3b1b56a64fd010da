"""One training run, on the numpy engine or its torch twin, as a picklable task.

A study describes each independent training as a :class:`Run` (model, optimiser,
batch size, epochs, seed, engine) and the data as a :class:`Data`; ``train(run, data)``
returns a plain dict (the :class:`~tinygrad_mnist.train.History` as a dict, timings,
parameter count and any extras asked for), so the same call works serially, in joblib
processes and on dask workers (see :mod:`experiments.parallel`).

Both engines start from the **same weights** and see the **same batches**: the numpy
model is built from the layer descriptions with ``seed``; for ``engine="torch"`` the
torch twin is built from the same descriptions (``torch_baselines.build``) and the numpy
weights are copied into it (``torch_baselines.numpy_to_torch``); both loops read the
data through the numpy ``DataLoader`` seeded with ``seed``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np

from tinygrad_mnist.models import LayerDesc, MLPSpec

ENGINES = ("numpy", "torch")
EXTRAS = ("weights", "initial_weights", "test_outputs", "hidden_features", "initial_hidden")


@dataclass(frozen=True)
class Data:
    """Which images a run trains and is evaluated on (see ``experiments.common.load_splits``)."""

    dataset: str = "mnist"
    data_dir: Optional[str] = None
    train_size: int = 0
    val_size: int = 0
    test_size: int = 0
    split_seed: int = 0

    @classmethod
    def of(cls, cfg) -> "Data":
        """The data fields of a study config."""
        return cls(cfg.dataset, cfg.data_dir, cfg.train_size, cfg.val_size, cfg.test_size, cfg.split_seed)


@dataclass(frozen=True)
class Run:
    """One training run.

    Parameters
    ----------
    engine : {"numpy", "torch"}, default="numpy"
    hidden : tuple of int, default=(64,)
        Hidden widths of the MLP (ignored when ``layers`` is given).
    activation : str, default="sigmoid"
    init : str, default="normal"
        Weight initialiser of the numpy build (the torch twin copies its weights).
    init_std : float, default=0.1
        Standard deviation for ``init="normal"``.
    optimizer : str, default="sgd"
        sgd, adam, adamw, rmsprop, adagrad (``momentum`` applies to sgd).
    lr, momentum : float
    batch_size, epochs, seed : int
    eval_train : bool, default=True
        Also record the end-of-epoch model's loss on the whole training set.
    layers : tuple of LayerDesc, optional
        Any model described by layer descriptions (a CNN ...) instead of the MLP.
    extras : tuple of str
        What to return besides the history: "weights" (final numpy parameters),
        "initial_weights" (the parameters before training),
        "test_outputs" (the model's outputs on the test set), "hidden_features" (the
        last hidden activation on the test set; for torch read from the trained weights
        copied back into the numpy model), "initial_hidden" (first hidden
        activation on the first training batch, before training).
    label : str
        Free text carried into the result (e.g. the grid point).
    threads : int, default=0
        Limit numpy's BLAS and torch to this many threads (0: leave them as they are).
    """

    engine: str = "numpy"
    hidden: Tuple[int, ...] = (64,)
    activation: str = "sigmoid"
    init: str = "normal"
    init_std: float = 0.1
    optimizer: str = "sgd"
    lr: float = 0.5
    momentum: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    seed: int = 0
    eval_train: bool = True
    layers: Optional[Tuple[LayerDesc, ...]] = None
    extras: Tuple[str, ...] = ()
    label: str = ""
    threads: int = 0

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"Run: engine must be one of {ENGINES}, got {self.engine!r}")
        unknown = set(self.extras) - set(EXTRAS)
        if unknown:
            raise ValueError(f"Run: unknown extras {sorted(unknown)}; choose from {EXTRAS}")

    def describe_layers(self, n_features: int, num_classes: int) -> Tuple[LayerDesc, ...]:
        if self.layers is not None:
            return tuple(self.layers)
        return mlp_descriptions(MLPSpec((n_features, *self.hidden, num_classes), self.activation, "logits"))

    def init_kwargs(self) -> dict:
        return {"std": self.init_std} if self.init in ("normal",) else {}


def mlp_descriptions(spec: MLPSpec) -> Tuple[LayerDesc, ...]:
    """The layer descriptions of an MLP spec (``spec.layers()``, or ``mlp_layers(spec)``)."""
    if hasattr(spec, "layers"):
        return tuple(spec.layers())
    from tinygrad_mnist.models import mlp_layers

    return tuple(mlp_layers(spec))


def architecture(layers) -> str:
    """A short text of a layer stack: ``"784-64-10 sigmoid"`` for an MLP, kinds otherwise."""
    linears = [d.kwargs for d in layers if d.kind == "linear"]
    kinds = {d.kind for d in layers}
    if kinds <= {"linear", "activation"} and linears:
        sizes = [linears[0]["in_features"]] + [a["out_features"] for a in linears]
        acts = [d.kwargs["name"] for d in layers if d.kind == "activation"]
        return "-".join(map(str, sizes)) + (f" {acts[0]}" if acts else "")
    return " → ".join(d.kind for d in layers)


def _numpy_model(run: Run, layers):
    from tinygrad_mnist import build

    return build(layers, seed=run.seed, init=run.init, init_kwargs=run.init_kwargs(), needs_input_grad=False)


def _numpy_optimizer(run: Run, params):
    from tinygrad_mnist import optimizer_by_name

    kwargs = {"lr": run.lr}
    if run.optimizer == "sgd":
        kwargs["momentum"] = run.momentum
    return optimizer_by_name(run.optimizer, params, **kwargs)


def _hidden_of(model, x, which: str):
    """The output of the first (``"first"``) or last (``"last"``) hidden activation."""
    acts = [i for i, m in enumerate(model) if type(m).__name__ in ("Sigmoid", "ReLU", "Tanh", "Identity")]
    if not acts:
        raise ValueError("hidden features: the model has no hidden activation")
    stop = acts[0] if which == "first" else acts[-1]
    out = x
    for m in list(model)[: stop + 1]:
        out = m.forward(out)
    return out


def _blas_threads(threads: int):
    """A context limiting numpy's BLAS to ``threads`` (no limit when 0)."""
    import contextlib

    if not threads:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(threads), user_api="blas")


def train(run: Run, data: Data) -> dict:
    """Train one model; returns a plain dict (see the module docstring)."""
    from experiments.common import load_splits
    from tinygrad_mnist import SoftmaxCrossEntropy
    from tinygrad_mnist.data import DataLoader
    from tinygrad_mnist.train import fit

    train_set, val, test = load_splits(data, log=None)
    layers = run.describe_layers(train_set.n_features, train_set.num_classes)
    flatten = not any(d.kind == "conv2d" for d in layers)
    model = _numpy_model(run, layers)
    result = {"run": asdict(run), "data": asdict(data), "architecture": architecture(layers),
              "parameters": int(model.num_parameters()), "n_train": len(train_set),
              "n_val": 0 if val is None else len(val), "n_test": len(test), "dataset_name": train_set.name}
    result["run"]["layers"] = None if run.layers is None else [repr(d) for d in run.layers]
    if "initial_weights" in run.extras:
        result["initial_weights"] = {name: np.array(p.data) for name, p in model.named_parameters()}
    if "initial_hidden" in run.extras:
        x0 = next(iter(DataLoader(train_set, batch_size=min(256, len(train_set)), shuffle=False, flatten=flatten)))[0]
        result["initial_hidden"] = np.asarray(_hidden_of(model, x0, "first"), dtype=np.float32)
    if run.engine == "torch":
        import torch_baselines  # noqa: F401  (imported before the clock starts)
    t0 = time.perf_counter()
    if run.engine == "numpy":
        optimizer = _numpy_optimizer(run, model.parameters())
        with _blas_threads(run.threads):
            history = fit(model, SoftmaxCrossEntropy(), optimizer, train_set, val=val, test=test, epochs=run.epochs,
                          batch_size=run.batch_size, seed=run.seed, flatten=flatten, progress=False,
                          eval_train=run.eval_train)
        predict = model.forward
    else:
        history, predict = _train_torch(run, layers, model, train_set, val, test, flatten)
    result["seconds"] = time.perf_counter() - t0
    model.eval()
    result["history"] = history.to_dict()
    if "test_outputs" in run.extras:
        outs = [np.asarray(predict(x)) for x, _ in DataLoader(test, 1000, shuffle=False, flatten=flatten)]
        result["test_outputs"] = np.concatenate(outs).astype(np.float32)
    if "hidden_features" in run.extras:
        feats = [_hidden_of(model, x, "last") for x, _ in DataLoader(test, 1000, shuffle=False, flatten=flatten)]
        result["hidden_features"] = np.concatenate(feats).astype(np.float32)
    if "weights" in run.extras:
        result["weights"] = {name: np.array(p.data) for name, p in model.named_parameters()}
    return result


def _train_torch(run: Run, layers, numpy_model, train_set, val, test, flatten):
    """The torch twin: same layers, the numpy model's initial weights, the same batches."""
    import torch

    import torch_baselines as tb

    if run.threads:
        torch.set_num_threads(run.threads)
    tb.seed_everything(run.seed)
    model = tb.build(layers)
    tb.numpy_to_torch(numpy_model, model)
    kwargs = {"momentum": run.momentum} if run.optimizer == "sgd" and run.momentum else {}
    optimizer = tb.optimizer_by_name(run.optimizer, model.parameters(), run.lr, **kwargs)
    loss_fn = torch.nn.CrossEntropyLoss()

    def whole_train_set(epoch, history):
        loss, acc = tb.evaluate(model, loss_fn, train_set, flatten=flatten)
        history.train_eval_loss.append(float(loss))
        history.train_eval_accuracy.append(float(acc))
        return False

    history = tb.fit(model, loss_fn, optimizer, train_set, val=val, test=test, epochs=run.epochs,
                     batch_size=run.batch_size, seed=run.seed, flatten=flatten, progress=False,
                     callbacks=[whole_train_set] if run.eval_train else [])
    # copy the trained weights back so extras read from one place
    tb.torch_to_numpy(model, numpy_model)
    model.eval()

    @torch.no_grad()
    def predict(x):
        return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return history, predict


def history_of(result: dict):
    """The :class:`~tinygrad_mnist.train.History` of a result dict."""
    from tinygrad_mnist.train import History

    return History.from_dict(result["history"])


__all__ = ["Run", "Data", "train", "architecture", "history_of", "ENGINES"]
