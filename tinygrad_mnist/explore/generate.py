"""Assemble the explorer's data: the model, a few traced examples, per-layer timings.

>>> from tinygrad_mnist.data import load_digits
>>> from tinygrad_mnist.explore import generate, make_model, write_page
>>> train, test = load_digits()
>>> em = make_model("mlp", image_shape=test.image_shape)
>>> data = generate(em, test, indices=[0, 1], timing_batch=32)   # doctest: +SKIP
>>> write_page(data, "results/explore")                          # doctest: +SKIP
"""

from __future__ import annotations

import platform
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import __version__
from ..data import Dataset
from ..nn.reshape import Flatten
from .models import ExploreModel
from .page import encode_array
from .timing import time_layers
from .trace import FULL_LIMIT, ExampleTrace, torch_twin, trace_example

#: Units the page prints next to each kind of number.
UNITS = {
    "pixel": "intensity (0 = black, 1 = white)",
    "activation": "unitless",
    "gradient": "nats per unit",
    "jacobian": "unitless (∂ output / ∂ input)",
    "loss": "nats",
    "time": "ms",
    "probability": "%",
}


#: What J is for each kind of layer: one sentence per module type, shown under the step
#: title after the sentence that says what g, J and Jᵀg are (``layer_explanation``).
EXPLAIN = {
    "Linear": "For Linear, h = Wx + b, so J = W: the weight matrix itself (outputs × inputs), and Jᵀg = Wᵀg "
              "sends each output's gradient back along its weights.",
    "Tanh": "An activation acts on each value separately, so J is diagonal: Jᵢᵢ = 1 − tanh²(xᵢ), and Jᵀg "
            "multiplies g entry by entry by the slope.",
    "Sigmoid": "An activation acts on each value separately, so J is diagonal: Jᵢᵢ = σ(xᵢ)(1 − σ(xᵢ)) ≤ 1/4, "
               "and Jᵀg multiplies g entry by entry by the slope.",
    "ReLU": "An activation acts on each value separately, so J is diagonal: Jᵢᵢ = 1 where xᵢ > 0, else 0; "
            "Jᵀg lets g through where the unit was active and blocks it elsewhere.",
    "Softmax": "Softmax mixes every output with every input, so J = diag(p) − ppᵀ is a full symmetric matrix, "
               "not a diagonal one.",
    "Conv2d": "A convolution's J is large and sparse: each output pixel depends only on the k×k inputs under its "
              "kernel (in every input channel), so the picture is a block of J with the kernel weights along "
              "shifted diagonals; Jᵀg is a transposed convolution of g.",
    "MaxPool2d": "Max pooling keeps the largest input of each window, so J is a selection matrix: one 1 per row "
                 "(at that input) and zeros elsewhere; Jᵀg routes each gradient to the input that won.",
    "AvgPool2d": "Average pooling averages each window, so each row of J holds 1/(k·k) at its window's inputs; "
                 "Jᵀg spreads each gradient evenly over the window.",
    "Flatten": "Flatten only reshapes, so J is the identity matrix and Jᵀg is g put back into the input's shape.",
    "Identity": "The identity layer: J = I, and Jᵀg = g.",
    "Dropout": "In eval mode Dropout does nothing, so J = I and Jᵀg = g (in training it zeroes random units).",
    "BatchNorm1d": "In eval mode BatchNorm scales each feature by γ/√(σ² + ε) (running statistics), so J is "
                   "diagonal with that factor.",
    "BatchNorm2d": "In eval mode BatchNorm scales each channel by γ/√(σ² + ε) (running statistics), so J is "
                   "diagonal with that factor repeated over the channel's pixels.",
    "Residual": "A residual block computes x + f(x), so J = I + J_f: the identity plus the inner layers' J.",
    "SoftmaxCrossEntropy": "The loss is one number, so its J = ∂L/∂z is a single row, and for softmax "
                           "cross-entropy on the logits z that row is p − y: the probabilities minus the one-hot "
                           "label (negative only at the label).",
    "CrossEntropy": "The loss is one number, so its J = ∂L/∂p is a single row, and for cross-entropy on "
                    "probabilities p that row is −y/p: −1/p at the label, 0 elsewhere (the Softmax below turns "
                    "it into p − y).",
}


