"""The speed levers measured for the numpy engine, each against the plain form.

Run (about a minute; on a quiet machine)::

    python -m benchmarks.bench_levers [--only adaptive flush ...]

Each figure is the 10th percentile of 200 calls in milliseconds (robust to a busy
neighbour), on the shapes of the benchmarked models:

- ``split``: an elementwise product (of two float arrays, and of a float array and a
  bool mask) done by one thread, or split in two halves with one half on a persistent
  worker thread (numpy releases the GIL in ufuncs);
- ``sgd``: the momentum update of the two MLPs' parameters (670k and 51k numbers):
  plain (allocating ``(1 - dampening)·g`` and ``lr·b``), in place with one work array
  (used), cache-blocked in chunks of 64k numbers, and in place on all parameters held
  in one flat buffer (one ufunc call per pass instead of one per parameter);
- ``relu``: the ReLU backward ``g ⊙ [x > 0]`` as ``g * mask`` (plain), multiplied into
  the fresh mask (used), and with the gradient in another memory layout than the cache
  (the CNN's last ReLU behind ``Flatten``) converted first (used) or not;
- ``gemm``: the Linear layer's products in both orientations, ``x Wᵀ`` against
  ``(W xᵀ)ᵀ`` and ``Gᵀ x`` against ``(xᵀ G)ᵀ``;
- ``step``: whole training steps of the two MLPs (SGD with momentum, random data),
  the engine as it is against one changed piece, alternating in rounds of 100 steps
  (the figure is the fastest round's median): the gradient zeroed eagerly (a fill, then
  ``grad += Gᵀx``) instead of marked cleared and overwritten by the GEMM (used); a fresh
  gradient array every step, as torch's ``grad = None``; the momentum update of the
  large parameters split over two threads; the forward product
  as ``(W xᵀ)ᵀ``.  A lever that wins on an isolated call can lose inside a step, where
  OpenBLAS's threads are still spinning and the arrays arrive from the previous pass;
- ``adaptive``: whole Adam steps (wide MLP at batch 64 and 256, course CNN at 64), and
  RMSprop and Adagrad steps (wide MLP at 64), with the direction computed in place in one
  work array (``optim/in_place.py``, used) against the paper's lines (a new array each);
- ``flush``: whole Adam steps of the wide MLP with 2.5% of the first moments subnormal,
  flushed every 64 steps (used) or never, and without subnormals (the flush's own cost).
"""

from __future__ import annotations

