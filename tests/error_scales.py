"""Error bookkeeping and the size of the terms a result is computed from.

:data:`WORST` keeps the worst relative error of each kind seen in the session
(:func:`record`, printed by :func:`worst_summary`).  Rounding errors scale with the size
of the terms a result is a sum of, not with the (possibly cancelled) result, so errors are
measured against :func:`term_magnitudes` / :func:`batch_term_magnitudes` for modules and
against the loss scale functions (``softmax_ce_scales``, ``cross_entropy_scales``,
``mse_scales``) for losses.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from tinygrad_mnist.check.gradcheck import relative_error
from tinygrad_mnist.nn.activations import Sigmoid, Tanh
from tinygrad_mnist.nn.module import Module, Sequential

#: The worst relative error of each kind seen in this session (see ``record``).
WORST: Dict[str, Tuple[float, str]] = {}
#: Hypothesis examples run per test function through ``given_case_data``.
EXAMPLES: Dict[str, int] = {}

# Tolerances of the convolution and pooling tests (derived in tests/test_conv.py's docstring).
#: Identities that only rounding separates (adjoint, gᵀJ = backward, float64 vs torch float64).
EXACT = 1e-12
#: Central differences in float64, ε = 1e-6.
FD_TOL = 1e-6
#: float32 against torch float32.
F32_TOL = 1e-5


def record(kind: str, error: float, where: str) -> float:
    """Remember ``error`` if it is the worst of its ``kind`` so far; returns it."""
    if kind not in WORST or error > WORST[kind][0]:
        WORST[kind] = (float(error), where)
    return error


def worst_summary() -> str:
    lines = ["worst relative errors (max |a - b| / max(|a|, |b|, size of the terms)) so far:"]
    lines += [f"  {kind:<34} {err:.3e}  ({where})" for kind, (err, where) in sorted(WORST.items())]
    if EXAMPLES:
        lines.append(f"hypothesis examples run through given_case_data so far: {sum(EXAMPLES.values())}")
    return "\n".join(lines)


# -- the size of the terms --------------------------------------------------------------
def _derivative_terms(module: Module, x: np.ndarray) -> np.ndarray:
    """For σ and tanh, the size of the terms their derivative is computed from:
    σ' = y − y² → y + y², tanh' = 1 − y² → 1 + y².  Near saturation the derivative is a
    small difference of O(1) terms, and its rounding error is u times those terms."""
    y = module.forward(x)
    return y + y * y if isinstance(module, Sigmoid) else 1.0 + y * y


def abs_jacobian(module: Module, x_one: np.ndarray) -> Dict[str, np.ndarray]:
    """|J| entrywise for one example, as a bound on the terms J is computed from: for a
    Sequential |J_L| ⋯ |J_1| (≥ |J_L ⋯ J_1|), for σ and tanh :func:`_derivative_terms`."""
    if isinstance(module, (Sigmoid, Tanh)):
        return {"input": np.diag(_derivative_terms(module, x_one[None]).reshape(-1))}
    if not isinstance(module, Sequential):
        return {k: np.abs(v) for k, v in module.jacobian(x_one).items()}
    from tinygrad_mnist.check.chain import multiply_out

    h, per_layer = x_one, []
    for layer in module:
        per_layer.append(abs_jacobian(layer, h))
        h = layer.forward(h[None])[0]
    return multiply_out(module, per_layer)


def term_magnitudes(module: Module, x: np.ndarray, g_abs: np.ndarray) -> Dict[str, float]:
    """The size of the terms each result is a sum of, for a batch-independent module.

    Each parameter: ``max Σ_n |g_n|ᵀ |J_θ(x_n)|``; ``"input"``: ``max_n max |g_n|ᵀ |J(x_n)|``
    (example n's input gradient has only example n's terms).  A gradient gᵀJ can cancel
    to ~0 (softmax under a constant g) while its rounding error stays the size of these
    terms, so errors are measured against this, not against the cancelled result.
    ``"output"``: ``max (|J_x| |x| + Σ_θ |J_θ| |θ|)``, the same for the forward pass.
    Leaves the module's caches holding ``x``'s examples one at a time; call forward again.
    """
    sums: Dict[str, np.ndarray] = {}
    out = 0.0
    params = dict(module.named_parameters())
    for n in range(x.shape[0]):
        J = abs_jacobian(module, x[n])
        g = g_abs[n].reshape(-1)
        y = J["input"] @ np.abs(x[n]).reshape(-1)
        for name, Jn in J.items():
            if name == "input":   # example n's input gradient has example n's terms only
                sums[name] = np.maximum(sums.get(name, 0.0), g @ Jn)
            else:                 # parameter gradients sum the terms of all examples
                sums[name] = sums.get(name, 0.0) + g @ Jn
                y = y + Jn @ np.abs(params[name].data).reshape(-1)
        out = max(out, float(y.max(initial=0.0)))
    mags = {name: float(v.max(initial=0.0)) for name, v in sums.items()}
    mags["output"] = out
    return mags


def _abs_batch_jacobian(layer: Module, h: np.ndarray):
    """``(|J_x|, {name: |J_θ|})`` of ``layer`` on the whole batch ``h``, row by row from
    ``backward`` with unit upstream gradients (works for layers that couple examples);
    σ and tanh use :func:`_derivative_terms` on the diagonal."""
    y = layer.forward(h)
    if isinstance(layer, (Sigmoid, Tanh)):
        return np.diag(_derivative_terms(layer, h).reshape(-1)), {}
    rows_x, rows_p = [], {name: [] for name, _ in layer.named_parameters()}
    saved = {name: p.grad.copy() for name, p in layer.named_parameters()}
    for i in range(y.size):
        e = np.zeros(y.size, dtype=y.dtype)
        e[i] = 1
        layer.zero_grad()
        layer.forward(h)
        rows_x.append(np.abs(layer.backward(e.reshape(y.shape))).reshape(-1))
        for name, p in layer.named_parameters():
            rows_p[name].append(np.abs(p.grad).reshape(-1))
    for name, p in layer.named_parameters():
        p.grad[...] = saved[name]
    return np.array(rows_x), {name: np.array(rows) for name, rows in rows_p.items()}


def batch_term_magnitudes(module: Module, x: np.ndarray, g_abs: np.ndarray) -> Dict[str, float]:
    """:func:`term_magnitudes` for a module that couples the examples (BatchNorm in
    training mode): ``|g|ᵀ |J_L| ⋯ |J_k|`` with every layer's whole-batch Jacobian built by
    :func:`_abs_batch_jacobian`; ``max`` per result.  Caches are left holding ``x``."""
    layers = list(module._modules.items()) if isinstance(module, Sequential) else [("", module)]
    inputs, h = [], x
    for _, layer in layers:
        inputs.append(h)
        h = layer.forward(h)
    m = g_abs.reshape(-1).astype(np.float64)
    mags: Dict[str, float] = {}
    for (prefix, layer), h in reversed(list(zip(layers, inputs, strict=True))):
        jx, jp = _abs_batch_jacobian(layer, h)
        for name, rows in jp.items():
            mags[f"{prefix}.{name}" if prefix else name] = float((m @ rows).max(initial=0.0))
        m = m @ jx
    mags["input"] = float(m.max(initial=0.0))
    module.forward(x)
    return mags


def scaled_error(a: np.ndarray, b: np.ndarray, magnitude: float = 0.0) -> float:
    """``max |a − b| / max(max |a|, max |b|, magnitude)``."""
    return relative_error(a, b, floor=magnitude)


# -- the size of the loss terms --------------------------------------------------------
def target_rows(target: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``target`` as (n, C) float64 rows: labels (n,) one-hot over ``pred``'s C classes."""
    target = np.asarray(target)
    if target.ndim == 1:
        return np.eye(pred.shape[1])[target]
    return target.astype(np.float64)


