"""PyTorch baselines that mirror the numpy engine.

- :mod:`torch_baselines.models`: torch twins built from the engine's framework-neutral
  layer descriptions (MLPs, the course CNN and its variants, LeNet, the digits MLPs, a
  CNN matched to a parameter count);
- :mod:`torch_baselines.bridge`: exact weight copies numpy → torch and torch → numpy;
- :mod:`torch_baselines.data`: ``torch_loader``, a ``torch.utils.data.DataLoader`` over
  the engine's uint8 arrays (``ImageDataset``) in the numpy loader's order
  (``NumpyOrderSampler``);
- :mod:`torch_baselines.train`: ``fit`` / ``evaluate`` with the engine's signature,
  ``History`` and data order;
- :mod:`torch_baselines.utils`: ``seed_everything``, ``resolve_device``,
  ``num_parameters``, ``parameter_table``.

Importing this package imports torch (``pip install torch==2.13.0``).
"""

from .bridge import numpy_to_torch, pair_parameters, torch_to_numpy
from .data import ImageDataset, NumpyOrderSampler, torch_loader
from .models import (
    ComplexMLP,
    LeNet,
    Residual,
    SimpleMLP,
    build,
    build_course_cnn,
    build_mlp,
    build_param_matched_cnn,
    complex_mlp_layers,
    lenet_layers,
    param_matched_cnn_spec,
    simple_mlp_layers,
)
from .train import evaluate, fit, loss_by_name, optimizer_by_name, penalty, schedule_by_name, train_step
from .utils import num_parameters, parameter_rows, parameter_table, resolve_device, seed_everything

__all__ = [
    "build", "build_mlp", "build_course_cnn", "Residual",
    "lenet_layers", "LeNet", "simple_mlp_layers", "SimpleMLP", "complex_mlp_layers", "ComplexMLP",
    "param_matched_cnn_spec", "build_param_matched_cnn",
    "numpy_to_torch", "torch_to_numpy", "pair_parameters",
    "ImageDataset", "NumpyOrderSampler", "torch_loader",
    "fit", "train_step", "evaluate", "optimizer_by_name", "schedule_by_name", "loss_by_name", "penalty",
    "seed_everything", "resolve_device", "num_parameters", "parameter_rows", "parameter_table",
]