def layer_explanation(type_name: str) -> str:
    """What J is for a module (or loss) type; a generic sentence for a type without its own."""
    return EXPLAIN.get(type_name, f"J is the derivative of this {type_name}'s outputs with respect to its inputs, "
                                  "one row per output.")


def _views(em: ExploreModel) -> List[Tuple[int, ...]]:
    """How to draw ``h_0 … h_K``: an image's shape where the tensor is a flattened image."""
    x = np.zeros((1, *em.input_shape))
    views = [tuple(em.image_shape) if em.flat_input else em.input_shape]
    h = x
    for layer in em.model:
        h = layer.forward(h)
        views.append(views[-1] if isinstance(layer, Flatten) else tuple(h.shape[1:]))
    return views


def _param_view(shape: Tuple[int, ...], in_view: Tuple[int, ...]) -> Tuple[int, ...]:
    """A Linear weight ``(out, in)`` whose input is an image is drawn as ``out`` images."""
    if len(shape) == 2 and len(in_view) > 1 and int(np.prod(in_view)) == shape[1]:
        return (shape[0], *in_view)
    return tuple(shape)


def _layer_rows(em: ExploreModel, views: Sequence[Tuple[int, ...]]) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for k, ((name, layer), desc) in enumerate(zip(em.model._modules.items(), em.layers, strict=True), start=1):
        params: List[Dict[str, Any]] = [{"name": n, "shape": list(p.shape), "size": int(p.size)}
                                        for n, p in layer.named_parameters()]
        rows.append({"index": k, "name": name, "type": type(layer).__name__, "repr": repr(layer).replace("\n", " "),
                     "kind": desc.kind, "in_view": list(views[k - 1]), "out_view": list(views[k]),
                     "in_size": int(np.prod(views[k - 1])), "out_size": int(np.prod(views[k])),
                     "num_parameters": int(sum(p["size"] for p in params)), "params": params,
                     "explain": layer_explanation(type(layer).__name__)})
    return rows