import argparse
import time
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def p10_ms(fn, repeats: int = 200) -> float:
    for _ in range(10):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return 1e3 * ts[len(ts) // 10]


def split_lever(rng, pool):
    rows = []
    for shape in ((8, 28, 28, 64), (8, 28, 28, 256), (256, 512)):
        rows.append(_split_row(rng, pool, shape))
    return rows


def _split_row(rng, pool, shape):
    x, g = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
    out = np.empty_like(x)
    xf, gf, of = x.reshape(-1), g.reshape(-1), out.reshape(-1)
    h = xf.size // 2

    def part(a, b):
        np.multiply(gf[a:b], xf[a:b], out=of[a:b])

    def part_mask(a, b):
        np.multiply(gf[a:b], xf[a:b] > 0, out=of[a:b])

    def two(fn):
        f = pool.submit(fn, 0, h)
        fn(h, xf.size)
        f.result()

    return (f"split {shape}", {
        "float·float one thread": p10_ms(lambda: part(0, xf.size)),
        "two halves": p10_ms(lambda: two(part)),
        "float·mask one thread": p10_ms(lambda: part_mask(0, xf.size)),
        "two halves ": p10_ms(lambda: two(part_mask))})


def sgd_lever(rng):
    rows = []
    for name, shapes in (("784-512-512-10", [(512, 784), (512,), (512, 512), (512,), (10, 512), (10,)]),
                         ("784-64-10", [(64, 784), (64,), (10, 64), (10,)])):
        rows.append(_sgd_row(rng, name, shapes))
    return rows


def _sgd_row(rng, name, shapes):
    lr, mu, chunk = 0.05, 0.9, 1 << 16
    P = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    G = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    B = [np.zeros_like(p) for p in P]
    S = [np.empty_like(p) for p in P]
    flat = [np.concatenate([a.reshape(-1) for a in arrays]) for arrays in (P, G, B, S)]

    def plain():
        for p, g, b in zip(P, G, B, strict=True):
            b *= mu
            b += (1.0 - 0.0) * g
            p -= lr * b

    def in_place(arrays=(P, G, B, S)):
        for p, g, b, s in zip(*arrays, strict=True):
            b *= mu
            b += g
            p -= np.multiply(b, lr, out=s)

    def blocked():
        for p, g, b, s in zip(P, G, B, S, strict=True):
            pf, gf, bf, sf = p.reshape(-1), g.reshape(-1), b.reshape(-1), s.reshape(-1)
            for i in range(0, pf.size, chunk):
                bb = bf[i:i + chunk]
                bb *= mu
                bb += gf[i:i + chunk]
                pf[i:i + chunk] -= np.multiply(bb, lr, out=sf[i:i + chunk])

    return (f"sgd {name}", {"plain": p10_ms(plain), "in place (used)": p10_ms(in_place),
                            "blocked 64k": p10_ms(blocked),
                            "one flat buffer": p10_ms(lambda: in_place([[a] for a in flat]))})


def relu_lever(rng):
    rows = []
    for n in (64, 256):
        rows.append(_relu_row(rng, n))
    return rows


def _relu_row(rng, n):
    x = rng.standard_normal((8, 28, 28, n), dtype=np.float32).transpose(3, 0, 1, 2)
    g = rng.standard_normal((8, 28, 28, n), dtype=np.float32).transpose(3, 0, 1, 2)
    g_nchw = np.ascontiguousarray(g)

    def into_mask(grad):
        d = (x > 0).astype(x.dtype)
        if grad.strides != d.strides:
            c = np.empty_like(d)
            c[...] = grad
            grad = c
        d *= grad
        return d

    return (f"relu backward batch {n}", {
        "plain, same layout": p10_ms(lambda: g * (x > 0).astype(x.dtype)),
        "into mask, same layout (used)": p10_ms(lambda: into_mask(g)),
        "plain, NCHW grad": p10_ms(lambda: g_nchw * (x > 0).astype(x.dtype)),
        "converted, NCHW grad (used)": p10_ms(lambda: into_mask(g_nchw))})


def gemm_lever(rng):
    rows = []
    for n in (64, 256):
        for i, o in ((784, 512), (512, 512)):
            rows.append(_gemm_row(rng, n, i, o))
    return rows


def _gemm_row(rng, n, i, o):
    x = rng.standard_normal((n, i), dtype=np.float32)
    W = rng.standard_normal((o, i), dtype=np.float32)
    g = rng.standard_normal((n, o), dtype=np.float32)
    return (f"gemm batch {n}, {i}→{o}", {
        "x Wᵀ (used)": p10_ms(lambda: x @ W.T), "(W xᵀ)ᵀ": p10_ms(lambda: W @ x.T),
        "Gᵀ x (used)": p10_ms(lambda: g.T @ x), "(xᵀ G)ᵀ": p10_ms(lambda: x.T @ g)})


def _eager_zero_grad(opt):
    """``zero_grad`` as a fill of zeros (``grad`` is never marked cleared), so the next
    backward adds its product into the array: the engine before the cleared flag."""
    for p in opt.params:
        p.grad.fill(0)


def _fresh_grad_arrays(opt):
    """``zero_grad`` as torch's ``grad = None``: every step's gradient goes into a newly
    allocated array (here: a fresh ``empty`` array marked cleared, which the GEMM writes)."""
    for p in opt.params:
        p.grad = np.empty_like(p.data)
        p.zero_grad()


def _momentum_two_threads(pool):
    """SGD's in-place momentum update, parameters of ≥ 2¹⁷ numbers split in two halves,
    one on a worker thread."""
    def update(opt, p, state):
        buf = state.get("momentum_buffer")
        if p.size < (1 << 17) or buf is None:
            return type(opt)._update(opt, p, state)

        def half(a, b):
            bb = buf.reshape(-1)[a:b]
            bb *= opt.momentum
            bb += p.grad.reshape(-1)[a:b]
            p.data.reshape(-1)[a:b] -= np.multiply(bb, opt.lr, out=opt._scratch(p).reshape(-1)[a:b])

        h = p.size // 2
        f = pool.submit(half, h, p.size)
        half(0, h)
        f.result()
    return update


def _transposed_forward(layer, x):
    """``Linear.forward`` with ``y = (W xᵀ)ᵀ + b``: a column-major output."""
    from tinygrad_mnist.nn.linear import LinearCache

    layer.cache = LinearCache(x)
    y = (layer.weight.data @ x.T).T
    y += layer.bias.data
    return y


def _paper_update(name: str):
    """An ``_update`` that takes the paper form of the optimiser's direction
    (``optimizers.*_direction``, a new array per line) instead of its in-place twin."""
    from tinygrad_mnist.optim import optimizers as o

    def adam(opt, p, state):
        p.data -= opt.lr * o.adam_direction(p.grad, state, opt.betas[0], opt.betas[1], opt.eps, opt.amsgrad)

    def rmsprop(opt, p, state):
        p.data -= opt.lr * o.rmsprop_direction(p.grad, state, opt.alpha, opt.eps, opt.momentum, opt.centered)

    def adagrad(opt, p, state):
        p.data -= opt.lr * o.adagrad_direction(p.grad, state, opt.lr_decay, opt.eps, opt.initial_accumulator_value)

    return {"adam": adam, "rmsprop": rmsprop, "adagrad": adagrad}[name]


def adaptive_lever(rng, rounds: int = 6, steps: int = 100):
    """Whole training steps with Adam (wide MLP at batch 64 and 256, course CNN at 64), RMSprop
    and Adagrad (wide MLP at 64): the in-place direction (used) against the paper's lines."""
    from tinygrad_mnist.optim import optimizer_by_name

    rows = []
    for name, side, x, y in _adam_sides(rng):
        for opt_name in ("adam", "rmsprop", "adagrad"):
            if opt_name != "adam" and name != "784-512-512-10 batch 64":
                continue
            side.opt = optimizer_by_name(opt_name, side.model.parameters(), lr=1e-3)
            variants = {"in place (used)": _direction_form(side.opt, None),
                        "paper's lines": _direction_form(side.opt, _paper_update(opt_name))}
            rows.append((f"{opt_name} step {name}", _best_of_rounds(side, x, y, variants, rounds, steps)))
    return rows


def _direction_form(opt, update):
    """Make ``opt`` step with ``update`` (None: its own ``_update``, the in-place form)."""
    def apply():
        opt.__dict__.pop("_update", None)
        if update is not None:
            opt._update = types.MethodType(update, opt)
    return apply


def _adam_sides(rng):
    from tinygrad_mnist.models import MLPSpec, build_mlp
    from tinygrad_mnist.presets import get

    from .steps import NumpySide

    for n in (64, 256):
        x = rng.random((n, 784), dtype=np.float32)
        y = rng.integers(0, 10, n)
        yield (f"784-512-512-10 batch {n}",
               NumpySide(build_mlp(MLPSpec(sizes=(784, 512, 512, 10), activation="relu"), seed=0), 0.05, 0.9), x, y)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    yield "course-cnn batch 64", NumpySide(get("course-cnn").build(seed=0), 0.05, 0.9), x, rng.integers(0, 10, 64)


def flush_lever(rng, rounds: int = 6, steps: int = 100, share: float = 0.025):
    """Whole Adam steps of the wide MLP when ``share`` of the first moments are subnormal
    (first-layer columns whose input pixel is always 0, as MNIST's border, with moments left
    over from earlier nonzero gradients; 2.5% is the share once measured after four epochs of
    the 784-1024-1024-10 MLP), with the state's subnormal values flushed to 0 every 64 steps
    (used) or never; and with no subnormal values at all, where the flush only costs its scan.
    This synthetic share shows little (docs/layers.md); the flush earns its place in real
    training, where an epoch of the wide MLP with SGD and momentum at batch 64 takes 2.07 s
    with it and 2.45–2.52 s without it (``flush_subnormals`` Notes)."""
    from tinygrad_mnist.models import MLPSpec, build_mlp
    from tinygrad_mnist.optim import Adam

    from .steps import NumpySide

    rows = []
    for n in (64, 256):
        side = NumpySide(build_mlp(MLPSpec(sizes=(784, 512, 512, 10), activation="relu"), seed=0), 0.05, 0.9)
        side.opt = Adam(side.model.parameters(), lr=1e-3)
        cols = int(share * sum(p.size for p in side.opt.params) / 512)
        x = rng.random((n, 784), dtype=np.float32)
        x[:, :cols] = 0.0
        y = rng.integers(0, 10, n)
        for _ in range(3):
            side.step(x, y)
        variants = {"subnormal m, flushed every 64 (used)": _first_moments(side.opt, cols, True, 64),
                    "subnormal m, never flushed": _first_moments(side.opt, cols, True, 10**9),
                    "no subnormals, flushed every 64 (used)": _first_moments(side.opt, cols, False, 64),
                    "no subnormals, never flushed": _first_moments(side.opt, cols, False, 10**9)}
        rows.append((f"flush {cols} of 784 columns batch {n}",
                     _best_of_rounds(side, x, y, variants, rounds, steps, warmup=0)))
    return rows


def _first_moments(opt, cols: int, subnormal: bool, flush_every: int):
    """Set the first layer's first ``cols`` columns of m to a subnormal value (``m ← 0.9 m``
    keeps it subnormal for ~130 steps; v at 1e-8) or to 0, and the flush period."""
    def apply():
        opt.flush_every = flush_every
        first = opt.state[0]
        first["exp_avg"][:, :cols] = np.finfo(np.float32).tiny * 0.5 if subnormal else 0.0
        first["exp_avg_sq"][:, :cols] = 1e-8
    return apply


def _best_of_rounds(side, x, y, variants, rounds: int, steps: int, warmup: int = 10) -> dict:
    """The fastest round's median step of each variant, the variants alternating round by round."""
    best = {k: float("inf") for k in variants}
    for _ in range(rounds):
        for name, apply in variants.items():
            apply()
            best[name] = min(best[name], p50_step_ms(side, x, y, steps, warmup))
    return best


def step_lever(rng, pool, rounds: int = 6, steps: int = 100):
    from tinygrad_mnist import Linear
    from tinygrad_mnist.models import MLPSpec, build_mlp

    from .steps import NumpySide

    rows = []
    for sizes, act in (((784, 512, 512, 10), "relu"), ((784, 64, 10), "sigmoid")):
        for n in (64, 256):
            x = rng.random((n, sizes[0]), dtype=np.float32)
            y = rng.integers(0, sizes[-1], n)
            side = NumpySide(build_mlp(MLPSpec(sizes=sizes, activation=act), seed=0), 0.05, 0.9)
            side.model[0].needs_input_grad = False
            linears = [m for m in side.model if isinstance(m, Linear)]
            best = _best_step_ms(side, linears, pool, x, y, rounds, steps)
            rows.append((f"step {'-'.join(map(str, sizes))} batch {n}", best))
    return rows


def _best_step_ms(side, linears, pool, x, y, rounds: int, steps: int) -> dict:
    """The fastest round's median step of each variant: the engine as it is, and with one piece changed."""
    plain_zero, plain_update = side.opt.zero_grad, side.opt._update

    def eager_zero_fill():
        side.opt.zero_grad = types.MethodType(_eager_zero_grad, side.opt)

    def fresh_grad_arrays():
        side.opt.zero_grad = types.MethodType(_fresh_grad_arrays, side.opt)

    def momentum_two_threads():
        side.opt._update = types.MethodType(_momentum_two_threads(pool), side.opt)

    def transposed_forward():
        for m in linears:
            m.forward = types.MethodType(_transposed_forward, m)

    variants = {
        "engine (used)": lambda: None,
        "eager zero fill": eager_zero_fill,
        "grad = None (fresh arrays)": fresh_grad_arrays,
        "momentum on 2 threads": momentum_two_threads,
        "(W xᵀ)ᵀ forward": transposed_forward,
    }
    best = {k: float("inf") for k in variants}
    for _ in range(rounds):
        for name, apply in variants.items():
            side.opt.zero_grad, side.opt._update = plain_zero, plain_update
            for m in linears:
                m.__dict__.pop("forward", None)
            apply()
            best[name] = min(best[name], p50_step_ms(side, x, y, steps))
    return best


def p50_step_ms(side, x, y, steps: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        side.step(x, y)
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        side.step(x, y)
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


LEVERS = {
    "split": split_lever, "sgd": lambda rng, pool: sgd_lever(rng), "relu": lambda rng, pool: relu_lever(rng),
    "gemm": lambda rng, pool: gemm_lever(rng), "step": step_lever, "adaptive": lambda rng, pool: adaptive_lever(rng),
    "flush": lambda rng, pool: flush_lever(rng),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (threadpoolctl)")
    parser.add_argument("--only", nargs="+", choices=sorted(LEVERS), default=sorted(LEVERS), metavar="LEVER",
                        help=f"measure only these levers ({', '.join(sorted(LEVERS))})")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    pool = ThreadPoolExecutor(1)
    rows = []
    with threadpool_limits(args.threads):
        for lever in LEVERS:
            if lever in args.only:
                for name, res in LEVERS[lever](rng, pool):
                    print(f"{name:28s} " + "   ".join(f"{k}: {v:.3f}" for k, v in res.items()), flush=True)
                    rows.append((name, res))
    return rows


if __name__ == "__main__":
    main()
