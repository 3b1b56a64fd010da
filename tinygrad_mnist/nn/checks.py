"""The input checks every layer runs: dtype and shape, NaN/inf, the upstream gradient's
shape, forward before backward; errors name the layer, the expected and the received.

Re-exported by :mod:`tinygrad_mnist.nn.module`, where the layers import them from.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Optional, Tuple, TypeVar

import numpy as np

from .conventions import FLOAT_DTYPES

if TYPE_CHECKING:  # only for the annotations; module.py imports this file
    from .module import Module


def check_float_input(module: Module, x: np.ndarray, ndim: Optional[int] = None,
                      last_dim: Optional[int] = None) -> np.ndarray:
    """Validate ``x`` for ``module``: float32/float64 ndarray, rank and trailing size.

    Raises ``TypeError`` for a non-float or dtype-mismatched input and ``ValueError`` for
    a wrong shape, naming the module and the expected and received values.
    """
    name = type(module).__name__
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64 input, got {x.dtype}")
    pdtype = module.dtype
    if pdtype is not None and x.dtype != pdtype:
        raise TypeError(
            f"{name}: input dtype {x.dtype} does not match parameter dtype {pdtype}; "
            f"convert the input or call model.astype({str(pdtype)!r})"
        )
    if x.ndim == 0:
        raise ValueError(f"{name}: expected a batch of shape (n, ...), got a 0-d array")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d input, got shape {x.shape}")
    if last_dim is not None and x.shape[-1] != last_dim:
        raise ValueError(
            f"{name}: expected input of shape (n, {last_dim}), got shape {x.shape}"
        )
    check_finite_input(name, x)
    return x


class NonFiniteError(ValueError):
    """An input holds NaN or ±inf (raised by every layer and loss instead of propagating it)."""


#: How deep the current call is inside ``Sequential.forward`` (per thread; set there).
CHAIN = threading.local()


def check_finite_input(name: str, x: np.ndarray) -> np.ndarray:
    """:func:`check_finite` for a layer's input, except inside a ``Sequential``: there the
    model's input was checked once on entry, and a NaN or inf arising inside the model (an
    overflow) reaches its output, which the loss checks, so each layer need not scan its
    (large) input again."""
    if not getattr(CHAIN, "depth", 0):
        check_finite(name, x)
    return x


def check_finite(name: str, x: np.ndarray) -> np.ndarray:
    """Raise :class:`NonFiniteError` naming ``name`` when ``x`` holds NaN or ±inf.

    Cheap: for a contiguous ``x`` one BLAS dot product ``v·v`` (NaN and inf propagate into
    it; about 0.02 ms for a 256×784 float32 batch), else one ``max`` and one ``min`` pass;
    the exact ``np.isfinite`` scan runs only when that sum is not finite (a NaN or inf, or
    finite values so large that their squares overflow, which pass).
    """
    if not x.size:
        return x
    if x.flags.c_contiguous:
        v = x.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            fine = np.isfinite(np.dot(v, v))
    else:
        fine = np.isfinite(x.max()) and np.isfinite(x.min())
    if not fine and not np.isfinite(x).all():
        bad = ~np.isfinite(x)
        kinds = [k for k, f in (("NaN", np.isnan), ("inf", np.isinf)) if f(x).any()]
        raise NonFiniteError(f"{name}: input of shape {x.shape} holds {int(bad.sum())} non-finite "
                             f"value(s) ({' and '.join(kinds)}), first at index "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
    return x


def check_grad_out(module: Module, grad_out: np.ndarray, expected_shape: Tuple[int, ...]) -> np.ndarray:
    """Validate the upstream gradient against the shape of the last forward output."""
    name = type(module).__name__
    if not isinstance(grad_out, np.ndarray):
        raise TypeError(f"{name}.backward: expected a numpy ndarray, got {type(grad_out).__name__}")
    if grad_out.shape != tuple(expected_shape):
        raise ValueError(
            f"{name}.backward: expected grad_out of shape {tuple(expected_shape)} "
            f"(the last forward output), got {grad_out.shape}"
        )
    return grad_out


def located(err: Exception, where: str) -> Exception:
    """A copy of ``err`` (same class and attributes) whose message starts with ``where: ``,
    so an error deep in a model names the layer it happened in."""
    import copy

    new = copy.copy(err)
    new.args = (f"{where}: {err.args[0] if err.args else ''}",) + tuple(err.args[1:])
    return new


CacheT = TypeVar("CacheT")


def require_cache(module: Module, cache: Optional[CacheT]) -> CacheT:
    if cache is None:
        raise RuntimeError(f"{type(module).__name__}.backward called before forward")
    return cache
