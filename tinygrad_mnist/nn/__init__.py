"""The module contract and every layer: ``forward``, ``backward`` (accumulating parameter
gradients) and an explicit per-example ``jacobian``.

==================  =====================================================================
file                what it holds
==================  =====================================================================
module.py           Parameter, Module, Sequential; re-exports checks.py and conventions.py
checks.py           input checks (dtype, shape, NaN/inf, grad_out shape, forward before backward)
conventions.py      float32/float64 dtypes and explicit generators (resolve_dtype, resolve_rng)
linear.py           Linear
reshape.py          Identity, Flatten
activations.py      Sigmoid, Tanh, ReLU, Softmax
losses.py           SoftmaxCrossEntropy, CrossEntropy, MSELoss
image.py            helpers of the image layers (pairs, windows, batch-last layout)
conv.py             Conv2d (im2col + one GEMM)
pool.py             MaxPool2d, AvgPool2d
batchnorm.py        BatchNorm1d, BatchNorm2d
regularization.py   Dropout, L1/L2 penalties
residual.py         Residual (block + skip)
init.py             weight initialisers
==================  =====================================================================
"""

from .activations import ACTIVATION_ALIASES, ACTIVATIONS, ReLU, Sigmoid, Softmax, Tanh, activation_by_name
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .init import INITIALIZER_ALIASES, INITIALIZERS, initializer
from .linear import Linear
from .losses import LOSS_ALIASES, LOSSES, CrossEntropy, MSELoss, SoftmaxCrossEntropy, loss_by_name
from .module import FLOAT_DTYPES, Module, NonFiniteError, Parameter, Sequential, check_rng, resolve_dtype, resolve_rng
from .pool import AvgPool2d, MaxPool2d
from .regularization import Dropout, L1Penalty, L2Penalty, Penalty
from .reshape import Flatten, Identity
from .residual import Residual

__all__ = [
    "Module", "Parameter", "Sequential", "FLOAT_DTYPES", "resolve_dtype", "resolve_rng", "check_rng",
    "NonFiniteError",
    "Linear", "Identity", "Flatten", "Conv2d", "MaxPool2d", "AvgPool2d",
    "Dropout", "BatchNorm1d", "BatchNorm2d", "Residual", "Penalty", "L1Penalty", "L2Penalty",
    "Sigmoid", "ReLU", "Tanh", "Softmax", "activation_by_name", "ACTIVATIONS", "ACTIVATION_ALIASES",
    "SoftmaxCrossEntropy", "CrossEntropy", "MSELoss", "loss_by_name", "LOSSES", "LOSS_ALIASES",
    "initializer", "INITIALIZERS", "INITIALIZER_ALIASES",
]
