"""tinygrad_mnist: a from-scratch NumPy neural-network engine for MNIST-style classification.

The core imports numpy only; matplotlib, scikit-learn and tqdm are imported where used.

>>> import numpy as np
>>> from tinygrad_mnist import Linear, ReLU, Sequential, SoftmaxCrossEntropy, SGD
>>> model = Sequential(Linear(784, 64, seed=0), ReLU(), Linear(64, 10, seed=1))
>>> loss, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1)
"""

__version__ = "0.1.0"

from .activations import ReLU, Sigmoid, Softmax, Tanh, activation
from .batchnorm import BatchNorm1d, BatchNorm2d
from .cnn import build, build_course_cnn
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .init import initializer
from .layers import Flatten, Identity, Linear
from .losses import CrossEntropy, MSELoss, SoftmaxCrossEntropy, loss_by_name
from .models import CLASSIC_MLP, MLPSpec, build_mlp, mlp
from .module import Module, Parameter, Sequential
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, optimizer_by_name
from .regularization import Dropout, L1Penalty, L2Penalty, Penalty
from .residual import Residual
from .schedules import CosineAnnealingLR, LinearWarmup, StepLR, schedule_by_name

__all__ = [
    "__version__",
    "Module", "Parameter", "Sequential",
    "Linear", "Identity", "Flatten", "Conv2d", "MaxPool2d", "AvgPool2d",
    "Dropout", "BatchNorm1d", "BatchNorm2d", "Residual",
    "Sigmoid", "ReLU", "Tanh", "Softmax", "activation",
    "SoftmaxCrossEntropy", "CrossEntropy", "MSELoss", "loss_by_name",
    "initializer",
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Optimizer", "optimizer_by_name",
    "StepLR", "CosineAnnealingLR", "LinearWarmup", "schedule_by_name",
    "Penalty", "L1Penalty", "L2Penalty",
    "MLPSpec", "CLASSIC_MLP", "build_mlp", "mlp", "build", "build_course_cnn",
]
