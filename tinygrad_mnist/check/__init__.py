"""Proof that the gradients are right: central differences and the literal chain rule.

============  ===================================================================
file          what it holds
============  ===================================================================
gradcheck.py  numerical gradients/Jacobians, relative error with a noise floor,
              ``check_module`` / ``check_loss`` / ``check_model`` / ``check_jacobian``
chain.py      the chain rule multiplied out from per-layer Jacobians
============  ===================================================================
"""

from .chain import backward_by_jacobians, layer_inputs, multiply_out, sequential_jacobian
from .gradcheck import (
    DEFAULT_EPS,
    DEFAULT_FLOOR,
    DEFAULT_TOL,
    Check,
    GradcheckReport,
    check_jacobian,
    check_loss,
    check_model,
    check_module,
    compare,
    noise_floor,
    numerical_gradient,
    numerical_jacobian,
    relative_error,
)

__all__ = ["numerical_gradient", "numerical_jacobian", "relative_error", "noise_floor", "compare", "Check",
           "GradcheckReport", "check_module", "check_loss", "check_model", "check_jacobian",
           "DEFAULT_EPS", "DEFAULT_TOL", "DEFAULT_FLOOR",
           "layer_inputs", "multiply_out", "sequential_jacobian", "backward_by_jacobians"]