def _per(reduction: str, n: int) -> float:
    return 1.0 / n if reduction == "mean" else 1.0


def softmax_ce_scales(z, y, reduction):
    """Value: Σ |y| (|z − max z| + log C); gradient ŷ Σy − y: terms |ŷ| Σ|y| + |y|."""
    from tinygrad_mnist.nn.activations import softmax

    per = _per(reduction, z.shape[0])
    shifted = np.abs(z - z.max(axis=1, keepdims=True)) + np.log(z.shape[1])
    value = float((np.abs(y) * shifted).sum()) * per
    grad = float((softmax(z) * np.abs(y).sum(axis=1, keepdims=True) + np.abs(y)).max()) * per
    return value, grad


def cross_entropy_scales(p, y, reduction):
    """Value: Σ |y log p|; gradient −y/p: no cancellation."""
    per = _per(reduction, p.shape[0])
    return float(np.abs(y * np.log(p)).sum()) * per, float(np.abs(y / p).max()) * per


def mse_scales(pred, y, reduction):
    """Value: Σ (|ŷ| + |y|)²; gradient 2(ŷ − y): terms 2(|ŷ| + |y|)."""
    per = 1.0 / pred.size if reduction == "mean" else 1.0
    big = np.abs(pred) + np.abs(y)
    return float((big * big).sum()) * per, float(2 * big.max()) * per
