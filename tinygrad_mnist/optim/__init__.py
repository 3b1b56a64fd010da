"""Optimisers with PyTorch's update rules and names, and learning-rate schedules.

==============  ===============================================================
file            what it holds
==============  ===============================================================
optimizer.py    the Optimizer base class (zero_grad, step, state_dict)
optimizers.py   SGD, Adam, AdamW, RMSprop, Adagrad; ``optimizer_by_name``; the rules
                in their papers' lines (``*_direction``)
in_place.py     Adam's, RMSprop's and Adagrad's directions computed in place (speed)
schedules.py    StepLR, CosineAnnealingLR, LinearWarmup; ``schedule_by_name``
==============  ===============================================================
"""

from .optimizer import Optimizer, flush_subnormals
from .optimizers import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, RMSprop, optimizer_by_name
from .schedules import SCHEDULES, CosineAnnealingLR, LinearWarmup, StepLR, schedule_by_name

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "OPTIMIZERS", "optimizer_by_name",
           "flush_subnormals", "StepLR", "CosineAnnealingLR", "LinearWarmup", "SCHEDULES", "schedule_by_name"]
