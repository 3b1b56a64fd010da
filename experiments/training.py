"""One training run, on the numpy engine or its torch twin, as a picklable task.

A study describes each independent training as a :class:`Run` (model, optimiser,
batch size, epochs, seed, engine) and the data as a :class:`Data`; ``train(run, data)``
returns a plain dict (the :class:`~tinygrad_mnist.train.History` as a dict, timings,
parameter count and any extras asked for), so the same call works serially, in joblib
processes and on dask workers (see :mod:`experiments.parallel`).

``train`` is the one training loop of the studies.  What it trains with comes from
methods of the run: ``optimizer_kwargs()``, ``loader(dataset, flatten)``,
``scheduler(optimizer, engine)``, ``penalty()`` and ``keeps_diverged``.  A plain
:class:`Run` gives the plain ones (the optimiser's learning rate and momentum, a seeded
shuffling ``DataLoader``, no schedule, no penalty, a diverged training raises);
:class:`experiments.recipes.Recipe` overrides them with weight decay, L1/L2 penalties,
learning-rate schedules and augmentation, and returns a diverged training as a result.

Both engines start from the **same weights** and see the **same batches**: the numpy
model is built from the layer descriptions with ``seed``; for ``engine="torch"`` the
torch twin is built from the same descriptions (``torch_baselines.build``) and the numpy
weights are copied into it (``torch_baselines.numpy_to_torch``); both loops read the
batches of the run's numpy loader (``run.loader``), seeded with ``seed``.  Torch's
one-off start-up costs in a process are paid before the clock starts.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import ClassVar, Optional, Tuple

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
        Limit numpy's BLAS and torch to this many threads while training (0: leave them
        as they are); the limit is lifted afterwards.

    The methods ``optimizer_kwargs``, ``loader``, ``scheduler`` and ``penalty`` and the
    class attribute ``keeps_diverged`` say what :func:`train` trains with; a subclass
    (:class:`experiments.recipes.Recipe`) overrides them.
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

    #: A training whose loss becomes NaN or infinite raises ``TrainingDivergedError``
    #: (False) or is returned as a result, its missing epochs NaN (True).
    keeps_diverged: ClassVar[bool] = False

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"Run: engine must be one of {ENGINES}, got {self.engine!r}")
        unknown = set(self.extras) - set(EXTRAS)
        if unknown:
            raise ValueError(f"Run: unknown extras {sorted(unknown)}; choose from {EXTRAS}")

    def describe_layers(self, n_features: int, num_classes: int) -> Tuple[LayerDesc, ...]:
        if self.layers is not None:
            return tuple(self.layers)
        return tuple(MLPSpec((n_features, *self.hidden, num_classes), self.activation, "logits").layers())

    def init_kwargs(self) -> dict:
        return {"std": self.init_std} if self.init in ("normal",) else {}

    def optimizer_kwargs(self) -> dict:
        """The keyword arguments both engines' optimisers get besides the parameters:
        ``lr``, and ``momentum`` for sgd when it is not 0."""
        kwargs = {"lr": self.lr}
        if self.optimizer == "sgd" and self.momentum:
            kwargs["momentum"] = self.momentum
        return kwargs

    def loader(self, dataset, flatten: bool):
        """The training batches of both engines: a ``DataLoader`` shuffled with ``seed``."""
        from tinygrad_mnist.data import DataLoader

        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, seed=self.seed, flatten=flatten)

    def scheduler(self, optimizer, engine: str):
        """The per-epoch learning-rate schedule of ``optimizer`` on ``engine`` (None: constant)."""
        return None

    def penalty(self):
        """A ``tinygrad_mnist.nn.Penalty`` added to the loss on either engine (None: none)."""
        return None


def architecture(layers) -> str:
    """A short text of a layer stack: ``"784-64-10 sigmoid"`` for an MLP, kinds otherwise."""
    linears = [d.kwargs for d in layers if d.kind == "linear"]
    kinds = {d.kind for d in layers}
    if kinds <= {"linear", "activation"} and linears:
        sizes = [linears[0]["in_features"]] + [a["out_features"] for a in linears]
        acts = [d.kwargs["name"] for d in layers if d.kind == "activation"]
        return "-".join(map(str, sizes)) + (f" {acts[0]}" if acts else "")
    return " → ".join(d.kind for d in layers)


def takes_images(layers) -> bool:
    """Whether a layer stack reads (N, C, H, W) images (a convolution, also inside a
    residual block) rather than flat (N, features) rows."""
    return any(d.kind == "conv2d" or (d.kind == "residual" and takes_images(d.kwargs["block"])) for d in layers)


def _numpy_model(run: Run, layers):
    from tinygrad_mnist import build

    return build(layers, seed=run.seed, init=run.init, init_kwargs=run.init_kwargs(), needs_input_grad=False)


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


@contextlib.contextmanager
def limited_threads(threads: int, engine: str):
    """Run with at most ``threads`` BLAS threads (numpy) or torch threads (0: as they are)."""
    if not threads:
        yield
        return
    if engine == "torch":
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            yield
        finally:
            torch.set_num_threads(before)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield


def train(run: Run, data: Data) -> dict:
    """Train one model; returns a plain dict (see the module docstring).

    Keys: ``run``, ``data``, ``architecture``, ``parameters``, ``n_train``, ``n_val``,
    ``n_test``, ``dataset_name``, the extras asked for before training
    (``initial_weights``, ``initial_hidden``), ``diverged`` (the error's text, only for a
    diverged run that ``keeps_diverged``), ``seconds``, ``history`` and the extras after
    training (``test_outputs``, ``hidden_features``, ``weights``).
    """
    from experiments.common import load_splits
    from tinygrad_mnist.data import DataLoader
    from tinygrad_mnist.train import TrainingDivergedError

    train_set, val, test = load_splits(data, log=None)
    layers = run.describe_layers(train_set.n_features, train_set.num_classes)
    flatten = not takes_images(layers)
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
    loader = run.loader(train_set, flatten)
    if run.engine == "torch":
        _warm_up_torch(layers, loader)
    fit_engine = _fit_numpy if run.engine == "numpy" else _fit_torch
    kept = {}

    def keep(epoch, history):
        kept["history"] = history
        return False

    with limited_threads(run.threads, run.engine):
        t0 = time.perf_counter()
        try:
            history, predict = fit_engine(run, layers, model, loader, val, test, flatten, keep)
        except TrainingDivergedError as err:
            if not run.keeps_diverged:
                raise
            history, predict = padded(kept.get("history"), run, val is not None), None
            result["diverged"] = str(err)
        result["seconds"] = time.perf_counter() - t0
    model.eval()
    result["history"] = history.to_dict()
    if "test_outputs" in run.extras:
        outs = [np.asarray(predict(x)) if predict else np.zeros((len(y), train_set.num_classes))
                for x, y in DataLoader(test, 1000, shuffle=False, flatten=flatten)]
        result["test_outputs"] = np.concatenate(outs).astype(np.float32)
    if "hidden_features" in run.extras:
        feats = [_hidden_of(model, x, "last") for x, _ in DataLoader(test, 1000, shuffle=False, flatten=flatten)]
        result["hidden_features"] = np.concatenate(feats).astype(np.float32)
    if "weights" in run.extras:
        result["weights"] = {name: np.array(p.data) for name, p in model.named_parameters()}
    return result


def padded(history, run: Run, has_val: bool):
    """The history of a diverged run, its missing epochs filled with NaN (plots leave them out)."""
    from tinygrad_mnist.train import History

    h = history if history is not None else History()
    splits = ["train", "test"] + (["val"] if has_val else []) + (["train_eval"] if run.eval_train else [])
    for _ in range(h.epochs, run.epochs):
        h.batch_loss.append([float("nan")])
        h.batch_accuracy.append([float("nan")])
        h.epoch_seconds.append(float("nan"))
        for s in splits:
            getattr(h, f"{s}_loss").append(float("nan"))
            getattr(h, f"{s}_accuracy").append(float("nan"))
    return h


def _warm_up_torch(layers, loader) -> None:
    """Torch's one-off costs in a process, before the clock starts: ``seed_everything``'s
    deterministic mode imports torch's compiler stack (seconds), and the first pass of a
    throwaway twin sets up the kernels."""
    import torch

    import torch_baselines as tb
    from tinygrad_mnist.data import DataLoader

    tb.seed_everything(0)
    with torch.random.fork_rng(devices=[]):
        model = tb.build(layers)
        # the first batch, unshuffled and unaugmented, without touching the loader's epoch
        x, _ = next(iter(DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False,
                                    flatten=loader.flatten)))
        model(torch.from_numpy(np.ascontiguousarray(x))).sum().backward()


def _fit_numpy(run: Run, layers, model, loader, val, test, flatten, keep):
    from tinygrad_mnist import SoftmaxCrossEntropy, optimizer_by_name
    from tinygrad_mnist.train import fit

    optimizer = optimizer_by_name(run.optimizer, model.parameters(), **run.optimizer_kwargs())
    history = fit(model, SoftmaxCrossEntropy(), optimizer, loader, val=val, test=test, epochs=run.epochs,
                  seed=run.seed, flatten=flatten, progress=False, eval_train=run.eval_train,
                  regularizer=run.penalty(), scheduler=run.scheduler(optimizer, "numpy"), callbacks=[keep])
    return history, model.forward


def _fit_torch(run: Run, layers, numpy_model, loader, val, test, flatten, keep):
    """The torch twin: same layers, the numpy model's initial weights, the same batches."""
    import torch

    import torch_baselines as tb

    tb.seed_everything(run.seed)
    model = tb.build(layers)
    tb.numpy_to_torch(numpy_model, model)
    optimizer = tb.optimizer_by_name(run.optimizer, model.parameters(), **run.optimizer_kwargs())
    scheduler = run.scheduler(optimizer, "torch")
    loss_fn = torch.nn.CrossEntropyLoss()

    def whole_train_set(epoch, history):
        loss, acc = tb.evaluate(model, loss_fn, loader.dataset, flatten=flatten)
        history.train_eval_loss.append(float(loss))
        history.train_eval_accuracy.append(float(acc))
        return False

    history = tb.fit(model, loss_fn, optimizer, loader, val=val, test=test, epochs=run.epochs, seed=run.seed,
                     flatten=flatten, progress=False, regularizer=run.penalty(), scheduler=scheduler,
                     callbacks=([whole_train_set] if run.eval_train else []) + [keep])
    tb.torch_to_numpy(model, numpy_model)   # the trained weights, read from one place
    model.eval()

    @torch.no_grad()
    def predict(x):
        return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return history, predict


def history_of(result: dict):
    """The :class:`~tinygrad_mnist.train.History` of a result dict."""
    from tinygrad_mnist.train import History

    return History.from_dict(result["history"])


__all__ = ["Run", "Data", "train", "architecture", "history_of", "takes_images", "limited_threads", "padded",
           "ENGINES"]
