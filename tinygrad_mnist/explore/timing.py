"""Per-layer forward and backward times of the numpy engine and PyTorch, for one batch.

Both sides run the same layers with the same float32 weights on the same batch.  Each
layer is timed on its own input (the previous layer's output for that batch): the
forward call, then the backward call on the layer's real upstream gradient.  numpy and
torch alternate repeat by repeat after one uncounted warm-up round, and the median of ``repeats`` is reported in
milliseconds.  torch's forward records its autograd graph (as in training) and its
backward is ``y.backward(g)`` into ``requires_grad`` input and parameters.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import numpy as np

from .models import ExploreModel


def _median_ms(samples: List[float]) -> float:
    return float(np.median(samples) * 1e3)


def time_layers(em: ExploreModel, x: np.ndarray, labels: np.ndarray, repeats: int = 5,
                threads: Optional[int] = 1) -> List[Dict[str, float]]:
    """Median forward/backward milliseconds per layer, numpy vs torch, float32.

    Parameters
    ----------
    em : ExploreModel
        Its weights are copied into a float32 numpy model and a float32 torch twin.
    x : ndarray of shape (batch, *em.input_shape)
    labels : ndarray of shape (batch,)
    repeats : int, default=5
    threads : int or None, default=1
        Threads of both sides while timing (numpy's BLAS through threadpoolctl, torch's
        intra-op pool), restored afterwards; None leaves them as they are.  One thread
        each keeps per-layer times of small layers comparable on a shared machine.

    Returns
    -------
    list of dict
        One per layer: ``numpy_forward_ms``, ``numpy_backward_ms``, ``torch_forward_ms``,
        ``torch_backward_ms``.
    """
    import torch

    if repeats < 1:
        raise ValueError(f"time_layers: repeats must be at least 1, got {repeats}")
    if threads is None:
        return _time_layers(em, x, labels, repeats)
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads), user_api="blas"):
            return _time_layers(em, x, labels, repeats)
    finally:
        torch.set_num_threads(before)


def _time_layers(em: ExploreModel, x: np.ndarray, labels: np.ndarray, repeats: int) -> List[Dict[str, float]]:
    import torch

    from torch_baselines.bridge import numpy_to_torch
    from torch_baselines.models import build as torch_build

    from ..models import build
    from .trace import loss_module

    model = build(em.layers, dtype=np.float32)
    model.load_state_dict({k: v.astype(np.float32) for k, v in em.model.state_dict().items()})
    model.eval()
    tmodel = numpy_to_torch(model, torch_build(em.layers, seed=0, dtype=torch.float32)).eval()
    x = np.ascontiguousarray(x, dtype=np.float32)
    # the real per-layer inputs and upstream gradients of this batch
    hs = [x]
    for layer in model:
        hs.append(layer.forward(hs[-1]))
    loss = loss_module(em)
    loss.forward(hs[-1], labels)
    grads: List[Any] = [None] * len(hs)
    grads[-1] = loss.backward().astype(np.float32)
    for k in range(len(model), 0, -1):
        grads[k - 1] = model[k - 1].backward(grads[k])
    rows = []
    for k, (layer, tlayer) in enumerate(zip(model, tmodel, strict=True)):
        h_in, g = hs[k], np.ascontiguousarray(grads[k + 1])
        th_in, tg = torch.from_numpy(h_in.copy()), torch.from_numpy(g.copy())
        nf, nb, tf, tb = [], [], [], []
        for r in range(repeats + 1):  # the first round warms up (lazy allocations) and is not counted
            t0 = time.perf_counter()
            layer.forward(h_in)
            t1 = time.perf_counter()
            layer.backward(g)
            t2 = time.perf_counter()
            if r:
                nf.append(t1 - t0)
                nb.append(t2 - t1)
            inp = th_in.detach().requires_grad_(True)
            t0 = time.perf_counter()
            y = tlayer(inp)
            t1 = time.perf_counter()
            y.backward(tg)
            t2 = time.perf_counter()
            if r:
                tf.append(t1 - t0)
                tb.append(t2 - t1)
        model.zero_grad()
        rows.append({"numpy_forward_ms": _median_ms(nf), "numpy_backward_ms": _median_ms(nb),
                     "torch_forward_ms": _median_ms(tf), "torch_backward_ms": _median_ms(tb)})
    return rows
