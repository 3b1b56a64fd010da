"""Weight initialisers, as functions and by name.

Every initialiser has the signature ``init(shape, rng, dtype=np.float32) -> ndarray`` and
draws only from the ``np.random.Generator`` it is given.  Fans follow PyTorch: for a
weight of shape ``(out, in, *kernel)``, ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.

==================  =========================================  ==========================
name                distribution                               scale
==================  =========================================  ==========================
``zeros``           0                                          --
``normal``          N(0, std²)                                 ``std`` (0.1 by default)
``glorot_uniform``  U(-d, d)                                   d = √(6 / (fan_in + fan_out))
``glorot_normal``   N(0, σ²)                                   σ = √(2 / (fan_in + fan_out))
``he_uniform``      U(-d, d)                                   d = √(6 / fan_in)
``he_normal``       N(0, σ²)                                   σ = √(2 / fan_in)
==================  =========================================  ==========================

These are the canonical names (:data:`INITIALIZERS`).  Old spellings stay accepted, with
a one-line note, through the one table :data:`INITIALIZER_ALIASES`: ``xavier_*`` (torch's
spelling) mean ``glorot_*`` and ``kaiming_*`` mean ``he_*``; the bare ``glorot``/``xavier``
mean ``glorot_uniform`` and ``he``/``kaiming`` mean ``he_normal``, as in the papers;
``zero`` means ``zeros``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .conventions import resolve_alias
from .module import check_rng

Initializer = Callable[..., np.ndarray]


def fans(shape: Sequence[int]) -> Tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)`` (or ``(n,)``)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        raise ValueError("fans: a scalar weight has no fan")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def zeros(shape: Tuple[int, ...], rng: Optional[np.random.Generator] = None,
          dtype: DTypeLike = np.float32) -> np.ndarray:
    """All zeros; ``rng`` is accepted for a uniform signature and unused."""
    return np.zeros(shape, dtype=dtype)


def normal(shape: Tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike = np.float32, std: float = 0.1,
           mean: float = 0.0) -> np.ndarray:
    """Samples of N(mean, std²)."""
    if std < 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    return check_rng(rng, "normal").normal(mean, std, size=shape).astype(dtype)


def uniform(shape: Tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike = np.float32,
            bound: float = 0.05) -> np.ndarray:
    """Samples of U(-bound, bound)."""
    return check_rng(rng, "uniform").uniform(-bound, bound, size=shape).astype(dtype)


def glorot_uniform(shape: Tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike = np.float32,
                   gain: float = 1.0) -> np.ndarray:
    """U(-d, d) with d = gain · √(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    return uniform(shape, rng, dtype, bound=gain * math.sqrt(6.0 / (fan_in + fan_out)))


def glorot_normal(shape: Tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike = np.float32,
                  gain: float = 1.0) -> np.ndarray:
    """N(0, σ²) with σ = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return normal(shape, rng, dtype, std=gain * math.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(shape: Tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike = np.float32) -> np.ndarray:
    """U(-d, d) with d = √(6 / fan_in) (He et al., 2015; for ReLU)."""
    fan_in, _ = fans(shape)
    return uniform(shape, rng, dtype, bound=math.sqrt(6.0 / fan_in))


def he_normal(shape: Tuple[int, ...], rng: np.random.Generator, dtype: DTypeLike = np.float32) -> np.ndarray:
    """N(0, σ²) with σ = √(2 / fan_in) (He et al., 2015; for ReLU)."""
    fan_in, _ = fans(shape)
    return normal(shape, rng, dtype, std=math.sqrt(2.0 / fan_in))


#: The initialisers by their one name.
INITIALIZERS: Dict[str, Initializer] = {
    "zeros": zeros,
    "normal": normal,
    "uniform": uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
}

#: Old spellings still accepted, each mapped (with a note) to its name in INITIALIZERS.
INITIALIZER_ALIASES: Dict[str, str] = {
    "zero": "zeros",
    "glorot": "glorot_uniform",
    "xavier": "glorot_uniform",
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "he": "he_normal",
    "kaiming": "he_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
}


def initializer_name(name: str, warn: bool = True) -> str:
    """The canonical initialiser name for ``name`` (lower case, ``-`` read as ``_``), an
    old spelling mapped through :data:`INITIALIZER_ALIASES` with a note when ``warn``."""
    return resolve_alias(name.lower().replace("-", "_"), INITIALIZER_ALIASES, "initializer", warn)


def initializer(name: Union[str, Initializer], **kwargs: Any) -> Initializer:
    """Return the initialiser called ``name``, with keyword arguments bound.

    ``name`` may also be a callable, returned with ``kwargs`` bound.

    >>> init = initializer("normal", std=1.0)
    >>> init((3, 2), np.random.default_rng(0)).shape
    (3, 2)
    """
    if callable(name):
        return functools.partial(name, **kwargs) if kwargs else name
    if not isinstance(name, str):
        raise TypeError(f"initializer: expected a name or a callable, got {type(name).__name__}")
    key = initializer_name(name)
    if key not in INITIALIZERS:
        raise ValueError(
            f"initializer: unknown initialiser {name!r}; choose one of {sorted(INITIALIZERS)}"
        )
    fn: Initializer = INITIALIZERS[key]
    return functools.partial(fn, **kwargs) if kwargs else fn
