"""The numpy engine against the other numpy autodiff libraries: ``bench --peers``.

Each peer is a :class:`~benchmarks.steps.Side`, timed in the same interleaved loop as the
numpy engine and torch (numpy, torch, autograd, mygrad per round, each epoch after the
same untimed settle pause), on the same batches in the same order.  A peer is built from
the same layer description as the numpy model and starts from a copy of its weights; it
trains with the same loss (softmax cross-entropy on logits, mean over the batch) and the
same update, SGD with torch's momentum::

    b ← μ b + g    (b = 0 before the first step, so b = g after it)
    θ ← θ - lr b

written the way each library's users write it:

* **autograd** (HIPS): a plain forward function of ``autograd.numpy`` operations and a
  list of weight arrays, differentiated by ``autograd.value_and_grad``; the convolution
  is 3×3 windows cut by slicing, stacked and contracted with ``tensordot`` (autograd
  cannot differentiate ``numpy.lib.stride_tricks`` views), max-pooling a reshape and a
  ``max``, the labels one-hot as in autograd's own MNIST example.
* **mygrad**: ``mygrad.Tensor`` weights, its own ``mygrad.nnet`` layers (``conv_nd``,
  ``max_pool``, ``relu``/``sigmoid``/``tanh``, ``softmax_crossentropy``), ``matmul``,
  ``loss.backward()``, then the update on each weight's ``.data`` with its ``.grad``:
  MyGrad ships no optimiser classes.

A peer that is not installed (``pip install -e ".[peers]"``) or cannot express a layer
of the model is left out of the record with the reason (``peer_notes``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from tinygrad_mnist.data import DataLoader

from .steps import Side

#: The peers, in the order they are timed after the numpy engine and torch.
PEER_NAMES = ("autograd", "mygrad")

#: The goal: the numpy engine at least this many times faster than the fastest peer.
TARGET_PEER_SPEEDUP = 2.0

_ACTIVATIONS = ("relu", "sigmoid", "tanh")


class PeerUnavailable(Exception):
    """A peer cannot run a model; the message says why (it becomes the record's note)."""


@dataclass
class PeerModel:
    """A peer's model: the layer description and its weights (``train``/``eval`` are no-ops,
    as the bench models have no dropout or batch norm)."""

    layers: Sequence[Any]
    weights: List[Any]

    def train(self) -> None:
        pass

    def eval(self) -> None:
        pass


def check_supported(layers) -> None:
    """Raise :class:`PeerUnavailable` for a layer the peers are not written for."""
    for d in layers:
        a = d.kwargs
        if d.kind in ("linear", "flatten"):
            continue
        if d.kind == "activation" and a["name"] in _ACTIVATIONS:
            continue
        if d.kind == "conv2d" and isinstance(a["kernel_size"], int):
            continue
        if d.kind == "maxpool2d" and (a.get("stride") or a["kernel_size"]) == a["kernel_size"]:
            continue
        raise PeerUnavailable(f"layer {d.kind} {a} is not written for the peers")


def copy_weights(layers, numpy_model) -> List[np.ndarray]:
    """Copies of ``numpy_model``'s parameters, in layer order (weight, bias per layer).

    Linear weights are (out_features, in_features) and convolution filters (O, C, k, k),
    as in the numpy engine and torch, so the arrays copy over as they are.
    """
    check_supported(layers)
    weights = [np.array(p.data, copy=True) for p in numpy_model.parameters()]
    expected = 2 * sum(d.kind in ("linear", "conv2d") for d in layers)
    if len(weights) != expected:
        raise PeerUnavailable(f"expected {expected} parameter arrays (weight and bias per layer), "
                              f"the numpy model has {len(weights)}")
    return weights


def sgd_momentum(weights: Sequence[np.ndarray], grads: Sequence[np.ndarray], velocity: Sequence[np.ndarray],
                 lr: float, momentum: float) -> None:
    """In place: ``b ← μ b + g``, ``θ ← θ - lr b`` for each weight (torch.optim.SGD's momentum)."""
    for w, g, b in zip(weights, grads, velocity, strict=True):
        b *= momentum
        b += g
        w -= lr * b


class PeerSide(Side):
    """What the peers share: the weights, the velocity, and accuracy by argmax of the logits."""

    model: PeerModel

    def __init__(self, layers, weights: List[np.ndarray], lr: float, momentum: float):
        check_supported(layers)
        self.lr, self.momentum = lr, momentum
        self.velocity = [np.zeros_like(w) for w in weights]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The model's logits for ``x`` as an ndarray, no gradient kept."""
        raise NotImplementedError

    def weight_arrays(self) -> List[np.ndarray]:
        """The current weights as ndarrays, in the numpy model's parameter order."""
        raise NotImplementedError

    def accuracy(self, dataset, flatten: bool, batch_size: int = 1000) -> float:
        correct = 0
        for x, y in DataLoader(dataset, batch_size, shuffle=False, flatten=flatten):
            correct += int((self.logits(x).argmax(axis=1) == y).sum())
        return correct / len(dataset)


# -- autograd ------------------------------------------------------------------------------
def autograd_conv2d(x, w, b, stride: int, padding: int):
    """Cross-correlation (N, C, H, W) ⋆ (O, C, k, k) → (N, O, H_out, W_out), plus bias.

    ``y[n, o, i, j] = b[o] + Σ_{c, p, q} x_pad[n, c, s·i + p, s·j + q] w[o, c, p, q]``: the
    k² shifted windows of the padded input are cut by slicing and stacked into
    (N, C, k², H_out, W_out), then contracted with the filters over (C, k²).
    """
    import autograd.numpy as anp

    o, c, k, _ = w.shape
    xp = anp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="constant")
    h_out = (xp.shape[2] - k) // stride + 1
    w_out = (xp.shape[3] - k) // stride + 1
    windows = [xp[:, :, p:p + stride * (h_out - 1) + 1:stride, q:q + stride * (w_out - 1) + 1:stride]
               for p in range(k) for q in range(k)]
    cols = anp.stack(windows, axis=2)
    y = anp.tensordot(cols, anp.reshape(w, (o, c, k * k)), axes=([1, 2], [1, 2]))  # (N, H_out, W_out, O)
    return anp.transpose(y, (0, 3, 1, 2)) + anp.reshape(b, (1, o, 1, 1))


