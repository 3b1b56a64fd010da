"""ModuleCase, the record of one module under test, and what cases share: the hypothesis
wrapper :func:`given_case_data` and the ``fd_safe`` predicates.

The fields are explained in :mod:`tests.zoo_cases`, which holds the registry :data:`ZOO`.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from tinygrad_mnist.nn.activations import ReLU
from tinygrad_mnist.nn.module import Module, Sequential

from .error_scales import EXAMPLES


def given_case_data(test):
    """``@given(data=st.data())`` for a test parametrised by ``case``, honouring the
    case's ``max_examples`` (at most the profile's count)::

        @pytest.mark.parametrize("case", ZOO, ids=repr)
        @given_case_data
        def test_something(case, data): ...
    """
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @functools.wraps(test)
    def wrapper(case, *args, **kwargs):
        budget = settings.default.max_examples
        if getattr(case, "max_examples", None) is not None:
            budget = min(budget, case.max_examples)

        @settings(max_examples=budget)
        @given(data=st.data())
        def run(data):
            EXAMPLES[test.__name__] = EXAMPLES.get(test.__name__, 0) + 1
            test(case, *args, data=data, **kwargs)

        run()

    signature = inspect.signature(test)
    wrapper.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name != "data"])
    del wrapper.__wrapped__  # pytest must see the signature without ``data``
    return wrapper


def always_safe(module: Module, x: np.ndarray) -> bool:
    return True


def away_from_zero(margin: float = 1e-3) -> Callable[[Module, np.ndarray], bool]:
    """``fd_safe`` for a kink at 0: every input entry at least ``margin`` (≫ ε) from it."""
    return lambda module, x: bool(np.all(np.abs(x) > margin))


def relu_inputs_away_from_zero(module: Sequential, x: np.ndarray, margin: float = 1e-3) -> bool:
    """``fd_safe`` for a chain: the input of every ReLU (run on ``x``) stays ``margin`` from 0."""
    h = x
    for layer in module:
        if isinstance(layer, ReLU) and not np.all(np.abs(h) > margin):
            return False
        h = layer.forward(h)
    return True


@dataclass(frozen=True)
class ModuleCase:
    """One module under test; see the docstring of tests/zoo_cases.py for the fields."""

    name: str
    make: Callable[[np.random.Generator, np.dtype], Module]
    torch_make: Callable[[Module], object]
    inputs: Callable[[np.dtype], object]
    fd_safe: Callable[[Module, np.ndarray], bool] = always_safe
    fd_inputs: Optional[Callable[[np.dtype], object]] = None
    float32_inputs: Optional[Callable[[np.dtype], object]] = None
    batch_independent: bool = True
    train_mode: bool = True
    max_examples: Optional[int] = None

    def finite_difference_inputs(self, dtype=np.float64):
        """The strategy the finite-difference checks draw from (``inputs`` by default)."""
        return (self.fd_inputs or self.inputs)(dtype)

    def inputs_for(self, dtype):
        """``inputs(dtype)``, or ``float32_inputs`` for float32 when the case has them."""
        if np.dtype(dtype) == np.float32 and self.float32_inputs is not None:
            return self.float32_inputs(dtype)
        return self.inputs(dtype)

    def build(self, seed: int, dtype=np.float64) -> Module:
        module = self.make(np.random.default_rng(seed), np.dtype(dtype))
        return module.train(self.train_mode)

    def build_torch(self, module: Module):
        return self.torch_make(module).train(self.train_mode)

    def __repr__(self) -> str:  # readable pytest ids
        return self.name
