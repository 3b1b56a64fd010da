"""Gradient checking by central differences, for any module, loss or whole model.

The central difference of a scalar function ``f`` along coordinate ``i`` of an array θ is

    ∂f/∂θ_i ≈ (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε,

with a truncation error ``ε² f'''/6`` and a rounding error of about ``u |f| / ε`` (``u``
the unit round-off), so it is only trustworthy in float64, where ``ε = 1e-6`` leaves both
near 1e-10 (see ``docs/finite_differences.md``).  Every ``check_*`` function therefore
requires float64 and compares the analytic result with the numerical one array by array:

    relative error = max_i |a_i − n_i| / max(max_i |a_i|, max_i |n_i|, floor)

i.e. the worst absolute difference measured against the array's largest entry, which is
scale-aware and does not blow up on entries that are zero (a per-entry ratio would
compare rounding noise with noise there).  The ``floor`` is the smallest scale a central
difference can resolve at all: evaluating ``f`` rounds it by about ``u F`` (``F`` the size
of the terms summed into ``f``), so every estimate carries noise of about ``u F / ε``
(2e-10·F for ε = 1e-6) and an array whose entries are smaller than ``NOISE · u F / (ε ·
tol)`` is compared against that instead of against its own (noise-sized) largest entry.
Equivalently, a check passes when ``max |a − n| ≤ max(tol · largest entry, NOISE · u F / ε)``:
no tolerance can ask for more than the differences resolve.

Typical use::

    report = check_model(model.astype(np.float64), SoftmaxCrossEntropy(), x, y)
    print(report)            # one row per array: worst index, both values, error
    assert report.passed

From the command line: ``tinygrad-mnist gradcheck --hidden 16 16 --activation tanh``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple

import numpy as np

from ..nn.losses import Loss
from ..nn.module import Module
from ..types import Array

__all__ = ["numerical_gradient", "numerical_jacobian", "relative_error", "noise_floor", "Check", "GradcheckReport",
           "compare", "check_module", "check_jacobian", "check_loss", "check_model"]

DEFAULT_EPS = 1e-6
DEFAULT_TOL = 1e-6
DEFAULT_FLOOR = 1e-12
NOISE = 4.0  # central-difference rounding noise, in units of u·F/ε (a few ulps of f per evaluation)


# -- central differences ------------------------------------------------------------------
def _indices(size: int, max_checks: Optional[int], rng: Optional[np.random.Generator]) -> np.ndarray:
    """All flat indices, or ``max_checks`` of them drawn without replacement (sorted)."""
    if max_checks is None or max_checks <= 0 or max_checks >= size:
        return np.arange(size)
    rng = rng if rng is not None else np.random.default_rng(0)
    return np.sort(rng.choice(size, size=max_checks, replace=False))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = DEFAULT_EPS,
                       indices: Optional[np.ndarray] = None) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``f`` takes no arguments and reads ``x`` (e.g. a parameter's ``data``), which is
    perturbed in place, one entry at a time, and restored exactly afterwards.

    Parameters
    ----------
    f : callable () -> float
    x : ndarray, writable
    eps : float, default=1e-6
        The step ε; the estimate is ``(f(x + ε e_i) − f(x − ε e_i)) / 2ε``.
    indices : ndarray of int, optional
        Flat indices to estimate; all by default.

    Returns
    -------
    ndarray of float64
        Of ``x.shape`` when ``indices`` is None, else of shape ``(len(indices),)``.
    """
    flat = np.arange(x.size) if indices is None else np.asarray(indices)
    grad = np.empty(flat.shape, dtype=np.float64)
    for j, i in enumerate(flat):
        idx = np.unravel_index(i, x.shape)
        orig = x[idx]
        x[idx] = orig + eps
        f_plus = float(f())
        x[idx] = orig - eps
        f_minus = float(f())
        x[idx] = orig
        grad[j] = (f_plus - f_minus) / (2.0 * eps)
    return grad.reshape(x.shape) if indices is None else grad