def autograd_forward(layers, weights, x):
    """The logits of the model ``layers`` with ``weights`` (a list of arrays) on ``x``."""
    import autograd.numpy as anp

    acts: Dict[str, Callable] = {"relu": lambda h: anp.maximum(h, 0.0),
                                 "sigmoid": lambda h: 1.0 / (1.0 + anp.exp(-h)),
                                 "tanh": anp.tanh}
    h, i = x, 0
    for d in layers:
        a = d.kwargs
        if d.kind == "linear":
            h = anp.dot(h, weights[i].T) + weights[i + 1]
            i += 2
        elif d.kind == "conv2d":
            h = autograd_conv2d(h, weights[i], weights[i + 1], a.get("stride", 1), a.get("padding", 0))
            i += 2
        elif d.kind == "maxpool2d":
            k = a["kernel_size"]
            n, c, hh, ww = h.shape
            h = anp.max(anp.reshape(h[:, :, :hh // k * k, :ww // k * k], (n, c, hh // k, k, ww // k, k)),
                        axis=(3, 5))
        elif d.kind == "activation":
            h = acts[a["name"]](h)
        elif d.kind == "flatten":
            h = anp.reshape(h, (h.shape[0], -1))
    return h


def autograd_loss(weights, x, targets, layers):
    """Mean softmax cross-entropy ``-(1/N) Σ_n Σ_k t_nk log softmax(z_n)_k``, one-hot ``targets``."""
    import autograd.numpy as anp

    z = autograd_forward(layers, weights, x)
    shifted = z - anp.max(z, axis=1, keepdims=True)
    log_probs = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
    return -anp.sum(log_probs * targets) / x.shape[0]


class AutogradSide(PeerSide):
    """HIPS autograd: ``value_and_grad`` of a numpy loss w.r.t. the list of weight arrays."""

    name = "autograd"

    def __init__(self, layers, weights, lr: float, momentum: float):
        super().__init__(layers, weights, lr, momentum)
        from autograd import value_and_grad

        self.model = PeerModel(layers, [np.array(w, copy=True) for w in weights])
        self.loss_and_grads = value_and_grad(autograd_loss)
        self.num_classes = weights[-1].shape[0]

    def step(self, x, y) -> float:
        targets = np.eye(self.num_classes, dtype=x.dtype)[y]
        loss, grads = self.loss_and_grads(self.model.weights, x, targets, self.model.layers)
        sgd_momentum(self.model.weights, grads, self.velocity, self.lr, self.momentum)
        return float(loss)

    def logits(self, x):
        return np.asarray(autograd_forward(self.model.layers, self.model.weights, x))

    def weight_arrays(self):
        return self.model.weights


# -- mygrad --------------------------------------------------------------------------------
def mygrad_forward(layers, params, x):
    """The logits (a ``mygrad.Tensor``) of the model ``layers`` with the tensors ``params``."""
    import mygrad as mg
    from mygrad.nnet import conv_nd, max_pool, relu, sigmoid, tanh

    acts = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}
    h, i = x, 0
    for d in layers:
        a = d.kwargs
        if d.kind == "linear":
            h = mg.matmul(h, params[i].T) + params[i + 1]
            i += 2
        elif d.kind == "conv2d":
            o = params[i].shape[0]
            h = conv_nd(h, params[i], stride=a.get("stride", 1), padding=a.get("padding", 0)) \
                + params[i + 1].reshape(1, o, 1, 1)
            i += 2
        elif d.kind == "maxpool2d":
            k = a["kernel_size"]
            h = max_pool(h, (k, k), (k, k))
        elif d.kind == "activation":
            h = acts[a["name"]](h)
        elif d.kind == "flatten":
            h = h.reshape(h.shape[0], -1)
    return h


class MyGradSide(PeerSide):
    """MyGrad: ``mygrad.nnet`` layers, ``loss.backward()``, the update on ``.data`` by hand
    (MyGrad has no optimiser classes)."""

    name = "mygrad"

    def __init__(self, layers, weights, lr: float, momentum: float):
        super().__init__(layers, weights, lr, momentum)
        import mygrad as mg

        self.mg = mg
        self.model = PeerModel(layers, [mg.Tensor(np.array(w, copy=True)) for w in weights])

    def step(self, x, y) -> float:
        from mygrad.nnet import softmax_crossentropy

        loss = softmax_crossentropy(mygrad_forward(self.model.layers, self.model.weights, x), y)
        loss.backward()
        params = self.model.weights
        sgd_momentum([p.data for p in params], [p.grad for p in params], self.velocity, self.lr, self.momentum)
        return loss.item()

    def logits(self, x):
        with self.mg.no_autodiff:
            return np.asarray(mygrad_forward(self.model.layers, self.model.weights, x))

    def weight_arrays(self):
        return [p.data for p in self.model.weights]


PEER_CLASSES = {"autograd": AutogradSide, "mygrad": MyGradSide}


def make_peer_sides(bench_model, numpy_model, lr: float, momentum: float,
                    names: Sequence[str] = PEER_NAMES):
    """``(sides, notes)``: each peer that can run ``bench_model``, holding a copy of
    ``numpy_model``'s weights, and for each one that cannot, the reason in words."""
    layers = bench_model.layers()
    sides: Dict[str, PeerSide] = {}
    notes: Dict[str, str] = {}
    for name in names:
        if name not in PEER_CLASSES:
            raise ValueError(f"benchmarks: unknown peer {name!r}; choose from {', '.join(PEER_CLASSES)}")
        try:
            __import__(name)
        except ImportError as err:
            notes[name] = f"not installed ({err}); pip install -e \".[peers]\""
            continue
        try:
            sides[name] = PEER_CLASSES[name](layers, copy_weights(layers, numpy_model), lr, momentum)
        except PeerUnavailable as err:
            notes[name] = str(err)
    return sides, notes


@dataclass
class PeerBench:
    """The peers' part of one ``measure`` record: built beside the numpy side (before it
    trains), warmed up and timed in the same rounds, summarised against numpy's epochs.

    ``epochs``: measured epochs per peer; a slow peer can be given fewer than the numpy
    engine (at least one whole epoch), and the record and the table say so.
    """

    bench_model: Any
    numpy_model: Any
    lr: float
    momentum: float
    epochs: int
    sides: Dict[str, PeerSide] = field(init=False)
    notes: Dict[str, str] = field(init=False)
    times: Dict[str, List[float]] = field(init=False)
    losses: Dict[str, List[float]] = field(init=False)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"benchmarks: peer epochs must be at least 1, got {self.epochs}")
        self.sides, self.notes = make_peer_sides(self.bench_model, self.numpy_model, self.lr, self.momentum)
        self.times = {name: [] for name in self.sides}
        self.losses = {name: [] for name in self.sides}

    def warm_up(self, loader: DataLoader, batches: int) -> None:
        for side in self.sides.values():
            side.epoch(loader, 0, batches)

    def timed_epoch(self, loader: DataLoader, epoch: int, settle_s: float) -> str:
        """Time epoch ``epoch`` (1-based) of each peer still measuring; a log fragment."""
        parts = []
        for name, side in self.sides.items():
            if epoch > self.epochs:
                continue
            seconds, loss = side.timed_epoch(loader, epoch, settle_s)
            self.times[name].append(seconds)
            self.losses[name].append(loss)
            parts.append(f"   {name} {seconds:7.3f} s (loss {loss:.4f})")
        return "".join(parts)

    def record(self, numpy_epochs_s: Sequence[float], test, batch_size: int) -> dict:
        """The record's peer keys (docs/performance.md, "Against the numpy autodiff libraries")."""
        numpy_s = statistics.median(numpy_epochs_s)
        peers: Dict[str, Optional[float]] = {name: None for name in PEER_NAMES}
        for name, t in self.times.items():
            peers[name] = statistics.median(t)
        timed = {name: s for name, s in peers.items() if s is not None}
        fastest = min(timed, key=lambda n: timed[n]) if timed else None
        return {
            "peers": peers,
            "peer_notes": dict(self.notes),
            "peer_epochs": {name: len(t) for name, t in self.times.items()},
            "peer_epochs_s": dict(self.times),
            "peer_train_loss": dict(self.losses),
            # numpy's speed-up over each peer, per round (the same epoch of the same data)
            "peer_speedups": {name: [p / n for p, n in zip(t, numpy_epochs_s, strict=False)]
                              for name, t in self.times.items()},
            "peer_accuracy": {name: side.accuracy(test, self.bench_model.flatten, batch_size)
                              for name, side in self.sides.items()},
            "fastest_peer": fastest,
            "numpy_vs_fastest_peer": None if fastest is None else timed[fastest] / numpy_s,
        }


