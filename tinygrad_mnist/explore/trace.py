"""One example's forward and backward pass, layer by layer, with Jacobians and PyTorch's values.

For a chain ``h_0 = x``, ``h_k = f_k(h_{k-1})`` (k = 1 … K) and a loss ``L(h_K, y)``,
back-propagation visits the layers from the last to the first.  At layer k it receives

    g_k = ∂L/∂h_k                       (the incoming gradient, shape of h_k)

and hands on ``∂L/∂h_{k-1} = J_kᵀ g_k`` with ``J_k = ∂h_k/∂h_{k-1}`` of shape
``(|h_k|, |h_{k-1}|)`` (both tensors flattened row-major).  The engine never builds
``J_k``: ``f_k.backward(g_k)`` computes the product directly.  This module computes both
sides for one example, in float64:

- ``J_k`` from the layer's own ``jacobian(h_{k-1})`` (the whole matrix when it has at most
  ``full_limit`` entries), or, for larger layers, only the displayed rows, each row
  ``i`` being ``J_kᵀ e_i`` from ``backward`` of a unit vector (the displayed block is the
  same matrix; no full matrix is formed);
- ``J_kᵀ g_k`` from ``backward`` (what training uses) and, where the whole ``J_k`` was
  formed, the explicit product ``J_k.T @ g_k`` and its difference from ``backward``;
- the same tensor from PyTorch autograd on the twin model (same weights), and the
  differences ``max|Δ|`` and ``max|Δ| / max|torch|``;
- each parameter's ``∂L/∂θ`` from ``backward`` and from torch.

The loss is step 0 of the backward pass: ``g = ∂L/∂L = 1``, ``J = ∂L/∂h_K`` (one row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, cast

import numpy as np

from ..nn.losses import CrossEntropy, Loss, SoftmaxCrossEntropy, log_softmax
from ..nn.module import Module
from .models import ExploreModel

if TYPE_CHECKING:  # torch is imported where it is used
    import torch

#: Form a layer's whole Jacobian with ``jacobian()`` up to this many entries (96 MB in float64).
FULL_LIMIT = 12_000_000
#: Show the whole Jacobian when it has at most this many entries and rows/columns ...
SHOW_FULL_ENTRIES, SHOW_FULL_ROWS, SHOW_FULL_COLS = 65_536, 256, 1024
#: ... else a block of at most this many rows and columns.
BLOCK_ROWS, BLOCK_COLS = 64, 256


def differences(a: np.ndarray, b: np.ndarray) -> Dict[str, float]:
    """``{"max_abs": max|a-b|, "max_rel": max|a-b| / max|b|}`` (max_rel is 0 when a = b = 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"differences: shapes differ, {a.shape} vs {b.shape}")
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return {"max_abs": max_abs, "max_rel": max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))}


@dataclass
class JacobianView:
    """The part of ``J_k`` the page shows.

    Attributes
    ----------
    data : ndarray of shape (len(rows), len(cols))
        ``J[rows][:, cols]``.
    rows, cols : (int, int)
        Half-open index ranges ``[start, stop)`` into the flattened output and input.
    shape : (int, int)
        The whole Jacobian's shape ``(|h_k|, |h_{k-1}|)``.
    method : str
        "jacobian()" when taken from the layer's explicit Jacobian, "backward(e_i)" when
        each row was computed as ``J_kᵀ e_i``.
    full : bool
        True when the block is the whole matrix.
    """

    data: np.ndarray
    rows: Tuple[int, int]
    cols: Tuple[int, int]
    shape: Tuple[int, int]
    method: str

    @property
    def full(self) -> bool:
        return self.rows == (0, self.shape[0]) and self.cols == (0, self.shape[1])


@dataclass
class LayerStep:
    """One backward step (the loss is step 0, then layer K, …, layer 1).

    ``g`` has the shape of the layer's output, ``jtg`` (= ∂L/∂input from ``backward``)
    and ``torch`` the shape of its input.  ``explicit`` is ``J.T @ g`` (flattened to the
    input's shape) when the whole Jacobian was formed, else None.
    """

    layer: int                      # 0 for the loss, k for layer k
    name: str
    g: np.ndarray
    jtg: np.ndarray
    torch: np.ndarray
    jac: JacobianView
    explicit: Optional[np.ndarray]
    diff: Dict[str, float]
    explicit_diff: Optional[Dict[str, float]]
    params: List[dict] = field(default_factory=list)


@dataclass
class ExampleTrace:
    """Everything the page shows for one example."""

    index: int
    label: int
    x: np.ndarray                   # one example as the model takes it
    activations: List[np.ndarray]   # h_1 … h_K (one example each)
    logits: np.ndarray              # h_K
    probabilities: np.ndarray
    prediction: int
    loss: float
    loss_torch: float
    steps: List[LayerStep]
    forward_diffs: List[Dict[str, float]]   # h_k numpy vs torch, k = 1 … K