def numerical_jacobian(f: Callable[[], np.ndarray], x: np.ndarray, eps: float = DEFAULT_EPS,
                       indices: Optional[np.ndarray] = None) -> np.ndarray:
    """Central-difference Jacobian of the array-valued ``f()`` with respect to ``x``.

    Returns an ndarray of shape ``(f().size, x.size)`` (or ``(f().size, len(indices))``):
    column ``i`` is ``(f(x + ε e_i) − f(x − ε e_i)) / 2ε``, flattened row-major.
    """
    flat = np.arange(x.size) if indices is None else np.asarray(indices)
    columns = []
    for i in flat:
        idx = np.unravel_index(i, x.shape)
        orig = x[idx]
        x[idx] = orig + eps
        f_plus = np.array(f(), dtype=np.float64).ravel()
        x[idx] = orig - eps
        f_minus = np.array(f(), dtype=np.float64).ravel()
        x[idx] = orig
        columns.append((f_plus - f_minus) / (2.0 * eps))
    return np.stack(columns, axis=1)


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = DEFAULT_FLOOR) -> float:
    """``max |a − n| / max(max |a|, max |n|, floor)``: the worst difference against the scale."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if a.size == 0:
        return 0.0
    scale = max(float(np.abs(a).max()), float(np.abs(n).max()), floor, np.finfo(np.float64).tiny)
    return float(np.abs(a - n).max() / scale)


class _Tracked:
    """Wrap ``f`` to remember ``F``, the largest magnitude it produced (or was told of)."""

    def __init__(self, f: Callable[[], Any]) -> None:
        self.f, self.magnitude = f, 0.0

    def __call__(self) -> Any:
        value = self.f()
        self.magnitude = max(self.magnitude, float(np.max(np.abs(value), initial=0.0)))
        return value

    def floor(self, floor: float, eps: float, tol: float) -> float:
        return max(floor, noise_floor(self.magnitude, eps, tol))


def noise_floor(magnitude: float, eps: float = DEFAULT_EPS, tol: float = DEFAULT_TOL) -> float:
    """``NOISE · u F / (ε · tol)``: the scale below which central differences of a function
    of magnitude ``F`` are rounding noise at tolerance ``tol`` (u = float64 round-off)."""
    return NOISE * np.finfo(np.float64).eps * float(magnitude) / (eps * tol)


# -- the report --------------------------------------------------------------------------
@dataclass
class Check:
    """One compared array: where it differs most, by how much, and whether that passes."""

    name: str
    shape: Tuple[int, ...]
    checked: int
    index: Tuple[int, ...]
    analytic: float
    numeric: float
    rel_error: float
    passed: bool


def compare(name: str, analytic: np.ndarray, numeric: np.ndarray, tol: float = DEFAULT_TOL,
            floor: float = DEFAULT_FLOOR, shape: Optional[Tuple[int, ...]] = None,
            indices: Optional[np.ndarray] = None) -> Check:
    """Compare two arrays of the same shape; ``indices`` maps a subset back to ``shape``.

    ``analytic`` and ``numeric`` hold the compared entries (all of ``shape``, or those at
    the flat ``indices``); the worst index is reported in ``shape``'s coordinates.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"compare {name}: analytic shape {a.shape} differs from numeric shape {n.shape}")
    shape = tuple(shape) if shape is not None else a.shape
    err = relative_error(a, n, floor)
    if a.size == 0:
        return Check(name, shape, 0, (), 0.0, 0.0, 0.0, True)
    worst = int(np.argmax(np.abs(a - n).ravel()))
    flat_index = worst if indices is None else int(np.asarray(indices)[worst])
    index = tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()
    return Check(name, shape, int(a.size), index, float(a.ravel()[worst]), float(n.ravel()[worst]),
                 err, bool(err <= tol))