# -- the printed table and targets ---------------------------------------------------------
def peer_table_head(records: Sequence[dict]) -> str:
    """Extra header cells of the headline table when the records have peers ('' otherwise)."""
    if not any("peers" in r for r in records):
        return ""
    return "".join(f" {name} s/epoch |" for name in PEER_NAMES) + " numpy vs fastest peer |"


def peer_table_cells(record: dict, epochs: int) -> str:
    """This record's extra cells: each peer's seconds per epoch (with its epoch count when
    fewer than numpy's ``epochs``, '–' where it cannot run) and numpy's speed-up."""
    if "peers" not in record:
        return ""
    cells = ""
    for name in PEER_NAMES:
        s = record["peers"].get(name)
        n = record["peer_epochs"].get(name, 0)
        note = f" ({n} epoch{'s' if n != 1 else ''})" if s is not None and n < epochs else ""
        cells += " – |" if s is None else f" {s:.3f}{note} |"
    speedup = record["numpy_vs_fastest_peer"]
    cells += " – |" if speedup is None else f" {speedup:.2f}× ({record['fastest_peer']}) |"
    return cells


def peer_target_lines(records: Sequence[dict]) -> List[str]:
    """Target rows: numpy at least :data:`TARGET_PEER_SPEEDUP` × faster than the fastest peer."""
    lines = []
    for r in records:
        if "peers" not in r:
            continue
        speedup = r["numpy_vs_fastest_peer"]
        target = f"numpy ≥ {TARGET_PEER_SPEEDUP:.0f}× faster than the fastest numpy peer"
        if speedup is None:
            measured, verdict = "no peer ran", "–"
        else:
            measured = f"{speedup:.2f}× ({r['fastest_peer']})"
            verdict = "met" if speedup >= TARGET_PEER_SPEEDUP else "missed"
        lines.append(f"| {r['model']} | {r['batch_size']} | {r['threads']} | {target} | {measured} | {verdict} |")
    return lines


def peer_note_lines(records: Sequence[dict]) -> List[str]:
    """One line per peer that could not run a record's model, with the reason."""
    return [f"{r['model']}, batch {r['batch_size']}: {name} not timed: {why}"
            for r in records for name, why in r.get("peer_notes", {}).items()]

