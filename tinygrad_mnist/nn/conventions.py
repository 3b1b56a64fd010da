"""The conventions every layer, loader and builder shares: float32/float64 only, and
randomness only from an explicit ``np.random.Generator`` (no global state).

Re-exported by :mod:`tinygrad_mnist.nn.module` and :mod:`tinygrad_mnist.nn`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import DTypeLike

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype: DTypeLike, name: str) -> np.dtype:
    """``dtype`` as a float32/float64 ``np.dtype``; anything else raises ``TypeError``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype!r}") from None
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {resolved}")
    return resolved


def resolve_rng(rng: Optional[np.random.Generator], seed: int, name: str) -> np.random.Generator:
    """The generator to draw from: ``rng`` itself, else ``np.random.default_rng(seed)``.

    Randomness only ever comes from an explicit generator; there is no global state.
    A non-Generator ``rng`` raises ``TypeError`` naming ``name``.
    """
    return np.random.default_rng(seed) if rng is None else check_rng(rng, name)


def check_rng(rng: np.random.Generator, name: str) -> np.random.Generator:
    """``rng`` itself when it is a ``np.random.Generator``; otherwise ``TypeError``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: expected rng to be a np.random.Generator "
                        f"(e.g. np.random.default_rng(0)), got {type(rng).__name__}")
    return rng