@dataclass
class GradcheckReport:
    """The result of a gradient check: one :class:`Check` per compared array.

    ``str(report)`` is a table with the array's name, shape, number of entries checked,
    the worst index, the analytic and numerical values there and the relative error.
    """

    checks: List[Check] = field(default_factory=list)
    eps: float = DEFAULT_EPS
    tol: float = DEFAULT_TOL
    title: str = "gradient check"

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> List[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def worst(self) -> Optional[Check]:
        return max(self.checks, key=lambda c: c.rel_error) if self.checks else None

    @property
    def max_rel_error(self) -> float:
        worst = self.worst
        return 0.0 if worst is None else worst.rel_error  # None: no checks

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __str__(self) -> str:
        head = (f"{self.title}: central differences, eps={self.eps:g}, tolerance {self.tol:g} "
                f"(relative to the array's largest entry)")
        cols = ["name", "shape", "checked", "worst index", "analytic", "numeric", "rel. error", "ok"]
        rows = [[c.name, str(c.shape), str(c.checked), str(c.index), f"{c.analytic:.9e}",
                 f"{c.numeric:.9e}", f"{c.rel_error:.2e}", "ok" if c.passed else "FAIL"]
                for c in self.checks]
        widths = [max(len(r[i]) for r in [cols] + rows) for i in range(len(cols))]

        def line(r: List[str]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()

        verdict = (f"PASSED: {len(self.checks)} arrays within {self.tol:g}" if self.passed else
                   f"FAILED: {len(self.failures)} of {len(self.checks)} arrays exceed {self.tol:g} "
                   f"({', '.join(c.name for c in self.failures)})")
        return "\n".join([head, line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows] + [verdict])


# -- checks ---------------------------------------------------------------------------------
def _require_float64(what: str, *arrays: Any) -> None:
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype != np.float64:
            raise TypeError(f"{what}: gradient checks need float64 (central differences in {a.dtype} "
                            f"are dominated by rounding); call .astype(np.float64) first")


def _params_float64(module: Module, what: str) -> None:
    _require_float64(what, *(p.data for p in module.parameters()))


class _SavedGrads:
    """Save the parameters' gradients, zero them, and put them back afterwards."""

    def __init__(self, module: Module) -> None:
        self.params = module.parameters()

    def __enter__(self) -> "_SavedGrads":
        self.saved = [p.grad.copy() for p in self.params]
        for p in self.params:
            p.zero_grad()
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        for p, g in zip(self.params, self.saved, strict=True):
            p.grad[...] = g
        return False


def _check_all(title: str, f: Callable[[], float], analytic: Dict[str, np.ndarray],
               arrays: Dict[str, np.ndarray], eps: float, tol: float, floor: float,
               max_checks: Optional[int], rng: Optional[np.random.Generator]) -> GradcheckReport:
    report = GradcheckReport(eps=eps, tol=tol, title=title)
    f = f if isinstance(f, _Tracked) else _Tracked(f)
    for name, arr in arrays.items():
        idx = _indices(arr.size, max_checks, rng)
        numeric = numerical_gradient(f, arr, eps, idx)
        report.checks.append(compare(name, analytic[name].ravel()[idx], numeric, tol,
                                     f.floor(floor, eps, tol), arr.shape, idx))
    return report


def check_module(module: Module, x: np.ndarray, grad_out: Optional[np.ndarray] = None,
                 eps: float = DEFAULT_EPS, tol: float = DEFAULT_TOL, floor: float = DEFAULT_FLOOR,
                 max_checks: Optional[int] = None, seed: int = 0) -> GradcheckReport:
    """Check ``module.backward`` against central differences on a batch.

    The scalar ``f(x, θ) = Σ g ⊙ module(x)`` has gradients ``∂f/∂x = backward(g)`` and
    ``∂f/∂θ`` = the accumulated ``param.grad``, so this checks the whole vector-Jacobian
    product, including anything that couples the examples of a batch.

    Parameters
    ----------
    module : Module, float64
        Its forward must be deterministic (Dropout in eval mode).  Gradients the module
        had before are restored afterwards.
    x : ndarray, float64
        A batch; it is copied, never modified.
    grad_out : ndarray, optional
        The upstream gradient ``g``; standard normal from ``seed`` by default.
    eps, tol, floor : float
        Step, tolerance on the relative error, smallest scale compared against (raised
        to the central differences' noise level, see the module docstring).
    max_checks : int, optional
        Check at most this many randomly chosen entries per array (all by default).
    seed : int, default=0

    Returns
    -------
    GradcheckReport
        ``"input"`` and one check per name of ``module.named_parameters()``.
    """
    x = np.array(x, copy=True)
    _require_float64(f"check_module({type(module).__name__})", x)
    _params_float64(module, f"check_module({type(module).__name__})")
    rng = np.random.default_rng(seed)
    out = module.forward(x)
    g = rng.standard_normal(out.shape) if grad_out is None else np.asarray(grad_out, dtype=np.float64)
    with _SavedGrads(module):
        analytic = {"input": module.backward(g)}
        analytic.update((name, p.grad.copy()) for name, p in module.named_parameters())
    arrays = {"input": x, **{name: p.data for name, p in module.named_parameters()}}

    def f_terms() -> float:
        terms = g * module.forward(x)
        f.magnitude = max(f.magnitude, float(np.abs(terms).sum()))  # F = Σ |g ⊙ y|
        return float(terms.sum())

    f = _Tracked(f_terms)
    return _check_all(f"check_module {type(module).__name__}", f, analytic, arrays, eps, tol, floor,
                      max_checks, rng)


def check_loss(loss: Loss, pred: np.ndarray, target: Array, eps: float = DEFAULT_EPS, tol: float = DEFAULT_TOL,
               floor: float = DEFAULT_FLOOR) -> GradcheckReport:
    """Check ``loss.backward()`` (∂L/∂pred) against central differences of ``loss.forward``."""
    pred = np.array(pred, copy=True)
    _require_float64(f"check_loss({type(loss).__name__})", pred)
    loss.forward(pred, target)
    analytic = {"input": loss.backward()}
    f = lambda: loss.forward(pred, target)  # noqa: E731
    return _check_all(f"check_loss {type(loss).__name__}", f, analytic, {"input": pred}, eps, tol, floor,
                      None, None)


def check_model(model: Module, loss: Loss, x: np.ndarray, target: Array, eps: float = DEFAULT_EPS,
                tol: float = DEFAULT_TOL, floor: float = DEFAULT_FLOOR, max_checks: Optional[int] = None,
                seed: int = 0) -> GradcheckReport:
    """Check every parameter (and the input) of ``L = loss(model(x), target)``.

    One forward and one ``model.backward(loss.backward())`` give the analytic gradients;
    two forward passes per checked entry give the numerical ones.  Gradients the model
    had before are restored afterwards.
    """
    x = np.array(x, copy=True)
    _require_float64(f"check_model({type(model).__name__})", x)
    _params_float64(model, f"check_model({type(model).__name__})")
    with _SavedGrads(model):
        loss.forward(model.forward(x), target)
        analytic = {"input": model.backward(loss.backward())}
        analytic.update((name, p.grad.copy()) for name, p in model.named_parameters())
    arrays = {"input": x, **{name: p.data for name, p in model.named_parameters()}}
    f = lambda: loss.forward(model.forward(x), target)  # noqa: E731
    return _check_all(f"check_model {type(model).__name__} + {type(loss).__name__}", f, analytic, arrays,
                      eps, tol, floor, max_checks, np.random.default_rng(seed))


def check_jacobian(module: Module, x: np.ndarray, target: Optional[Array] = None, eps: float = DEFAULT_EPS,
                   tol: float = DEFAULT_TOL, floor: float = DEFAULT_FLOOR) -> GradcheckReport:
    """Check ``module.jacobian(x)`` for ONE example against a central-difference Jacobian.

    Each entry of the returned dict (``"input"`` and every parameter) is compared with
    ``numerical_jacobian`` of ``module.forward(x[None])[0]``.  For a loss pass ``target``
    (a label or a row): its ``jacobian(pred, target)`` is the (1, C) row ∂L/∂pred.
    """
    x = np.array(x, copy=True)
    _require_float64(f"check_jacobian({type(module).__name__})", x)
    _params_float64(module, f"check_jacobian({type(module).__name__})")
    if target is None:
        analytic = module.jacobian(x)
        f = lambda: module.forward(x[None])[0]  # noqa: E731
    else:
        t = np.asarray(target)
        t = t.reshape(1) if t.ndim == 0 else t[None]
        analytic = module.jacobian(x, target)
        f = lambda: np.array([module.forward(x[None], t)])  # noqa: E731
    arrays = {"input": x, **{name: p.data for name, p in module.named_parameters()}}
    missing = set(arrays) - set(analytic)
    if missing:
        raise KeyError(f"{type(module).__name__}.jacobian returned no entry for {sorted(missing)}")
    report = GradcheckReport(eps=eps, tol=tol, title=f"check_jacobian {type(module).__name__}")
    f = _Tracked(f)
    for name, arr in arrays.items():
        numeric = numerical_jacobian(f, arr, eps)
        if analytic[name].shape != numeric.shape:
            raise ValueError(f"{type(module).__name__}.jacobian[{name!r}] has shape {analytic[name].shape}, "
                             f"expected {numeric.shape} (outputs, entries)")
        report.checks.append(compare(name, analytic[name], numeric, tol, f.floor(floor, eps, tol)))
    return report