def _example_json(trace: ExampleTrace, views: Sequence[Tuple[int, ...]],
                  layer_rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    K = len(trace.activations)
    grads: List[Any] = [None] * (K + 1)     # numpy ∂L/∂h_k, k = 0 … K
    tgrads: List[Any] = [None] * (K + 1)    # torch's
    steps: List[Dict[str, Any]] = []
    for step in trace.steps:
        k_in = K if step.layer == 0 else step.layer - 1
        grads[k_in], tgrads[k_in] = step.jtg, step.torch
        jac = step.jac
        entry: Dict[str, Any] = {
            "layer": step.layer, "name": step.name, "in": k_in,
            "diff": step.diff, "explicit_diff": step.explicit_diff,
            "jac": {"data": encode_array(jac.data, "f8", sparse=True), "rows": list(jac.rows), "cols": list(jac.cols),
                    "shape": list(jac.shape), "method": jac.method, "full": jac.full},
            "params": [],
        }
        if step.layer > 0:
            in_view = views[step.layer - 1]
            for p in step.params:
                view = _param_view(p["shape"], tuple(in_view))
                entry["params"].append({"name": p["name"], "torch_name": p["torch_name"], "shape": list(p["shape"]),
                                        "view": list(view), "grad": encode_array(p["grad"].reshape(view), "f4"),
                                        "diff": p["diff"]})
        steps.append(entry)
    return {
        "index": trace.index, "label": trace.label, "prediction": trace.prediction,
        "probabilities": [float(p) for p in trace.probabilities], "logits": [float(v) for v in trace.logits],
        "loss": trace.loss, "loss_torch": trace.loss_torch,
        "input": encode_array(trace.x.reshape(views[0]), "f4"),
        "activations": [encode_array(h.reshape(views[k + 1]), "f4") for k, h in enumerate(trace.activations)],
        "forward_diffs": trace.forward_diffs,
        "grads": [encode_array(g.reshape(views[k]), "f8") for k, g in enumerate(grads)],
        "torch_grads": [encode_array(g.reshape(views[k]), "f8") for k, g in enumerate(tgrads)],
        "steps": steps,
    }


def _threads() -> dict:
    import torch

    info: Dict[str, Any] = {"torch_intra_op": torch.get_num_threads()}
    try:
        from threadpoolctl import threadpool_info

        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            info["numpy_blas"] = blas[0].get("num_threads")
            info["numpy_blas_library"] = f"{blas[0].get('internal_api')} {blas[0].get('version')}"
    except ImportError:
        pass
    return info


def batch_of(em: ExploreModel, dataset: Dataset, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Examples ``indices`` of ``dataset`` as the model takes them (float64 in [0, 1]) and their labels."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(dataset)):
        raise ValueError(f"explore: example indices must lie in [0, {len(dataset)}), got {idx.tolist()}")
    x = dataset.images[idx].astype(np.float64) / 255.0
    return x.reshape(len(idx), *em.input_shape), dataset.labels[idx]


def generate(em: ExploreModel, dataset: Dataset, indices: Sequence[int] = (0, 1, 2, 3), timing_batch: int = 128,
             repeats: int = 5, threads: Optional[int] = 1, full_limit: int = FULL_LIMIT,
             dataset_name: Optional[str] = None) -> dict:
    """The page's data for ``em`` on examples ``indices`` of ``dataset`` (a test set).

    Parameters
    ----------
    em : ExploreModel
    dataset : Dataset
        Images (uint8) scaled to [0, 1] as in training.
    indices : sequence of int, default=(0, 1, 2, 3)
        The examples precomputed into the page (the first is shown first).
    timing_batch : int, default=128
        Batch size of the per-layer timings (its first examples of ``dataset``); 0 skips them.
    repeats : int, default=5
        Timing repeats per layer (the median is reported).
    threads : int or None, default=1
        Threads of numpy's BLAS and of torch while timing (None: as they are).
    full_limit : int
        See :func:`~tinygrad_mnist.explore.trace.trace_example`.
    dataset_name : str, optional

    Returns
    -------
    dict
        JSON-ready; :func:`~tinygrad_mnist.explore.page.write_page` turns it into the page.
    """
    import torch

    if not len(indices):
        raise ValueError("explore: give at least one example index")
    t0 = time.perf_counter()
    views = _views(em)
    layer_rows = _layer_rows(em, views)
    tmodel = torch_twin(em)
    xs, ys = batch_of(em, dataset, indices)
    examples = [_example_json(trace_example(em, x, int(y), int(i), tmodel, full_limit), views, layer_rows)
                for x, y, i in zip(xs, ys, indices, strict=True)]
    timing = None
    if timing_batch:
        n = min(int(timing_batch), len(dataset))
        xb, yb = batch_of(em, dataset, range(n))
        rows = time_layers(em, xb, yb, repeats, threads)
        used = _threads() if threads is None else {"numpy_blas": int(threads), "torch_intra_op": int(threads)}
        timing = {"batch": n, "repeats": int(repeats), "dtype": "float32", "threads": used, "rows": rows}
    loss_type = "CrossEntropy" if em.ends_with_softmax else "SoftmaxCrossEntropy"
    loss = "CrossEntropy on probabilities" if em.ends_with_softmax else "SoftmaxCrossEntropy on logits"
    return {
        "format": 1,
        "title": f"Backprop explorer: {em.name}",
        "model": {"name": em.name, "source": em.source, "trained": bool(em.trained), "dtype": "float64", "mode": "eval",
                  "loss_type": loss_type, "loss_explain": layer_explanation(loss_type),
                  "num_parameters": int(em.model.num_parameters()), "input_view": list(views[0]),
                  "loss": f"{loss}, one example (sum = mean)"},
        "dataset": {"name": dataset_name or getattr(dataset, "name", "?"), "size": len(dataset),
                    "image_shape": list(em.image_shape), "num_classes": int(dataset.num_classes)},
        "layers": layer_rows,
        "timing": timing,
        "examples": examples,
        "units": UNITS,
        "meta": {"version": __version__, "numpy": np.__version__, "torch": torch.__version__,
                 "python": platform.python_version(), "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                 "generation_seconds": round(time.perf_counter() - t0, 3)},
    }
