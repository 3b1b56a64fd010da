"""The torch side of the gradient tests: mirrors of numpy modules and losses, and runs.

torch is imported lazily inside every function, so this file imports without torch.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import pytest

from tinygrad_mnist.check.gradcheck import relative_error
from tinygrad_mnist.nn.activations import ReLU, Sigmoid, Softmax, Tanh
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.module import Module, Sequential
from tinygrad_mnist.nn.reshape import Identity

from .error_scales import batch_term_magnitudes, scaled_error, term_magnitudes


def torch_or_skip():
    """``torch``, or skip the calling test where torch is not installed."""
    return pytest.importorskip("torch")


def torch_nn():
    """``torch.nn``, imported on first use (tests skip cleanly where torch is absent)."""
    import torch

    return torch.nn


def mirror(torch_module, module: Module):
    """Give ``torch_module`` the parameters of ``module`` (same names, values and dtype)."""
    import torch

    dtype = module.dtype if module.dtype is not None else np.float64
    torch_module = torch_module.to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs = dict(torch_module.named_parameters())
    ours = dict(module.named_parameters())
    if set(theirs) != set(ours):
        raise KeyError(f"mirror: torch parameters {sorted(theirs)} differ from numpy {sorted(ours)}")
    with torch.no_grad():
        for name, p in ours.items():
            if tuple(theirs[name].shape) != p.shape:
                raise ValueError(f"mirror: {name} has torch shape {tuple(theirs[name].shape)}, numpy {p.shape}")
            theirs[name].copy_(torch.from_numpy(p.data.copy()))
    return torch_module


def mirror_batchnorm(torch_module, module: Module):
    """``mirror`` plus the running statistics (buffers) of a BatchNorm."""
    import torch

    torch_module = mirror(torch_module, module)
    with torch.no_grad():
        torch_module.running_mean.copy_(torch.from_numpy(module.running_mean.copy()))
        torch_module.running_var.copy_(torch.from_numpy(module.running_var.copy()))
    return torch_module


def _torch_activation(name):
    return lambda: getattr(torch_nn(), name)()


TORCH_ACTIVATIONS = {
    Sigmoid: _torch_activation("Sigmoid"),
    Tanh: _torch_activation("Tanh"),
    ReLU: _torch_activation("ReLU"),
    Softmax: lambda: torch_nn().Softmax(dim=-1),
    Identity: _torch_activation("Identity"),
}


def torch_sequential(model: Sequential):
    """The torch.nn.Sequential mirror of a numpy Sequential of Linear and activations."""
    nn = torch_nn()
    layers = []
    for layer in model:
        if isinstance(layer, Linear):
            layers.append(nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None))
        else:
            layers.append(TORCH_ACTIVATIONS[type(layer)]())
    return mirror(nn.Sequential(*layers), model)


# -- running the mirrors -----------------------------------------------------------------
def torch_forward_backward(torch_module, x: np.ndarray, g: np.ndarray):
    """Run the torch mirror on ``x`` and back-propagate ``g``.

    Returns ``(y, dL/dx, {name: dL/dθ})`` as numpy arrays.
    """
    import torch

    xt = torch.tensor(x, requires_grad=True)
    for p in torch_module.parameters():
        p.grad = None
    y = torch_module(xt)
    y.backward(torch.tensor(g))
    grads = {name: p.grad.detach().numpy().copy() for name, p in torch_module.named_parameters()}
    return y.detach().numpy(), xt.grad.detach().numpy(), grads


def torch_jacobians(torch_module, x_one: np.ndarray) -> Dict[str, np.ndarray]:
    """``torch.func.jacrev`` (vectorised reverse-mode ``torch.autograd.functional.jacobian``)
    of the mirror at one example, laid out as the numpy engine does: ``"input"``
    (out, in) and (out, θ.size) per parameter."""
    import torch
    from torch.func import functional_call, jacrev

    xt = torch.tensor(x_one)
    params = {name: p.detach().clone() for name, p in torch_module.named_parameters()}
    buffers = {name: b.detach().clone() for name, b in torch_module.named_buffers()}

    def f(x, ps):
        return functional_call(torch_module, {**ps, **buffers}, (x[None],))[0]

    jx, jp = jacrev(f, argnums=(0, 1))(xt, params)
    out_size = int(np.prod(f(xt, params).shape))
    jac = {"input": jx.reshape(out_size, -1).numpy()}
    jac.update((name, j.reshape(out_size, -1).numpy()) for name, j in jp.items())
    return jac


def numpy_forward_backward(module: Module, x: np.ndarray, g: np.ndarray):
    """``(y, dL/dx, {name: dL/dθ})`` of the numpy module, starting from zero gradients."""
    module.zero_grad()
    y = module.forward(x)
    gx = module.backward(g)
    return y, gx, {name: p.grad.copy() for name, p in module.named_parameters()}


def compare_with_torch(module: Module, torch_module, x: np.ndarray, g: np.ndarray,
                       batch_independent: bool = True, tolerance: float = 0.0) -> Dict[str, float]:
    """Relative errors of the numpy forward, input gradient and each parameter gradient
    against the torch mirror (keys ``"output"``, ``"input"`` and the parameter names).

    When a plain relative error exceeds ``tolerance``, all are re-measured against the
    size of their terms (:func:`term_magnitudes`, or :func:`batch_term_magnitudes` for a
    module that couples examples), which is what rounding errors scale with."""
    y, gx, grads = numpy_forward_backward(module, x, g)
    ty, tgx, tgrads = torch_forward_backward(torch_module, x, g)
    pairs = {"output": (y, ty), "input": (gx, tgx), **{name: (grads[name], tgrads[name]) for name in grads}}
    errors = {name: relative_error(a, b) for name, (a, b) in pairs.items()}
    if max(errors.values()) > tolerance:
        # Only now pay for the Jacobians: scaling by the terms only lowers errors.
        measure = term_magnitudes if batch_independent else batch_term_magnitudes
        mags = measure(module, x, np.abs(g))
        errors = {name: scaled_error(a, b, mags.get(name, 0.0)) for name, (a, b) in pairs.items()}
    return errors


# -- losses ---------------------------------------------------------------------------------
def _torch_target(target: np.ndarray, like):
    import torch

    if target.ndim == 1:
        return torch.tensor(target, dtype=torch.int64)
    return torch.tensor(target, dtype=like.dtype)


def _torch_rows(target, like):
    """The target as rows like ``like``: labels become one-hot rows of its dtype."""
    import torch

    t = _torch_target(target, like)
    return torch.nn.functional.one_hot(t, like.shape[1]).to(like.dtype) if t.ndim == 1 else t


def torch_cross_entropy(reduction):
    def f(z, target):
        import torch.nn.functional as F

        return F.cross_entropy(z, _torch_target(target, z), reduction=reduction)
    return f


def torch_cross_entropy_on_probs(reduction):
    def f(p, target):
        import torch

        t = _torch_rows(target, p)
        total = -(t * torch.log(p)).sum()
        return total / p.shape[0] if reduction == "mean" else total
    return f


def torch_mse(reduction):
    def f(pred, target):
        import torch

        return torch.nn.MSELoss(reduction=reduction)(pred, _torch_rows(target, pred))
    return f


def torch_loss_and_grad(case, pred: np.ndarray, target: np.ndarray):
    """``(value, ∂L/∂pred)`` from the torch reference."""
    import torch

    pt = torch.tensor(pred, requires_grad=True)
    value = case.torch_loss(pt, target)
    value.backward()
    return float(value.detach()), pt.grad.numpy().copy()
