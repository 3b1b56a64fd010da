"""One training epoch and one accuracy pass on each side, written the same way.

Both sides take their batches from one ``tinygrad_mnist.data.DataLoader``
(``set_epoch(e)`` replays epoch ``e``, so both see the same order), both train with
softmax cross-entropy (mean over the batch) and SGD with momentum, and each side's time
includes turning the uint8 batch into floats (torch: plus ``torch.from_numpy``, a view).
torch is imported only by the torch functions, so a numpy-only process never loads it.
"""

from __future__ import annotations

import time
from typing import Any, Dict

import numpy as np

from tinygrad_mnist import SGD, SoftmaxCrossEntropy
from tinygrad_mnist.data import DataLoader, Dataset
from tinygrad_mnist.optim import Optimizer


class Side:
    """What both sides share: an epoch is ``step`` over the loader's batches."""

    name: str
    model: Any

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One training step on the batch ``(x, y)``; the batch loss (each side defines it)."""
        raise NotImplementedError

    def accuracy(self, dataset: Dataset, flatten: bool, batch_size: int = 1000) -> float:
        """Share of ``dataset`` classified correctly (each side defines it)."""
        raise NotImplementedError

    def timed_epoch(self, loader: DataLoader, epoch: int, settle_s: float) -> tuple:
        """Wait ``settle_s`` seconds (untimed), then train epoch ``epoch``:
        ``(seconds, mean loss)``.

        The wait lets the worker threads of the side timed before go to sleep. OpenBLAS's
        threads spin for about 0.1 s after their last product (torch's OpenMP threads
        briefly too); timed at once, the next side shares the two cores with them. Small
        MLP at batch 256 on 10,240 images (``python -m benchmarks --models classic-mlp
        --batch-sizes 256 --train-size 10240 --epochs 5 --no-memory --settle S``): torch
        0.136-0.144 s per epoch with ``S = 0``, 0.058-0.060 s with 0.3; numpy 0.050-0.057 s
        either way (docs/performance.md).
        """
        if settle_s > 0:
            time.sleep(settle_s)
        t0 = time.perf_counter()
        loss = self.epoch(loader, epoch)
        return time.perf_counter() - t0, loss

    def epoch(self, loader: DataLoader, epoch: int, max_batches: int = -1) -> float:
        """Train epoch ``epoch`` of ``loader`` (its first ``max_batches`` when ≥ 0); mean loss."""
        self.model.train()
        loader.set_epoch(epoch)
        total, n = 0.0, 0
        for b, (x, y) in enumerate(loader):
            if b == max_batches:
                break
            total += self.step(x, y)
            n += 1
        return total / max(n, 1)


class NumpySide(Side):
    """A numpy model with its loss and optimiser."""

    name = "numpy"

    def __init__(self, model, lr: float, momentum: float):
        self.model, self.loss = model, SoftmaxCrossEntropy()
        self.opt: Optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)

    def step(self, x, y) -> float:
        """One SGD step on the batch (x, y); returns the batch loss."""
        self.opt.zero_grad()
        value = self.loss.forward(self.model.forward(x), y)
        self.model.backward(self.loss.backward())
        self.opt.step()
        return value

    def accuracy(self, dataset, flatten: bool, batch_size: int = 1000) -> float:
        """Share of ``dataset`` classified correctly (evaluation mode, in batches)."""
        self.model.eval()
        correct = 0
        for x, y in DataLoader(dataset, batch_size, shuffle=False, flatten=flatten):
            correct += int((self.model.forward(x).argmax(axis=1) == y).sum())
        self.model.train()
        return correct / len(dataset)


class TorchSide(Side):
    """The torch twin with ``CrossEntropyLoss`` and ``torch.optim.SGD``."""

    name = "torch"

    def __init__(self, model, lr: float, momentum: float):
        import torch

        self.torch = torch
        self.model, self.loss = model, torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def step(self, x, y) -> float:
        self.opt.zero_grad(set_to_none=True)
        value = self.loss(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        value.backward()
        self.opt.step()
        return value.item()

    def accuracy(self, dataset, flatten: bool, batch_size: int = 1000) -> float:
        torch = self.torch
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in DataLoader(dataset, batch_size, shuffle=False, flatten=flatten):
                correct += int((self.model(torch.from_numpy(x)).argmax(dim=1).numpy() == y).sum())
        self.model.train()
        return correct / len(dataset)


def make_sides(bench_model, seed: int, lr: float, momentum: float, which=("numpy", "torch")):
    """The numpy side and/or its torch twin with equal initial weights."""
    np_model = bench_model.build_numpy(seed=seed)
    sides: Dict[str, Side] = {}
    if "numpy" in which:
        sides["numpy"] = NumpySide(np_model, lr, momentum)
    if "torch" in which:
        sides["torch"] = TorchSide(bench_model.build_torch(np_model), lr, momentum)
    return sides


def check_same_start(sides, loader: DataLoader) -> float:
    """Largest |numpy logit - torch logit| on the first batch (both in evaluation mode)."""
    import torch

    x, _ = next(iter(DataLoader(loader.dataset, loader.batch_size, shuffle=False, flatten=loader.flatten)))
    sides["numpy"].model.eval()
    sides["torch"].model.eval()
    with torch.no_grad():
        diff = np.abs(sides["numpy"].model.forward(x) - sides["torch"].model(torch.from_numpy(x)).numpy()).max()
    sides["numpy"].model.train()
    sides["torch"].model.train()
    return float(diff)
