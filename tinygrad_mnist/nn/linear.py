"""The affine layer: Linear, ``y = x Wᵀ + b``.

Every layer follows the contract of :mod:`tinygrad_mnist.nn.module`: ``forward`` caches,
``backward`` returns ``∂L/∂x`` and accumulates ``∂L/∂θ`` with ``+=``, ``jacobian(x)``
gives the explicit per-example matrices.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .init import Initializer, initializer, zeros
from .module import Module, Parameter, check_float_input, check_grad_out, require_cache, resolve_dtype, resolve_rng


# -- the math, as pure functions --------------------------------------------------------
def linear_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray]) -> np.ndarray:
    """``y = x Wᵀ + b``; x (n, in), W (out, in), b (out,) → y (n, out)."""
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(x: np.ndarray, weight: np.ndarray, grad_out: np.ndarray, input_grad: bool = True,
                    weight_grad_out: Optional[np.ndarray] = None
                    ) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]:
    """Vector-Jacobian products of ``y = x Wᵀ + b`` for upstream ``G = ∂L/∂y`` (n, out).

    ``∂L/∂x = G W`` (n, in; None when ``input_grad`` is False), ``∂L/∂W = Gᵀ x``
    (out, in), ``∂L/∂b = Σ_n G`` (out,).

    ``weight_grad_out``, an (out, in) array, receives ``Gᵀ x`` (``np.matmul(..., out=)``)
    instead of a new array: ``Linear.backward`` passes a just-cleared gradient, which saves
    a temporary and a pass over it (the 784-512-512-10 MLP's step 3.25 → 2.65 ms at batch
    64, ``python -m benchmarks.bench_levers``).
    """
    grad_w = np.matmul(grad_out.T, x, out=weight_grad_out)
    return (grad_out @ weight if input_grad else None), grad_w, grad_out.sum(axis=0)


class LinearCache(NamedTuple):
    """What ``Linear.backward`` needs from the forward pass."""

    x: np.ndarray  # the input batch, (n, in_features)


class Linear(Module):
    """Forward:  y = x Wᵀ + b                                   (``torch.nn.Linear``)
    Jacobian: ∂y/∂x = W,  ∂y/∂W = I ⊗ xᵀ,  ∂y/∂b = I          (one example x)
    VJP:      ∂L/∂x = g W,  ∂L/∂W = gᵀ x,  ∂L/∂b = Σₙ g       (g = ∂L/∂y, a row per example)

    Derivation: docs/jacobians.md#linear.

    Parameters
    ----------
    in_features : int
    out_features : int
    bias : bool, default=True
    init : str or callable, default="glorot_uniform"
        Weight initialiser (see :mod:`tinygrad_mnist.nn.init`); biases start at zero.
    init_kwargs : dict, optional
        Extra arguments for the initialiser, e.g. ``{"std": 0.1}`` for ``"normal"``.
    rng : np.random.Generator, optional
        Source of randomness; defaults to ``np.random.default_rng(seed)``.
    seed : int, default=0
    dtype : float32 or float64, default=float32
    needs_input_grad : bool, default=True
        False for a first layer fed with data: ``backward`` then accumulates only the
        parameter gradients and returns None (see Notes).

    Attributes
    ----------
    cache : LinearCache or None
        The input of the last ``forward``, overwritten on each call.

    Shapes
    ------
    x : (n, in_features) → y : (n, out_features); weight (out_features, in_features).

    Notes
    -----
    ``needs_input_grad=False`` skips the ``g W`` product, as torch does for an input that
    does not require a gradient.  Its gain for a first Linear layer is unmeasured (the
    measured 1.49× → 1.39× in docs/performance.md is for the first Conv2d).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: Union[str, Initializer] = "glorot_uniform", init_kwargs: Optional[dict] = None,
                 rng: Optional[np.random.Generator] = None, seed: int = 0, dtype: DTypeLike = np.float32,
                 needs_input_grad: bool = True) -> None:
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, got "
                f"({in_features}, {out_features})"
            )
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = resolve_dtype(dtype, "Linear")
        rng = resolve_rng(rng, seed, "Linear")
        init_fn = initializer(init, **(init_kwargs or {}))
        self.weight = Parameter(init_fn((self.out_features, self.in_features), rng, dtype))
        self.bias = Parameter(zeros((self.out_features,), dtype=dtype)) if bias else None
        self.needs_input_grad = bool(needs_input_grad)
        self.cache: Optional[LinearCache] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x, ndim=2, last_dim=self.in_features)
        self.cache = LinearCache(x)
        return linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_out: np.ndarray) -> Optional[np.ndarray]:
        x = require_cache(self, self.cache).x
        check_grad_out(self, grad_out, (x.shape[0], self.out_features))
        # Gᵀx is written straight into a just-cleared weight gradient (no temporary)
        buffer = self.weight.cleared_buffer(np.result_type(grad_out, x))
        grad_x, grad_w, grad_b = linear_backward(x, self.weight.data, grad_out, self.needs_input_grad,
                                                 weight_grad_out=buffer)
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
        return grad_x

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Explicit Jacobians of ``y = W x + b`` for one example ``x`` of shape (in,).

        - ``input``:  ∂y/∂x = W, shape (out, in);
        - ``weight``: ∂y_i/∂W_jk = δ_ij x_k, i.e. ``I_out ⊗ xᵀ``, shape (out, out·in)
          (W flattened row-major, as ``W.ravel()``);
        - ``bias``:   ∂y/∂b = I_out, shape (out, out).
        """
        x = np.asarray(x)
        if x.shape != (self.in_features,):
            raise ValueError(f"Linear.jacobian: expected one example of shape ({self.in_features},), got {x.shape}")
        W = self.weight.data
        jac = {"input": W.copy(), "weight": np.kron(np.eye(self.out_features, dtype=W.dtype), x[None, :])}
        if self.bias is not None:
            jac["bias"] = np.eye(self.out_features, dtype=W.dtype)
        return jac

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
                + ("" if self.needs_input_grad else ", needs_input_grad=False"))
