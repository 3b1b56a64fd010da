"""The MLP-from-scratch project's ``template.py`` class, every blank answered by the engine.

The template trains a 784-64-10 network, ŷ = softmax(W2 σ(W1 x + b1) + b2), by calling, per
batch of 256 and with learning rate 0.001, ``reset_grad()``, ``forward(x)``,
``update_grad()`` and ``update_params(lr)`` in that order.  :class:`TemplateMLP` keeps those
names; each method is a few engine calls, and its docstring gives the formula and the engine
piece that computes it:

=====================  ============================================  ==========================
template blank         formula                                       engine piece
=====================  ============================================  ==========================
initialise (2.2)       W ~ N(0, 0.1²), b = 0                          ``build_mlp(CLASSIC_MLP)``
``forward`` (2.1)      a1 = W1 x + b1, f1 = σ(a1), a2 = W2 f1 + b2,    ``Linear.forward``,
                       ŷ = softmax(a2)                                ``Sigmoid``, ``Softmax``
``update_grad`` (2.3)  ∂L/∂a2 = ŷ − y; W2_grad += (∂L/∂a2)ᵀ f1, ...   ``CrossEntropy``,
                                                                      ``*.backward``
``reset_grad``         W*_grad = b*_grad = 0                          ``Module.zero_grad``
``update_params``      θ ← θ − lr · θ_grad                            ``SGD.step``
=====================  ============================================  ==========================

These are the modules, seeds and loss (cross-entropy *summed* over the batch) that
``tinygrad-mnist train`` builds by default, and :func:`train` draws the batches the way its
``fit`` does, so the two end with identical weights (``tests/test_course_adapters.py``).

Usage::

    from tinygrad_mnist.data import load_mnist
    from experiments.course.template_mlp import TemplateMLP, train

    train_set, test_set = load_mnist()
    net = TemplateMLP(seed=0)
    train(net, train_set.first(2000), epochs=2)       # batch 256, lr 0.001
    print(net.accuracy(test_set), net.W1.shape)        # W1: (64, 784), one template per row

    python -m experiments.course.template_mlp --train-size 2000 --epochs 2
"""

from __future__ import annotations

import argparse
from typing import Callable, List, Optional, Sequence

import numpy as np

from tinygrad_mnist.data import DataLoader, Dataset, load_mnist
from tinygrad_mnist.metrics import predictions
from tinygrad_mnist.models import MLPSpec, build_mlp
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.losses import CrossEntropy
from tinygrad_mnist.optim import SGD


