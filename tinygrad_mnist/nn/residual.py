"""``Residual``: a skip connection ``y = F(x) + P(x)`` around a block F.

``P`` is the identity (``y = F(x) + x``, He et al. 2016) or a projection module (e.g. a
1×1 convolution or a Linear) where F changes the shape.  The input feeds both branches,
so the chain rule adds their contributions:

    ∂y/∂x = J_F + J_P   (J_P = I for the identity skip),
    ∂L/∂x = J_Fᵀ g + J_Pᵀ g = F.backward(g) + P.backward(g)   (+ g for the identity).

The identity path hands the upstream gradient straight to the input, which is why deep
residual networks train: the gradient cannot vanish through the skip.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np

from .module import Module, check_float_input, check_grad_out, require_cache


class ResidualCache(NamedTuple):
    """What ``Residual.backward`` keeps itself (each branch caches its own forward)."""

    y_shape: Tuple[int, ...]  # the output shape, to check the upstream gradient against


class Residual(Module):
    """Forward:  y = F(x) + P(x)             (P = projection, or the identity: y = F(x) + x)
    Jacobian: ∂y/∂x = J_F + J_P             (J_P = I for the identity)
    VJP:      ∂L/∂x = J_Fᵀ g + J_Pᵀ g = F.backward(g) + P.backward(g)   (+ g for the identity)

    A skip connection around ``block`` (F); derivation: docs/jacobians.md#residual.

    Parameters
    ----------
    block : Module
        The residual branch F, e.g. ``Sequential(Conv2d, ReLU, Conv2d, ReLU)``.
    projection : Module, optional
        The skip branch P; None for the identity, which requires ``block(x)`` to have
        the shape of ``x``.

    Parameters of ``block`` are named ``block.<name>`` and those of the projection
    ``projection.<name>`` (``named_parameters``, ``state_dict``, ``jacobian``).

    Attributes
    ----------
    cache : ResidualCache or None
        The output shape of the last ``forward``, overwritten on each call.

    Shapes
    ------
    x : (n, ...) → y : the shape of ``block(x)``.

    Raises
    ------
    ValueError
        When the two branches' outputs differ in shape (with the shapes, and a hint to
        pass a projection).
    """

    def __init__(self, block: Module, projection: Optional[Module] = None) -> None:
        super().__init__()
        if not isinstance(block, Module):
            raise TypeError(f"Residual: block must be a Module, got {type(block).__name__}")
        if projection is not None and not isinstance(projection, Module):
            raise TypeError(f"Residual: projection must be a Module or None, got {type(projection).__name__}")
        self.block = block
        self.projection = projection
        self.cache: Optional[ResidualCache] = None

    def _sum(self, fx: np.ndarray, px: np.ndarray, x_shape: Tuple[int, ...]) -> np.ndarray:
        if fx.shape != px.shape:
            skip = "the input" if self.projection is None else "projection(x)"
            hint = " (pass a projection, e.g. a 1×1 Conv2d or a Linear)" if self.projection is None else ""
            raise ValueError(f"Residual: block(x) has shape {fx.shape} but {skip} has shape {px.shape} "
                             f"for input of shape {x_shape}; they must match{hint}")
        return fx + px

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_input(self, x)
        fx = self.block.forward(x)
        px = x if self.projection is None else self.projection.forward(x)
        y = self._sum(fx, px, x.shape)
        self.cache = ResidualCache(y.shape)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``∂L/∂x = F.backward(g) + P.backward(g)`` (``+ g`` for the identity skip)."""
        shape = require_cache(self, self.cache).y_shape
        check_grad_out(self, grad_out, shape)
        grad_x = self.block.backward(grad_out)
        skip = grad_out if self.projection is None else self.projection.backward(grad_out)
        return grad_x + skip

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """``∂y/∂x = J_F + J_P`` (``J_P = I`` for the identity) for one example ``x``, and each
        parameter's Jacobian under its ``block.`` / ``projection.`` prefixed name."""
        x = np.asarray(x)
        jb = self.block.jacobian(x)
        jp = {"input": np.eye(x.size, dtype=x.dtype)} if self.projection is None else self.projection.jacobian(x)
        if jb["input"].shape != jp["input"].shape:
            raise ValueError(f"Residual.jacobian: the block's Jacobian has shape {jb['input'].shape} but "
                             f"the skip's has shape {jp['input'].shape} for one example of shape {x.shape}")
        jac = {"input": jb["input"] + jp["input"]}
        jac.update({f"block.{k}": v for k, v in jb.items() if k != "input"})
        jac.update({f"projection.{k}": v for k, v in jp.items() if k != "input"})
        return jac
