"""Zoo cases for the losses: LossCase and :data:`LOSS_ZOO` (each loss, each target form,
both reductions), checked against torch and finite differences like the module cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np

from tinygrad_mnist.nn.module import Module

from .error_scales import cross_entropy_scales, mse_scales, softmax_ce_scales, target_rows
from .torch_reference import torch_cross_entropy, torch_cross_entropy_on_probs, torch_mse


@dataclass(frozen=True)
class LossCase:
    """A loss and its torch reference.

    ``make()`` builds the numpy loss; ``torch_loss(pred, target)`` computes the same value
    in torch from a prediction tensor and the numpy target; ``inputs(dtype)`` is a strategy
    of ``(pred, target)`` pairs.
    """

    name: str
    make: Callable[[], Module]
    torch_loss: Callable[[object, np.ndarray], object]
    inputs: Callable[[np.dtype], object]
    scales: Callable[[np.ndarray, np.ndarray, str], Tuple[float, float]]
    reduction: str = "mean"

    def term_scales(self, pred: np.ndarray, target: np.ndarray) -> Tuple[float, float]:
        """The size of the terms the loss value and its gradient are sums of."""
        return self.scales(np.asarray(pred, dtype=np.float64), target_rows(target, pred), self.reduction)

    def __repr__(self) -> str:
        return self.name


def _loss_cases() -> List[LossCase]:
    from tinygrad_mnist.nn.losses import CrossEntropy, MSELoss, SoftmaxCrossEntropy

    from .strategies import classification_batches, probability_batches, soft_target_batches

    def f32(strategy):
        """Draw in float64 and round: hypothesis refuses bounds like 0.05 at width 32."""
        return lambda dtype: strategy(np.float64).map(lambda pair: tuple(np.asarray(a).astype(dtype)
                                                                         if np.asarray(a).dtype.kind == "f"
                                                                         else a for a in pair))

    cases = []
    for red in ("mean", "sum"):
        cases += [
            LossCase(f"softmax_ce_labels_{red}", lambda red=red: SoftmaxCrossEntropy(red), torch_cross_entropy(red),
                     lambda dtype: classification_batches(dtype=dtype, one_hot=False), softmax_ce_scales, red),
            LossCase(f"softmax_ce_onehot_{red}", lambda red=red: SoftmaxCrossEntropy(red), torch_cross_entropy(red),
                     lambda dtype: classification_batches(dtype=dtype, one_hot=True), softmax_ce_scales, red),
            LossCase(f"softmax_ce_soft_targets_{red}", lambda red=red: SoftmaxCrossEntropy(red),
                     torch_cross_entropy(red), f32(lambda dtype: soft_target_batches(dtype=dtype)),
                     softmax_ce_scales, red),
            LossCase(f"cross_entropy_probs_{red}", lambda red=red: CrossEntropy(red),
                     torch_cross_entropy_on_probs(red), f32(lambda dtype: probability_batches(dtype=dtype)),
                     cross_entropy_scales, red),
            LossCase(f"mse_onehot_{red}", lambda red=red: MSELoss(red), torch_mse(red),
                     lambda dtype: classification_batches(dtype=dtype, low=-2.0, high=2.0), mse_scales, red),
            LossCase(f"mse_soft_targets_{red}", lambda red=red: MSELoss(red), torch_mse(red),
                     f32(lambda dtype: soft_target_batches(dtype=dtype, low=-2.0, high=2.0)), mse_scales, red),
        ]
    return cases


#: Every loss case: each loss, each target form, both reductions.
LOSS_ZOO: List[LossCase] = _loss_cases()