class TemplateMLP:
    """The template's MLP ``input_size → hidden_size → output_size`` over engine modules.

    Parameters
    ----------
    input_size, hidden_size, output_size : int, default=784, 64, 10
    seed : int, default=0
        Seeds the one generator every weight is drawn from (as ``tinygrad-mnist train --seed``).
    dtype : float32 or float64, default=float32

    Attributes
    ----------
    model : Sequential
        ``Linear(784, 64), Sigmoid(), Linear(64, 10), Softmax()``: the engine's network.
    x, a1, f1, a2, y_hat : ndarray
        The last ``forward``'s input and intermediate results, shapes (n, 784), (n, 64),
        (n, 64), (n, 10), (n, 10): the template asks to store them for back-propagation.
    y : ndarray of shape (n,) or None
        The labels ``update_grad`` uses when called without any.
    loss_value : float
        The summed cross-entropy of the last ``update_grad`` batch.
    """

    def __init__(self, input_size: int = 784, hidden_size: int = 64, output_size: int = 10,
                 seed: int = 0, dtype=np.float32):
        # 2.2 Initialise: W ~ N(0, 0.1²), b = 0, drawn layer by layer from default_rng(seed),
        # the spec and builder of `tinygrad-mnist train` (CLASSIC_MLP at the default sizes).
        spec = MLPSpec((input_size, hidden_size, output_size), "sigmoid", "softmax", "normal", {"std": 0.1})
        self.model = build_mlp(spec, seed=seed, dtype=dtype, needs_input_grad=False)
        self.linear1, self.sigmoid, self.linear2, self.softmax = self.model
        self.loss = CrossEntropy(reduction="sum")  # L = −Σ_n Σ_c y_nc log ŷ_nc, summed over the batch
        self.optimizer = SGD(self.model.parameters(), lr=0.001)
        assert isinstance(self.linear1, Linear)  # build_mlp's first layer
        self.dtype = self.linear1.weight.dtype
        self.x: Optional[np.ndarray] = None
        self.a1: Optional[np.ndarray] = None
        self.f1: Optional[np.ndarray] = None
        self.a2: Optional[np.ndarray] = None
        self.y_hat: Optional[np.ndarray] = None
        self.y: Optional[np.ndarray] = None
        self.loss_value = float("nan")

    # -- the parameters and their gradients under the template's names (views, not copies) --
    W1 = property(lambda self: self.linear1.weight.data, doc="(hidden, input) = ``model[0].weight.data``.")
    b1 = property(lambda self: self.linear1.bias.data, doc="(hidden,) = ``model[0].bias.data``.")
    W2 = property(lambda self: self.linear2.weight.data, doc="(output, hidden) = ``model[2].weight.data``.")
    b2 = property(lambda self: self.linear2.bias.data, doc="(output,) = ``model[2].bias.data``.")
    W1_grad = property(lambda self: self.linear1.weight.grad, doc="∂L/∂W1, (hidden, input).")
    b1_grad = property(lambda self: self.linear1.bias.grad, doc="∂L/∂b1, (hidden,).")
    W2_grad = property(lambda self: self.linear2.weight.grad, doc="∂L/∂W2, (output, hidden).")
    b2_grad = property(lambda self: self.linear2.bias.grad, doc="∂L/∂b2, (output,).")

    def reset_grad(self) -> None:
        """W1_grad = b1_grad = W2_grad = b2_grad = 0: ``Module.zero_grad`` on ``model``."""
        self.model.zero_grad()

    def forward(self, x: np.ndarray, y: Optional[np.ndarray] = None) -> np.ndarray:
        """2.1: ŷ = softmax(W2 σ(W1 x + b1) + b2) for a batch, storing every intermediate.

        ==========================  =====================================
        a1 = x W1ᵀ + b1   (n, 64)    ``Linear.forward`` (``linear_forward``)
        f1 = σ(a1)        (n, 64)    ``Sigmoid.forward`` (``sigmoid``)
        a2 = f1 W2ᵀ + b2  (n, 10)    ``Linear.forward``
        ŷ = softmax(a2)   (n, 10)    ``Softmax.forward`` (``softmax``)
        ==========================  =====================================

        Parameters
        ----------
        x : ndarray of shape (n, input_size), the model's dtype
            One image per row (pixels scaled to [0, 1]).
        y : ndarray of shape (n,), optional
            Integer labels kept for a following ``update_grad()`` called without labels.

        Returns
        -------
        ndarray of shape (n, output_size): ŷ, each row a probability distribution.
        """
        self.x = x
        self.a1 = self.linear1.forward(x)
        self.f1 = self.sigmoid.forward(self.a1)
        self.a2 = self.linear2.forward(self.f1)
        self.y_hat = self.softmax.forward(self.a2)
        self.y = None if y is None else np.asarray(y)
        return self.y_hat

    def update_grad(self, y: Optional[np.ndarray] = None) -> float:
        """2.3.2: back-propagate the batch's loss and *add* its gradients to W*_grad, b*_grad.

        With g2 = ∂L/∂a2 and g1 = ∂L/∂a1 (one row per example of the batch)::

            L  = −Σ_n Σ_c y_nc log ŷ_nc            CrossEntropy(reduction="sum").forward
            g2 = ŷ − y                   (n, 10)   CrossEntropy.backward = −y/ŷ, then Softmax.backward:
                                                   ŷ ⊙ (−y/ŷ − Σ_c(−y_c)) = ŷ − y for one-hot y
            W2_grad += g2ᵀ f1            (10, 64)  Linear.backward (model[2]); b2_grad += Σ_n g2
            ∂L/∂f1 = g2 W2               (n, 64)   returned by the same Linear.backward
            g1 = ∂L/∂f1 ⊙ f1 (1 − f1)    (n, 64)   Sigmoid.backward
            W1_grad += g1ᵀ x             (64, 784) Linear.backward (model[0]); b1_grad += Σ_n g1

        The sums over the batch are the matrix products: ∂L/∂W2 = Σ_n g2_nᵀ f1_n = g2ᵀ f1.
        This is the two-step path (loss on probabilities, then the softmax Jacobian) that
        ``tinygrad-mnist train`` takes with its default ``--output softmax``, so the float32
        roundings are the CLI's too.

        Parameters
        ----------
        y : ndarray of shape (n,), optional
            Integer labels of the batch last passed to ``forward``; defaults to the ``y`` given
            to ``forward`` (the assignment calls ``update_grad()`` with no argument).

        Returns
        -------
        float: the batch's summed loss L (also kept in ``loss_value``).
        """
        if self.y_hat is None:
            raise ValueError("TemplateMLP.update_grad: call forward(x) first")
        y = self.y if y is None else np.asarray(y)
        if y is None:
            raise ValueError("TemplateMLP.update_grad: no labels; pass update_grad(y) or forward(x, y)")
        if y.shape != (self.y_hat.shape[0],):
            raise ValueError(f"TemplateMLP.update_grad: expected {self.y_hat.shape[0]} integer labels of shape "
                             f"({self.y_hat.shape[0]},) for the last forward batch, got shape {y.shape}")
        self.loss_value = self.loss.forward(self.y_hat, y)
        g2 = self.softmax.backward(self.loss.backward())  # ∂L/∂a2 = ŷ − y
        g1 = self.sigmoid.backward(self.linear2.backward(g2))  # (g2 W2) ⊙ f1(1 − f1); W2_grad, b2_grad +=
        self.linear1.backward(g1)  # W1_grad += g1ᵀ x, b1_grad += Σ g1 (no ∂L/∂x: the input is data)
        return self.loss_value

    def update_params(self, lr: float) -> None:
        """2.4: θ ← θ − lr · θ_grad for θ in W1, b1, W2, b2: ``SGD.step`` (no momentum).

        Raises ``ValueError`` unless ``lr`` is a positive finite number.
        """
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.number)) or not 0 < lr < np.inf:
            raise ValueError(f"TemplateMLP.update_params: lr must be a positive finite number, got {lr!r}")
        self.optimizer.lr = float(lr)
        self.optimizer.step()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted classes argmax_c ŷ_c, shape (n,); does not touch the stored intermediates."""
        return predictions(self.model.forward(x))

    def accuracy(self, data: Dataset, batch_size: int = 1000) -> float:
        """Fraction of ``data`` classified correctly, in batches of ``batch_size`` (as ``evaluate``)."""
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, dtype=self.dtype)
        correct = sum(int((self.predict(x) == y).sum()) for x, y in loader)
        return correct / len(data)


def train(net: TemplateMLP, data: Dataset, epochs: int = 1, batch_size: int = 256, lr: float = 0.001,
          seed: int = 0, log: Optional[Callable[[str], None]] = None) -> List[float]:
    """2.4: the prescribed loop over shuffled mini-batches, ``epochs`` times::

        for x, y in batches:
            net.reset_grad(); net.forward(x); net.update_grad(y); net.update_params(lr)

    Epoch ``e`` (from 0) visits ``data`` in the order ``default_rng([seed, e]).permutation(n)``
    through the engine's ``DataLoader`` (pixels × 1/255 in the model's dtype), the order
    ``fit`` and ``tinygrad-mnist train --seed`` use.

    Parameters
    ----------
    net : TemplateMLP
    data : Dataset
        uint8 images (n, H, W) with H·W = the net's input size, integer labels (n,).
    epochs : int, default=1
    batch_size : int, default=256
    lr : float, default=0.001
        Applies to gradients summed over the batch.
    seed : int, default=0
    log : callable, optional
        Receives one line per epoch.

    Returns
    -------
    list of float: per epoch, the mean over its batches of L / batch size (``History.train_loss``).
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"train: expected a tinygrad_mnist.data.Dataset, got {type(data).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"train: epochs must be a positive integer, got {epochs!r}")
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, seed=seed, dtype=net.dtype)
    means = []
    for epoch in range(int(epochs)):
        loader.set_epoch(epoch)
        batch_means = []
        for x, y in loader:
            net.reset_grad()
            net.forward(x)
            batch_means.append(net.update_grad(y) / len(y))
            net.update_params(lr)
        means.append(float(np.mean(batch_means)))
        if log is not None:
            log(f"epoch {epoch + 1}: mean training loss {means[-1]:.4f}")
    return means


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Train the template's network on the first ``--train-size`` MNIST images; print test accuracy."""
    p = argparse.ArgumentParser(prog="python -m experiments.course.template_mlp", description=main.__doc__)
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: $TINYGRAD_MNIST_DATA, cache)")
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train_set, test_set = load_mnist(data_dir=args.data_dir)
    net = TemplateMLP(seed=args.seed)
    train(net, train_set.first(args.train_size), epochs=args.epochs, seed=args.seed, log=print)
    print(f"test accuracy {100 * net.accuracy(test_set):.2f}%")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
