"""Parameter, Module and Sequential: the torch-like contract every layer follows.

A module computes ``y = f(x; θ)``.  ``forward(x)`` returns ``y`` and keeps what the
backward pass needs in ``self.cache``, one small NamedTuple per layer (``LinearCache(x)``,
``MaxPoolCache(argmax, x_shape)``, ...), overwritten on every call.
``backward(grad_out)`` receives ``∂L/∂y`` and returns ``∂L/∂x``, **adding** ``∂L/∂θ``
into each ``Parameter.grad`` (``+=``), exactly as ``torch.Tensor.backward`` accumulates.
``zero_grad()`` clears them.  ``jacobian(x)`` returns the explicit per-example Jacobian
that ``backward`` multiplies out efficiently.

The input checks the layers run live in :mod:`tinygrad_mnist.nn.checks` and the dtype and
generator conventions in :mod:`tinygrad_mnist.nn.conventions`; both are re-exported here.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, TypeVar

import numpy as np
from numpy.typing import DTypeLike

# the shared conventions (dtypes, generators) and input checks, re-exported here for every layer
from .checks import (  # noqa: F401
    CHAIN,
    NonFiniteError,
    check_finite,
    check_finite_input,
    check_float_input,
    check_grad_out,
    located,
    require_cache,
)
from .conventions import FLOAT_DTYPES, check_rng, resolve_dtype, resolve_rng  # noqa: F401

ModuleT = TypeVar("ModuleT", bound="Module")


class Parameter:
    """A learnable array and the gradient accumulated for it.

    Parameters
    ----------
    data : ndarray
        The values; float32 or float64.  The array is owned by the parameter.

    Attributes
    ----------
    data : ndarray of shape s
    grad : ndarray of shape s, same dtype as ``data``; starts at zero.

    Notes
    -----
    ``zero_grad`` only marks the gradient cleared; the zeros are written when ``grad`` is
    next read, unless a layer first writes its whole gradient into the array with
    :meth:`accumulate` (a layer may compute its product straight into
    :meth:`cleared_buffer`).  Then ``0 + Gᵀx`` costs one GEMM writing straight into
    ``grad`` instead of filling it with zeros, writing the product to a temporary and
    adding that in: a training step of the 784-512-512-10 MLP
    3.25 → 2.65 ms at batch 64 and 7.75 → 6.70 ms at 256 (``python -m
    benchmarks.bench_levers``, docs/performance.md).  Reading ``grad`` always gives the
    true accumulated values.
    """

    __slots__ = ("data", "_grad", "_cleared")
    _grad: np.ndarray
    _cleared: bool

    def __init__(self, data: np.ndarray) -> None:
        data = np.asarray(data)
        if data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"Parameter: expected float32 or float64 data, got {data.dtype}")
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def grad(self) -> np.ndarray:
        if self._cleared:  # the zeros zero_grad postponed
            self._grad.fill(0)
            self._cleared = False
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray) -> None:
        self._grad, self._cleared = value, False

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        """Clear the gradient (the zeros are written lazily, see the Notes)."""
        self._cleared = True

    def accumulate(self, value: np.ndarray) -> None:
        """``grad += value``; a copy into the array when the gradient was just cleared, and
        nothing to copy when ``value`` is :meth:`cleared_buffer` itself, written in place."""
        if self._cleared:
            if value is not self._grad:
                np.copyto(self._grad, value)
            self._cleared = False
        else:
            self._grad += value

    def cleared_buffer(self, dtype: np.dtype) -> Optional[np.ndarray]:
        """The gradient array itself when it was just cleared and holds ``dtype`` (a product
        of that dtype may be written straight into it, then passed to :meth:`accumulate`),
        else None (compute into a new array as usual)."""
        return self._grad if self._cleared and self._grad.dtype == dtype else None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer, activation, loss and model.

    Subclasses implement ``forward`` and ``backward`` and register their parameters and
    sub-modules simply by assigning them as attributes; ``parameters()`` finds them in
    assignment order, like ``torch.nn.Module``.
    """

    training: bool
    _params: "OrderedDict[str, Parameter]"
    _modules: "OrderedDict[str, Module]"

    def __init__(self) -> None:
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_params" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        self._params.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._params[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    # -- the contract -------------------------------------------------------------
    # typed like torch's Module.forward: a layer takes forward(x) -> y and backward(grad_out),
    # a loss forward(pred, target) -> float and backward(grad=1.0); each subclass states its own
    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.backward")

    if TYPE_CHECKING:  # declared for the checker only: every layer and loss defines it
        def jacobian(self, *args: Any, **kwargs: Any) -> Dict[str, np.ndarray]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- parameters ---------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        """Yield ``(dotted_name, parameter)`` for this module and its children, each once."""
        seen: set[int] = set()
        for name, p in self._named_parameters(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _named_parameters(self, prefix: str) -> Iterator[Tuple[str, Parameter]]:
        for name, p in self._params.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m._named_parameters(prefix + name + ".")

    def parameters(self) -> List[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        yield prefix.rstrip("."), self
        for name, m in self._modules.items():
            yield from m.named_modules(prefix + name + ".")

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def num_parameters(self) -> int:
        """Total number of learnable scalars."""
        return int(sum(p.size for p in self.parameters()))

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    # -- modes --------------------------------------------------------------------
    def train(self: ModuleT, mode: bool = True) -> ModuleT:
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self: ModuleT) -> ModuleT:
        return self.train(False)

    # -- dtype --------------------------------------------------------------------
    @property
    def dtype(self) -> Optional[np.dtype]:
        """The parameters' dtype, or ``None`` for a module without parameters.

        The first parameter found, in ``parameters()`` order: the module's own, then its
        children's.  Every layer's input check asks on every forward pass, so this reads
        the dicts directly rather than through the ``named_parameters`` generator
        (0.69 → 0.05 µs for a Linear; not cached, so ``p.data = p.data.astype(...)`` is
        seen at once).
        """
        for p in self._params.values():
            return p.data.dtype
        for m in self._modules.values():
            dtype = m.dtype
            if dtype is not None:
                return dtype
        return None

    def astype(self: ModuleT, dtype: DTypeLike) -> ModuleT:
        """Convert every parameter (and buffer) to ``dtype`` in place; returns ``self``."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}.astype: expected float32 or float64, got {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = np.zeros_like(p.data)
        for _, m in self.named_modules():
            for name in m._buffer_names():
                object.__setattr__(m, name, getattr(m, name).astype(dtype))
        return self

    def _buffer_names(self) -> Tuple[str, ...]:
        """Names of non-learnable arrays that belong in ``state_dict`` (e.g. running means)."""
        return ()

    # -- state --------------------------------------------------------------------
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed by dotted name (torch's names)."""
        state: Dict[str, np.ndarray] = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = p.data.copy()
        for mname, m in self.named_modules():
            for b in m._buffer_names():
                key = f"{mname}.{b}" if mname else b
                state[key] = np.array(getattr(m, b), copy=True)
        return state

    def load_state_dict(self, state: Dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy values into the parameters and buffers, checking names and shapes."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        params = dict(self.named_parameters())
        modules = dict(self.named_modules())
        for key, value in state.items():
            if key not in own:
                continue
            value = np.asarray(value)
            if value.shape != own[key].shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {key} expects shape "
                    f"{own[key].shape}, got {value.shape}"
                )
            if key in params:
                params[key].data[...] = value
            else:
                mname, _, bname = key.rpartition(".")
                getattr(modules[mname], bname)[...] = value

    # -- printing -----------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        lines.append(")")
        return "\n".join(lines)


class SequentialCache(NamedTuple):
    """What ``Sequential`` keeps itself (each layer caches its own forward)."""

    x: np.ndarray  # the last batch input; the literal Jacobian mode replays it


class Sequential(Module):
    """Forward:  y = f_L(⋯ f_2(f_1(x)))                      (``torch.nn.Sequential``)
    Jacobian: ∂y/∂x = J_L ⋯ J_2 J_1,  ∂y/∂θ_k = J_L ⋯ J_{k+1} J_k^θ
    VJP:      ∂L/∂x = J_1ᵀ(J_2ᵀ(⋯ J_Lᵀ g)), right to left, each J_kᵀ(·) by ``f_k.backward``

    Derivation: docs/jacobians.md#chain and, multiplied out literally,
    docs/jacobians.md#literal-chain.  Cache: ``SequentialCache(x)``.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is {type(m).__name__}, not a Module")
            setattr(self, str(i), m)
        self.cache: Optional[SequentialCache] = None

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        setattr(self, str(len(self)), module)
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = SequentialCache(x)
        depth = getattr(CHAIN, "depth", 0)
        if not depth and isinstance(x, np.ndarray) and x.dtype in FLOAT_DTYPES:
            check_finite("Sequential", x)  # once for the whole model (see check_finite_input)
        CHAIN.depth = depth + 1
        try:
            for i, m in enumerate(self):
                try:
                    x = m.forward(x)
                except (ValueError, TypeError) as err:  # say which layer; free unless raised
                    raise located(err, f"Sequential layer {i} ({type(m).__name__})") from err
        finally:
            CHAIN.depth = depth
        return x

    def backward(self, grad_out: np.ndarray, mode: str = "vjp") -> np.ndarray:
        """Back-propagate ``grad_out`` through the chain.

        ``mode="vjp"`` (default) calls each layer's efficient ``backward``;
        ``mode="jacobian"`` materialises every per-example Jacobian and multiplies them
        out literally (slow; for teaching and for checking the fast path), see
        :func:`tinygrad_mnist.check.chain.backward_by_jacobians`.
        """
        if mode == "jacobian":
            from ..check.chain import backward_by_jacobians

            return backward_by_jacobians(self, grad_out)
        if mode != "vjp":
            raise ValueError(f"Sequential.backward: mode must be 'vjp' or 'jacobian', got {mode!r}")
        for m in reversed(list(self)):
            grad_out = m.backward(grad_out)
        return grad_out

    def jacobian(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Explicit Jacobians of the whole chain for one example (see :mod:`tinygrad_mnist.check.chain`)."""
        from ..check.chain import sequential_jacobian

        return sequential_jacobian(self, x)