def loss_module(em: ExploreModel) -> Loss:
    return CrossEntropy(reduction="sum") if em.ends_with_softmax else SoftmaxCrossEntropy(reduction="sum")


def _block_window(size: int, limit: int, centre: int) -> Tuple[int, int]:
    """``[start, stop)`` of at most ``limit`` indices of ``range(size)`` centred on ``centre``."""
    if size <= limit:
        return 0, size
    start = int(np.clip(centre - limit // 2, 0, size - limit))
    return start, start + limit


def jacobian_rows(layer: Module, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of ``∂f(x)/∂x`` for one example ``x``, each as ``backward(e_i)``.

    One batched forward of ``len(rows)`` copies of ``x`` and one backward of the unit
    vectors; the parameters' accumulated gradients are restored afterwards, the layer's
    cache is left from this call.

    Returns
    -------
    ndarray of shape (len(rows), x.size)
    """
    saved = [p.grad.copy() for p in layer.parameters()]
    try:
        batch = np.repeat(x[None], len(rows), axis=0)
        y = layer.forward(batch)
        unit = np.zeros((len(rows), y[0].size), dtype=y.dtype)
        unit[np.arange(len(rows)), rows] = 1
        return layer.backward(unit.reshape(y.shape)).reshape(len(rows), -1)
    finally:
        for p, g in zip(layer.parameters(), saved, strict=True):
            p.grad[...] = g


def jacobian_view(layer: Module, x: np.ndarray, g: np.ndarray, jtg: np.ndarray,
                  full_limit: int = FULL_LIMIT) -> Tuple[JacobianView, Optional[np.ndarray]]:
    """The shown part of the layer's Jacobian at ``x`` and the explicit ``Jᵀg`` (or None).

    A Jacobian with at most ``SHOW_FULL_*`` entries, rows and columns is shown whole.
    Otherwise the block has at most ``BLOCK_ROWS`` rows centred on the output with the
    largest ``|g|`` and ``BLOCK_COLS`` columns: all inputs those rows touch when they fit,
    else centred on the input with the largest ``|Jᵀg|``.
    """
    n_out, n_in = g.size, x.size
    g_flat, jtg_flat = g.reshape(-1), jtg.reshape(-1)
    whole = None
    if n_out * n_in <= full_limit:
        whole = layer.jacobian(x)["input"].reshape(n_out, n_in)
    show_full = n_out * n_in <= SHOW_FULL_ENTRIES and n_out <= SHOW_FULL_ROWS and n_in <= SHOW_FULL_COLS
    if show_full:
        rows, cols = (0, n_out), (0, n_in)
    else:
        rows = _block_window(n_out, BLOCK_ROWS, int(np.argmax(np.abs(g_flat))))
    if whole is not None:
        strip, method = whole[rows[0]:rows[1]], "jacobian()"
    else:
        strip, method = jacobian_rows(layer, x, np.arange(*rows)), "backward(e_i)"
    if not show_full:
        touched = np.flatnonzero(np.any(strip != 0, axis=0))
        if n_in <= BLOCK_COLS:
            cols = (0, n_in)
        elif touched.size and touched[-1] - touched[0] < BLOCK_COLS:
            cols = _block_window(n_in, BLOCK_COLS, int(touched[0] + touched[-1] + 1) // 2)
        else:
            cols = _block_window(n_in, BLOCK_COLS, int(np.argmax(np.abs(jtg_flat))))
    view = JacobianView(np.ascontiguousarray(strip[:, cols[0]:cols[1]]), rows, cols, (n_out, n_in), method)
    explicit = None if whole is None else (whole.T @ g_flat).reshape(jtg.shape)
    return view, explicit


def _torch_pass(em: ExploreModel, tmodel: "torch.nn.Sequential", x: np.ndarray,
                label: int) -> Tuple[float, List[np.ndarray], List[np.ndarray]]:
    """Forward and backward of one example through the torch twin, keeping every grad."""
    import torch

    xt = torch.tensor(x[None], dtype=torch.float64, requires_grad=True)
    hs, h = [xt], xt
    for m in tmodel:
        h = m(h)
        h.retain_grad()
        hs.append(h)
    target = torch.tensor([label])
    if em.ends_with_softmax:
        loss = torch.nn.functional.nll_loss(torch.log(h.clamp_min(1e-12)), target, reduction="sum")
    else:
        loss = torch.nn.functional.cross_entropy(h, target, reduction="sum")
    tmodel.zero_grad(set_to_none=True)
    loss.backward()
    values = [t.detach().numpy()[0].copy() for t in hs]
    grads = [cast("torch.Tensor", t.grad).numpy()[0].copy() for t in hs]  # every h retained its grad
    return float(loss.item()), values, grads


def torch_twin(em: ExploreModel) -> "torch.nn.Sequential":
    """The float64 torch model built from ``em.layers`` with ``em.model``'s weights, eval mode."""
    import torch

    from torch_baselines.bridge import numpy_to_torch
    from torch_baselines.models import build as torch_build

    tmodel = torch_build(em.layers, seed=0, dtype=torch.float64)
    numpy_to_torch(em.model, tmodel)
    return tmodel.eval()


def trace_example(em: ExploreModel, x: np.ndarray, label: int, index: int = 0,
                  tmodel: Optional["torch.nn.Sequential"] = None,
                  full_limit: int = FULL_LIMIT) -> ExampleTrace:
    """Trace one example through ``em.model`` (float64) and its torch twin.

    Parameters
    ----------
    em : ExploreModel
    x : ndarray of shape em.input_shape
        One example, pixel values in [0, 1].
    label : int
        Its class.
    index : int, default=0
        Its position in the test set (recorded only).
    tmodel : torch.nn.Sequential, optional
        The twin (:func:`torch_twin`); built when not given.
    full_limit : int, default=FULL_LIMIT
        Form a layer's whole Jacobian with ``jacobian()`` only up to this many entries;
        larger ones get their shown rows from ``backward(e_i)``.

    Returns
    -------
    ExampleTrace
    """
    model, loss_fn = em.model, loss_module(em)
    x = np.asarray(x, dtype=np.float64)
    if x.shape != em.input_shape:
        raise ValueError(f"trace_example: expected one example of shape {em.input_shape}, got {x.shape}")
    if tmodel is None:
        tmodel = torch_twin(em)
    layers = list(model)
    # forward, keeping every layer's input
    hs = [x[None]]
    for layer in layers:
        hs.append(layer.forward(hs[-1]))
    out = hs[-1]
    loss = loss_fn.forward(out, np.array([label]))
    # backward, layer by layer
    model.zero_grad()
    grads: List[Any] = [None] * (len(layers) + 1)
    grads[-1] = loss_fn.backward()
    for k in range(len(layers), 0, -1):
        grads[k - 1] = layers[k - 1].backward(grads[k])
    param_grads = [{name: p.grad.copy() for name, p in layer.named_parameters()} for layer in layers]
    # torch
    loss_t, t_values, t_grads = _torch_pass(em, tmodel, x, label)
    if em.ends_with_softmax:
        probabilities = out[0]
    else:
        probabilities = np.exp(log_softmax(out))[0]
    steps = [_loss_step(loss_fn, out[0], label, grads[-1][0], t_grads[-1])]
    for k in range(len(layers), 0, -1):
        layer = layers[k - 1]
        g, jtg, h_in = grads[k][0], grads[k - 1][0], hs[k - 1][0]
        view, explicit = jacobian_view(layer, h_in, g, jtg, full_limit)
        params = []
        tparams = dict(tmodel[k - 1].named_parameters())
        for (name, p), (tname, tp) in zip(layer.named_parameters(), tparams.items(), strict=True):
            ours, theirs = param_grads[k - 1][name], cast("torch.Tensor", tp.grad).detach().numpy()  # after backward
            params.append({"name": name, "shape": tuple(p.shape), "grad": ours, "torch_name": tname,
                           "diff": differences(ours, theirs)})
        steps.append(LayerStep(
            layer=k, name=type(layer).__name__, g=g, jtg=jtg, torch=t_grads[k - 1], jac=view,
            explicit=explicit, diff=differences(jtg, t_grads[k - 1]),
            explicit_diff=None if explicit is None else differences(explicit, jtg), params=params))
    model.zero_grad()
    forward_diffs = [differences(h[0], tv) for h, tv in zip(hs[1:], t_values[1:], strict=True)]
    return ExampleTrace(index=int(index), label=int(label), x=x, activations=[h[0] for h in hs[1:]],
                        logits=out[0], probabilities=probabilities, prediction=int(np.argmax(out[0])),
                        loss=float(loss), loss_torch=loss_t, steps=steps, forward_diffs=forward_diffs)


def _loss_step(loss_fn: Loss, out: np.ndarray, label: int, grad: np.ndarray, torch_grad: np.ndarray) -> LayerStep:
    """Step 0: the loss ``L(h_K)``; its Jacobian is the row ``∂L/∂h_K`` and ``g = 1``."""
    jac = loss_fn.jacobian(out, label)["input"].reshape(1, -1)
    g = np.ones(1)
    explicit = (jac.T @ g).reshape(grad.shape)
    view = JacobianView(jac.copy(), (0, 1), (0, jac.shape[1]), jac.shape, "jacobian()")
    return LayerStep(layer=0, name=type(loss_fn).__name__, g=g, jtg=grad, torch=torch_grad, jac=view,
                     explicit=explicit, diff=differences(grad, torch_grad),
                     explicit_diff=differences(explicit, grad))
