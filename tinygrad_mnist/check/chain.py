"""The chain rule done literally: per-example Jacobians, multiplied out.

``Sequential.backward(grad_out)`` never builds a Jacobian: each layer applies its
vector-Jacobian product ``gᵀJ_k`` directly.  This module computes the same numbers the
slow, explicit way, so a student can see that back-propagation *is* the chain rule and the
tests can prove the fast path right.

For one example, write the chain as ``h_0 = x``, ``h_k = f_k(h_{k-1}; θ_k)`` for
``k = 1 … L`` and ``y = h_L``.  With ``J_k = ∂h_k/∂h_{k-1}`` (shape ``(|h_k|, |h_{k-1}|)``)
and ``J_k^θ = ∂h_k/∂θ_k`` (shape ``(|h_k|, |θ_k|)``, θ flattened row-major)::

    ∂y/∂x   = J_L J_{L-1} ⋯ J_1                    (|y|, |x|)
    ∂y/∂θ_k = J_L ⋯ J_{k+1} · J_k^θ                (|y|, |θ_k|)

and, for an upstream gradient ``g = ∂L/∂y`` of that example,
``∂L/∂x = gᵀ ∂y/∂x`` and ``∂L/∂θ_k = gᵀ ∂y/∂θ_k``, summed over the examples of the batch.

The products are formed right to left, keeping the running suffix ``S = J_L ⋯ J_{k+1}``
(``S = I`` to start), so each layer costs one matrix product.  Even so this is far more
work than the VJP: ``S`` has ``|y|`` rows instead of one, and a ``Linear(in, out)`` weight
Jacobian ``I_out ⊗ xᵀ`` has ``out · out · in`` entries (see ``docs/jacobians.md`` for
measured costs).  Use it on small networks, for teaching and checking.

Requirements: every layer has ``jacobian(x_one_example)`` returning ``"input"`` and one
entry per name of ``layer.named_parameters()``; the forward pass is deterministic (put
Dropout in eval mode) and treats examples independently (no BatchNorm in training mode).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ..nn.module import Parameter, Sequential, check_grad_out

__all__ = ["layer_inputs", "multiply_out", "sequential_jacobian", "backward_by_jacobians"]


def layer_inputs(seq: Sequential, x: np.ndarray) -> Tuple[List[np.ndarray], np.ndarray]:
    """Run ``seq`` layer by layer on the batch ``x``; return ``([h_0, …, h_{L-1}], h_L)``.

    ``h_{k-1}`` is the input of layer ``k``.  Like ``forward``, this overwrites each
    layer's cache (with the same values, when ``x`` is the batch of the last forward).
    """
    inputs = []
    h = x
    for layer in seq:
        inputs.append(h)
        h = layer.forward(h)
    return inputs, h


def _param_names(seq: Sequential) -> Dict[int, str]:
    """``id(parameter) -> dotted name in seq`` (``named_parameters`` lists a shared one once)."""
    return {id(p): name for name, p in seq.named_parameters()}


def _layer_params(seq: Sequential) -> List[List[Tuple[str, Parameter]]]:
    return [list(layer.named_parameters()) for layer in seq]


def multiply_out(seq: Sequential, jacobians: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """Multiply per-layer Jacobians of one example out along the chain.

    Parameters
    ----------
    seq : Sequential
        The chain; only its layers' parameter names are used.
    jacobians : list of dict
        ``jacobians[k-1] = layer_k.jacobian(h_{k-1})`` for ``k = 1 … L``.

    Returns
    -------
    dict
        ``"input"``: ``J_L ⋯ J_1`` of shape (|y|, |x|); and for each parameter, under its
        dotted name in ``seq`` (``"0.weight"``), ``J_L ⋯ J_{k+1} J_k^θ`` of shape
        (|y|, |θ|).  A parameter shared by several layers gets the sum of its terms.
    """
    if len(jacobians) != len(seq):
        raise ValueError(f"multiply_out: expected {len(seq)} Jacobians (one per layer), got {len(jacobians)}")
    names = _param_names(seq)
    out_size = jacobians[-1]["input"].shape[0]
    suffix = np.eye(out_size, dtype=jacobians[-1]["input"].dtype)  # S = J_L ⋯ J_{k+1}, I for k = L
    result: Dict[str, np.ndarray] = {}
    for layer, params, jac in reversed(list(zip(seq, _layer_params(seq), jacobians, strict=True))):
        for local_name, p in params:
            if local_name not in jac:
                raise KeyError(f"{type(layer).__name__}.jacobian returned no entry for parameter {local_name!r}")
            term = suffix @ jac[local_name]
            name = names[id(p)]
            result[name] = result[name] + term if name in result else term
        suffix = suffix @ jac["input"]
    ordered = {"input": suffix}
    ordered.update((name, result[name]) for name in dict(seq.named_parameters()) if name in result)
    return ordered


def sequential_jacobian(seq: Sequential, x: np.ndarray) -> Dict[str, np.ndarray]:
    """Explicit Jacobians of the whole chain for ONE example ``x`` (no batch axis).

    Each layer's Jacobian is taken at its own input ``h_{k-1}``, found by running the
    layers on ``x[None]`` (so, like ``forward``, this overwrites the layers' caches), and
    the Jacobians are multiplied out by :func:`multiply_out`.

    Returns
    -------
    dict
        ``"input"`` of shape (|y|, x.size) and one (|y|, p.size) matrix per parameter,
        keyed by its name in ``seq.named_parameters()``.
    """
    x = np.asarray(x)
    h = x
    jacobians = []
    for layer in seq:
        jacobians.append(layer.jacobian(h))
        h = layer.forward(h[None])[0]
    return multiply_out(seq, jacobians)


def backward_by_jacobians(seq: Sequential, grad_out: np.ndarray) -> np.ndarray:
    """``Sequential.backward(grad_out, mode="jacobian")``: the chain rule, literally.

    The layer inputs are recovered by re-running the forward pass on the batch that
    ``seq.forward`` kept (``seq.cache.x``), once, layer by layer; this is the only place the
    project recomputes a forward pass for a backward one, and the literal mode exists to
    be read and checked, not to be fast.  Then, for each example ``n``: build every
    layer's Jacobian at that example, multiply them out (:func:`multiply_out`) and apply
    ``g_nᵀ``.  Parameter gradients are summed over the batch and **added** into
    ``param.grad`` (``+=``), exactly as the fast ``backward`` does.

    Parameters
    ----------
    seq : Sequential
    grad_out : ndarray of shape (n, *output_shape)
        ∂L/∂y for the last forward output.

    Returns
    -------
    ndarray of shape (n, *input_shape)
        ∂L/∂x.
    """
    if seq.cache is None:
        raise RuntimeError("Sequential.backward(mode='jacobian') called before forward")
    x = seq.cache.x
    inputs, y = layer_inputs(seq, x)
    check_grad_out(seq, grad_out, y.shape)
    params = dict(seq.named_parameters())
    totals = {name: np.zeros_like(p.data) for name, p in params.items()}
    grad_x = np.empty(x.shape, dtype=np.result_type(x.dtype, grad_out.dtype))
    for n in range(x.shape[0]):
        jacobians = [layer.jacobian(h[n]) for layer, h in zip(seq, inputs, strict=True)]
        full = multiply_out(seq, jacobians)
        g = grad_out[n].reshape(-1)
        grad_x[n] = (g @ full["input"]).reshape(x.shape[1:])
        for name, total in totals.items():
            total += (g @ full[name]).reshape(total.shape)
    for name, p in params.items():
        p.grad += totals[name]
    return grad_x
