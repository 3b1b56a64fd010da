"""IFT6135 assignment 1's autograded ``solution.py`` class ``NN``, every blank answered by the engine.

The template's ``NN`` keeps its weights in a dict (``W1, b1, ..., W{m}, b{m}``; ``W{l}`` of
shape (h_{l-1}, h_l), ``b{l}`` of shape (1, h_l)), its forward results in a ``cache`` dict
(``Z0`` the input, ``A{l}`` the pre-activation and ``Z{l}`` the activation of layer l) and
its gradients in a ``grads`` dict (``dA{l}, dW{l}, db{l}, dZ{l-1}``).  Here the names and
shapes are the template's; the numbers are the engine's:

=======================  ===================================================  ===============================
blank                    formula                                              engine piece
=======================  ===================================================  ===============================
``initialize_weights``   zero: W = 0; normal: W ~ N(0, 1); glorot:            ``build`` with ``zeros``,
                         W ~ U(−d, d), d = √(6 / (h_{l−1} + h_l)); b = 0      ``normal(std=1)``, ``glorot_uniform``
``relu/sigmoid/tanh``    max(x, 0); 1/(1 + e^{−x}); tanh x                    ``ReLU/Sigmoid/Tanh.forward``
  ``grad=True``          [x > 0]; σ(1 − σ); 1 − tanh² x                       ``relu_grad``, ``*_grad_from_output``
``softmax``              e^{x − max x} / Σ e^{x − max x}, per row              ``nn.activations.softmax``
``forward``              A_l = Z_{l−1} W_l + b_l, Z_l = φ(A_l), Z_m = softmax  ``linear_forward``
``backward``             dA_m = (Z_m − Y)/n; dW_l = Z_{l−1}ᵀ dA_l,             ``SoftmaxCrossEntropy.backward``,
                         db_l = Σ_n dA_l, dZ_{l−1} = dA_l W_lᵀ,               ``linear_backward``
                         dA_{l−1} = dZ_{l−1} ⊙ φ'(A_{l−1})
``loss``                 −(1/n) Σ_n Σ_c Y_nc log clip(P_nc, ε, 1 − ε)         ``CrossEntropy(reduction="mean")``
``update``               θ ← θ − lr · dθ                                      ``SGD.step``'s rule (no momentum)
=======================  ===================================================  ===============================

The weights dict holds *views* of the engine model's parameters (``W{l}`` is
``model[2l−2].weight.data.T``), so ``update`` moves the engine's weights and ``nn.model``
can be handed to ``tinygrad_mnist.train.evaluate`` or saved as any engine model.  The
default ``hidden_dims=(512, 512)`` gives 784-512-512-10 = 669,706 parameters, inside the
assignment's [0.5M, 1M]; the other defaults (lr 7e-4, batch 500, ε 1e-6) are the template's.

Usage::

    from tinygrad_mnist.data import load_mnist
    from experiments.course.ift6135 import NN, arrays

    train, test = load_mnist()
    nn = NN(train=arrays(train.first(5000)), test=arrays(test), lr=0.1, batch_size=100, seed=0)
    logs = nn.train_loop(n_epochs=2)          # initialise, then forward/backward/update per batch
    print(logs["train_accuracy"], nn.evaluate())
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from tinygrad_mnist.data import Dataset
from tinygrad_mnist.models import MLPSpec, build
from tinygrad_mnist.nn import activations
from tinygrad_mnist.nn.linear import Linear, linear_backward, linear_forward
from tinygrad_mnist.nn.losses import CrossEntropy, SoftmaxCrossEntropy, one_hot
from tinygrad_mnist.nn.module import Sequential, resolve_dtype

#: The template's ``activation_str`` values.
ACTIVATIONS = ("relu", "sigmoid", "tanh")
#: The assignment's initialisations: template name → (engine initialiser, its arguments).
INIT_METHODS = {"zero": ("zeros", {}), "normal": ("normal", {"std": 1.0}), "glorot": ("glorot_uniform", {})}


def arrays(data: Dataset, dtype=np.float64) -> Tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a Dataset: X (n, H·W) = images × 1/255 in ``dtype`` (the DataLoader's
    conversion, so both see the same numbers), y (n,) integer labels."""
    x = np.multiply(data.images, float(1 / 255), dtype=resolve_dtype(dtype, "arrays"))
    return x.reshape(len(data), -1), np.asarray(data.labels)


