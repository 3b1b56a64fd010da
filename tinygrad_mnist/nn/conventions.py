"""The conventions every layer, loader and builder shares: float32/float64 only,
randomness only from an explicit ``np.random.Generator`` (no global state), and one
canonical name per idea in each registry, old spellings mapped by :func:`resolve_alias`.

Re-exported by :mod:`tinygrad_mnist.nn.module` and :mod:`tinygrad_mnist.nn`.
"""

from __future__ import annotations

import sys
from typing import Mapping, Optional

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


def resolve_alias(name: str, aliases: Mapping[str, str], what: str, warn: bool = True) -> str:
    """The canonical name for ``name``: ``aliases[name]`` for an old spelling (with a
    one-line note on stderr when ``warn``), ``name`` itself otherwise.

    Every registry (activations, losses, initialisers, presets, studies) keeps one
    canonical name per idea and one explicit table ``{old spelling: canonical name}``
    read through this function; unknown names are left for the registry to reject.
    """
    if name not in aliases:
        return name
    if warn:
        print(f"note: {what} name {name!r} is deprecated; it now means {aliases[name]!r} (use that name)",
              file=sys.stderr)
    return aliases[name]
