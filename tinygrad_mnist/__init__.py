"""tinygrad_mnist: a from-scratch NumPy neural-network engine for MNIST-style classification.

The core imports numpy only; matplotlib, scikit-learn and tqdm are imported where used.

==============  ==================================================================
package/module  what it holds
==============  ==================================================================
nn/             the module contract and every layer, loss and initialiser
optim/          optimisers and learning-rate schedules
data/           IDX format, MNIST, other datasets, the DataLoader
check/          gradient checking: central differences, the literal chain rule
models.py       layer descriptions (LayerDesc, MLPSpec, CourseCNNSpec) and ``build``
architecture.py a model's architecture as JSON (what a checkpoint rebuilds from)
train.py        ``fit`` / ``evaluate``; history.py: ``History``
checkpoint/     atomic save / load of model, optimiser, schedule, RNG and history
metrics.py      accuracy, confusion matrix
plots.py        matplotlib figures (imported lazily)
cli/            the ``tinygrad-mnist`` command, one file per subcommand
explore/        the backprop explorer page
==============  ==================================================================

>>> import numpy as np
>>> from tinygrad_mnist import Linear, ReLU, Sequential, SoftmaxCrossEntropy, SGD
>>> model = Sequential(Linear(784, 64, seed=0), ReLU(), Linear(64, 10, seed=1))
>>> loss, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1)
"""

__version__ = "0.1.0"

from .models import (
    CLASSIC_MLP,
    CourseCNNSpec,
    LayerDesc,
    MLPSpec,
    build,
    build_course_cnn,
    build_mlp,
    mlp,
    num_parameters,
)
from .nn import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    CrossEntropy,
    Dropout,
    Flatten,
    Identity,
    L1Penalty,
    L2Penalty,
    Linear,
    MaxPool2d,
    Module,
    MSELoss,
    Parameter,
    Penalty,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    activation_by_name,
    initializer,
    loss_by_name,
)
from .optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealingLR,
    LinearWarmup,
    Optimizer,
    RMSprop,
    StepLR,
    optimizer_by_name,
    schedule_by_name,
)

__all__ = [
    "__version__",
    "Module", "Parameter", "Sequential",
    "Linear", "Identity", "Flatten", "Conv2d", "MaxPool2d", "AvgPool2d",
    "Dropout", "BatchNorm1d", "BatchNorm2d", "Residual",
    "Sigmoid", "ReLU", "Tanh", "Softmax", "activation_by_name",
    "SoftmaxCrossEntropy", "CrossEntropy", "MSELoss", "loss_by_name",
    "initializer",
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Optimizer", "optimizer_by_name",
    "StepLR", "CosineAnnealingLR", "LinearWarmup", "schedule_by_name",
    "Penalty", "L1Penalty", "L2Penalty",
    "MLPSpec", "CLASSIC_MLP", "build_mlp", "mlp", "build", "build_course_cnn",
    "LayerDesc", "CourseCNNSpec", "num_parameters",
]