class NN:
    """The template's MLP ``784 → hidden_dims → n_classes`` over engine parameters.

    Parameters
    ----------
    hidden_dims : tuple of int, default=(512, 512)
    n_classes : int, default=10
    epsilon : float, default=1e-6
        ``loss`` clips probabilities into [ε, 1 − ε].
    lr : float, default=7e-4
    batch_size : int, default=500
    seed : int, default=0
        Seeds the one generator every weight is drawn from (no global RNG).
    activation : {"relu", "sigmoid", "tanh"}, default="relu"
    init_method : {"glorot", "normal", "zero"}, default="glorot"
    dtype : float64 or float32, default=float64
    train, valid, test : tuple (X, y), optional
        X of shape (n, 784) in ``dtype``, y of shape (n,) integer labels; see :func:`arrays`.
    """

    def __init__(self, hidden_dims=(512, 512), n_classes: int = 10, epsilon: float = 1e-6, lr: float = 7e-4,
                 batch_size: int = 500, seed: int = 0, activation: str = "relu", init_method: str = "glorot",
                 dtype=np.float64, train=None, valid=None, test=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"NN: unknown activation {activation!r}; choose one of {ACTIVATIONS}")
        if init_method not in INIT_METHODS:
            raise ValueError(f"NN: unknown init_method {init_method!r}; choose one of {tuple(INIT_METHODS)}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.number)) or not 0 < lr < np.inf:
            raise ValueError(f"NN: lr must be a positive finite number, got {lr!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"NN: batch_size must be a positive integer, got {batch_size!r}")
        if not 0 < epsilon < 0.5:
            raise ValueError(f"NN: epsilon must lie in (0, 0.5), got {epsilon!r}")
        self.hidden_dims, self.n_hidden = tuple(int(h) for h in hidden_dims), len(hidden_dims)
        self.n_classes, self.epsilon, self.lr, self.batch_size = int(n_classes), float(epsilon), float(lr), batch_size
        self.seed, self.activation_str, self.init_method = seed, activation, init_method
        self.dtype = resolve_dtype(dtype, "NN")
        self.train, self.valid, self.test = train, valid, test
        self.train_logs: Dict[str, list] = {"train_accuracy": [], "validation_accuracy": [], "train_loss": [],
                                            "validation_loss": []}
        self._act = {"relu": activations.ReLU(), "sigmoid": activations.Sigmoid(), "tanh": activations.Tanh()}
        self.model: Optional[Sequential] = None

    def initialize_weights(self, dims) -> None:
        """Blank 1: ``dims = [h_0, h_{m}]`` (input size, classes); builds ``model`` and ``weights``.

        Weights by ``init_method``: "zero" W = 0 (``init.zeros``), "normal" W ~ N(0, 1)
        (``init.normal``, std 1), "glorot" W ~ U(−d, d) with d = √(6 / (h_{l−1} + h_l))
        (``init.glorot_uniform``); biases 0.  ``build`` draws layer by layer from
        ``np.random.default_rng(seed)``.  ``weights["W{l}"]`` (h_{l−1}, h_l) and
        ``weights["b{l}"]`` (1, h_l) are views of the engine's ``Linear`` parameters.
        """
        sizes = (int(dims[0]), *self.hidden_dims, int(dims[1]))
        init, init_kwargs = INIT_METHODS[self.init_method]
        spec = MLPSpec(sizes, self.activation_str, "logits", init, init_kwargs)
        self.model = build(spec.layers(), seed=self.seed, dtype=self.dtype, init=init, init_kwargs=init_kwargs)
        self.linears = [m for m in self.model if isinstance(m, Linear)]
        self.weights = {}
        for layer_n, lin in enumerate(self.linears, 1):
            self.weights[f"W{layer_n}"] = lin.weight.data.T
            assert lin.bias is not None  # build's Linear layers have biases
            self.weights[f"b{layer_n}"] = lin.bias.data[None, :]

    # -- blank 2: the activations; grad=True gives the derivative at x -------------------
    def relu(self, x: np.ndarray, grad: bool = False) -> np.ndarray:
        """max(x, 0) (``ReLU.forward``); derivative [x > 0] (``relu_grad``, 0 at x = 0)."""
        return activations.relu_grad(x) if grad else self._act["relu"].forward(x)

    def sigmoid(self, x: np.ndarray, grad: bool = False) -> np.ndarray:
        """σ(x) = 1/(1 + e^{−x}) (``Sigmoid.forward``); derivative σ(1 − σ) (``sigmoid_grad_from_output``)."""
        y = self._act["sigmoid"].forward(x)
        return activations.sigmoid_grad_from_output(y) if grad else y

    def tanh(self, x: np.ndarray, grad: bool = False) -> np.ndarray:
        """tanh x (``Tanh.forward``); derivative 1 − tanh² x (``tanh_grad_from_output``)."""
        y = self._act["tanh"].forward(x)
        return activations.tanh_grad_from_output(y) if grad else y

    def activation(self, input: np.ndarray, grad: bool = False) -> np.ndarray:  # noqa: A002 (template's name)
        """The activation (or its derivative) named by ``activation_str``; ValueError for another name."""
        if self.activation_str not in ACTIVATIONS:
            raise ValueError(f"NN.activation: unknown activation_str {self.activation_str!r}; "
                             f"choose one of {ACTIVATIONS}")
        return getattr(self, self.activation_str)(input, grad=grad)

    def softmax(self, x: np.ndarray) -> np.ndarray:
        """Row-wise softmax, shifted by the row max (softmax(x − c) = softmax(x)): ``nn.activations.softmax``."""
        return activations.softmax(x)

    # -- blanks 3-6 -------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Blank 3: ``cache`` with Z0 = x (n, h_0) and, for l = 1..m, A_l = Z_{l−1} W_l + b_l
        (``linear_forward``, as ``Linear.forward``) and Z_l = activation(A_l) (n, h_l); the
        output layer's Z_m = softmax(A_m) holds the class probabilities."""
        if self.model is None:
            raise ValueError("NN.forward: call initialize_weights(dims) first")
        n_in = self.linears[0].in_features
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != n_in:
            raise ValueError(f"NN.forward: expected x of shape (n, {n_in}), got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(f"NN.forward: expected {self.dtype} input (the model's dtype), got {x.dtype}")
        cache = {"Z0": x}
        for layer_n, lin in enumerate(self.linears, 1):
            assert lin.bias is not None  # build's Linear layers have biases
            a = linear_forward(cache[f"Z{layer_n - 1}"], lin.weight.data, lin.bias.data)
            cache[f"A{layer_n}"] = a
            cache[f"Z{layer_n}"] = self.softmax(a) if layer_n == len(self.linears) else self.activation(a)
        return cache

    def backward(self, cache: Dict[str, np.ndarray], labels: np.ndarray) -> Dict[str, np.ndarray]:
        """Blank 4: gradients of the mean cross-entropy, keys dA{l}, dW{l}, db{l} and dZ{l−1} (l > 1).

        ``labels`` (n, C) one-hot (or (n,) integers).  dA_m = (Z_m − Y)/n is
        ``SoftmaxCrossEntropy(reduction="mean").backward`` on the logits A_m (the engine's
        fused loss recomputes the probabilities in log space from A_m); then, for l = m..1,
        ``linear_backward(Z_{l−1}, W, dA_l)`` gives dW_l = Z_{l−1}ᵀ dA_l (h_{l−1}, h_l),
        db_l = Σ_n dA_l (1, h_l) and dZ_{l−1} = dA_l W_lᵀ, and dA_{l−1} = dZ_{l−1} ⊙
        activation'(A_{l−1}).  These are the products ``Linear/ReLU/...backward`` compute.
        """
        n_layers = self.n_hidden + 1
        ce = SoftmaxCrossEntropy(reduction="mean")
        ce.forward(cache[f"A{n_layers}"], labels)
        grads = {f"dA{n_layers}": ce.backward()}
        for layer_n in range(n_layers, 0, -1):
            lin = self.linears[layer_n - 1]
            dz, dw, db = linear_backward(cache[f"Z{layer_n - 1}"], lin.weight.data, grads[f"dA{layer_n}"],
                                         input_grad=layer_n > 1)
            grads[f"dW{layer_n}"], grads[f"db{layer_n}"] = dw.T, db[None, :]
            if layer_n > 1:
                assert dz is not None  # input_grad=True above
                grads[f"dZ{layer_n - 1}"] = dz
                grads[f"dA{layer_n - 1}"] = dz * self.activation(cache[f"A{layer_n - 1}"], grad=True)
        return grads

    def update(self, grads: Dict[str, np.ndarray]) -> None:
        """Blank 6: θ ← θ − lr · dθ for every W{l}, b{l}, in place (the engine's ``SGD.step``
        rule without momentum, ``p.data -= lr * p.grad``)."""
        for layer_n in range(1, self.n_hidden + 2):
            for name in (f"W{layer_n}", f"b{layer_n}"):
                self.weights[name] -= self.lr * grads[f"d{name}"]

    def one_hot(self, y: np.ndarray, n_classes: Optional[int] = None) -> np.ndarray:
        """Rows e_{y_i}, shape (n, C), in the model's dtype (``nn.losses.one_hot``)."""
        return one_hot(y, n_classes or self.n_classes, dtype=self.dtype)

    def loss(self, prediction: np.ndarray, labels: np.ndarray) -> float:
        """Blank 5: −(1/n) Σ_n Σ_c Y_nc log P_nc with P clipped into [ε, 1 − ε]:
        ``CrossEntropy(reduction="mean")`` on the clipped copy (the template clips in place;
        here the caller's array is left as it was).  prediction (n, C), labels (n, C) or (n,)."""
        clipped = np.clip(prediction, self.epsilon, 1 - self.epsilon)
        return CrossEntropy(reduction="mean", eps=self.epsilon).forward(clipped, labels)

    # -- the template's training and evaluation --------------------------------------------
    def compute_loss_and_accuracy(self, X: np.ndarray, y: np.ndarray):
        """``(mean loss, accuracy, predicted classes)`` of the current weights on (X, y)."""
        probs = self.forward(X)[f"Z{self.n_hidden + 1}"]
        predictions = np.argmax(probs, axis=1)
        return self.loss(probs, self.one_hot(y)), float(np.mean(predictions == y)), predictions

    def train_loop(self, n_epochs: int) -> Dict[str, list]:
        """Blank 7: initialise, then per epoch, batch by batch in order (no shuffling, as the
        template): ``cache = forward(X_b)``, ``grads = backward(cache, Y_b)``, ``update(grads)``;
        after each epoch log loss and accuracy on ``train`` (and ``valid`` when given)."""
        if self.train is None:
            raise ValueError("NN.train_loop: no training data; pass NN(train=(X, y))")
        X_train, y_train = self.train
        y_onehot = self.one_hot(y_train)
        self.initialize_weights([X_train.shape[1], y_onehot.shape[1]])
        n_batches = int(np.ceil(X_train.shape[0] / self.batch_size))
        for _ in range(int(n_epochs)):
            for batch in range(n_batches):
                rows = slice(self.batch_size * batch, self.batch_size * (batch + 1))
                self.update(self.backward(self.forward(X_train[rows]), y_onehot[rows]))
            splits = [("train", self.train), ("validation", self.valid)]
            for split, data in splits:
                if data is not None:
                    loss, acc, _ = self.compute_loss_and_accuracy(*data)
                    self.train_logs[f"{split}_loss"].append(loss)
                    self.train_logs[f"{split}_accuracy"].append(acc)
        return self.train_logs

    def evaluate(self) -> Tuple[float, float]:
        """``(mean loss, accuracy)`` on ``test``."""
        if self.test is None:
            raise ValueError("NN.evaluate: no test data; pass NN(test=(X, y))")
        loss, acc, _ = self.compute_loss_and_accuracy(*self.test)
        return loss, acc

    def num_parameters(self) -> int:
        """Σ_l (h_{l−1} + 1) h_l, read off the engine model."""
        if self.model is None:
            raise ValueError("NN.num_parameters: call initialize_weights(dims) first")
        return self.model.num_parameters()
