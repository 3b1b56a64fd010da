"""Optimisers against torch.optim: identical initial parameters, identical gradient
sequences, a few hundred steps, float64, agreement to ~1e-9 relative (in practice ~1e-14).

Two kinds of trajectories: an open loop (a fixed random gradient sequence, so only the
update arithmetic can differ) and a closed loop (the gradient of a least-squares loss at
the current parameters, so any difference would feed back and grow).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.nn.module import Parameter
from tinygrad_mnist.optim import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, RMSprop, optimizer_by_name
from tinygrad_mnist.optim.in_place import (
    adagrad_direction_in_place,
    adam_direction_in_place,
    rmsprop_direction_in_place,
)
from tinygrad_mnist.optim.optimizers import adagrad_direction, adam_direction, rmsprop_direction

from .strategies import seeds

SHAPES = [(3, 4), (4,), (2, 1, 3)]

CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.001, momentum=0.9)),
    ("RMSprop", dict(lr=0.001, centered=True)),
    ("RMSprop", dict(lr=0.001, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for name, kw in CONFIGS]


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def pair(name, kwargs, seed=0, dtype=np.float64):
    """Our optimiser and torch's over identical parameter values."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    ours = [Parameter(v.copy()) for v in values]
    theirs = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    return (OPTIMIZERS[name.lower()](ours, **kwargs), ours,
            getattr(torch.optim, name)(theirs, **kwargs), theirs)


def set_grads(ours, theirs, grads):
    torch = pytest.importorskip("torch")
    for p, t, g in zip(ours, theirs, grads, strict=True):
        p.grad[...] = g
        t.grad = torch.tensor(g.copy())


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_open_loop_trajectory_matches_torch(name, kwargs):
    opt, ours, topt, theirs = pair(name, kwargs)
    rng = np.random.default_rng(1)
    worst = 0.0
    for _step in range(300):
        # gradients of varying size, some exactly zero entries
        grads = [rng.normal(size=p.shape) * 10.0 ** rng.uniform(-3, 1) * (rng.random(p.shape) > 0.1)
                 for p in ours]
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
        worst = max(worst, max(rel(p.data, t.detach().numpy()) for p, t in zip(ours, theirs, strict=True)))
    assert worst < 1e-9
    assert opt.step_count == 300


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_closed_loop_least_squares_matches_torch(name, kwargs):
    """Mini-batch least squares, L = ½ mean_rows ‖A Wᵀ + b[:3] - B‖² + 0.05‖c‖² over 8 rows
    drawn per step (the same rows on both sides), differentiated at each optimiser's own
    current parameters: ours by hand, torch's by autograd.

    The mini-batches keep the gradient noisy, as in training.  (With the full batch the
    gradient becomes nearly constant near the optimum; centred RMSprop then divides by
    √(v - ḡ²) → 0 and amplifies rounding differences chaotically, whichever library.)"""
    torch = pytest.importorskip("torch")
    opt, ours, topt, theirs = pair(name, kwargs, seed=2)
    rng = np.random.default_rng(3)
    A_all, B_all = rng.normal(size=(40, 4)), rng.normal(size=(40, 3))
    for _step in range(200):
        rows = rng.choice(40, size=8, replace=False)
        A, B = A_all[rows], B_all[rows]
        W, b, c = (p.data for p in ours)
        R = A @ W.T + b[:3] - B
        grads = [R.T @ A / 8, np.concatenate([R.sum(0) / 8, [0.0]]), 0.1 * c]
        Wt, bt, ct = theirs
        lt = 0.5 * ((torch.from_numpy(A) @ Wt.T + bt[:3] - torch.from_numpy(B)) ** 2).sum() / 8 \
            + 0.05 * (ct ** 2).sum()
        topt.zero_grad()
        lt.backward()
        for p, g in zip(ours, grads, strict=True):
            p.grad[...] = g
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs, strict=True):
        assert rel(p.data, t.detach().numpy()) < 1e-9


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_float32_stays_float32_and_close_to_torch(name, kwargs):
    opt, ours, topt, theirs = pair(name, kwargs, dtype=np.float32)
    rng = np.random.default_rng(4)
    for _ in range(20):
        set_grads(ours, theirs, [rng.normal(size=p.shape).astype(np.float32) for p in ours])
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs, strict=True):
        assert p.data.dtype == p.grad.dtype == np.float32
        # 20 steps of O(lr) each; the float32 rounding of each update is ~1e-7 relative
        assert rel(p.data, t.detach().numpy()) < 1e-5
    for state in opt.state.values():
        for v in state.values():
            assert not isinstance(v, np.ndarray) or v.dtype == np.float32


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=IDS)
def test_state_dict_round_trip_continues_the_same_trajectory(name, kwargs):
    def run(opt, params, grads):
        for gs in grads:
            for p, g in zip(params, gs, strict=True):
                p.grad[...] = g
            opt.step()

    rng = np.random.default_rng(5)
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(40)]
    init = [rng.normal(size=s) for s in SHAPES]
    a = [Parameter(v.copy()) for v in init]
    opt_a = OPTIMIZERS[name.lower()](a, **kwargs)
    run(opt_a, a, grads)
    b = [Parameter(v.copy()) for v in init]
    opt_b = OPTIMIZERS[name.lower()](b, **kwargs)
    run(opt_b, b, grads[:20])
    saved = opt_b.state_dict()
    c = [Parameter(p.data.copy()) for p in b]
    opt_c = OPTIMIZERS[name.lower()](c, **kwargs)
    opt_c.load_state_dict(saved)
    run(opt_b, b, grads[20:])  # the saved copy must not alias the live state
    run(opt_c, c, grads[20:])
    for pa, pb, pc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(pa.data, pb.data)
        np.testing.assert_array_equal(pa.data, pc.data)


@pytest.mark.parametrize("name, kwargs", [("Adam", {}), ("SGD", dict(lr=0.1, momentum=0.9)),
                                          ("RMSprop", dict(momentum=0.9))])
def test_subnormal_state_is_flushed_without_changing_the_trajectory(name, kwargs):
    """A coordinate whose gradient becomes 0 has its moments decay into float32's
    subnormal range (slow arithmetic); the periodic flush zeroes them, and the parameters
    come out bit-for-bit the same as without it."""
    tiny = np.finfo(np.float32).tiny
    runs = []
    for flush_every in (64, 10**9):
        p = Parameter(np.array([0.5, -0.25, 1.0], dtype=np.float32))
        opt = OPTIMIZERS[name.lower()]([p], **kwargs)
        opt.flush_every = flush_every
        rng = np.random.default_rng(0)
        for step in range(1500):
            p.grad[...] = rng.normal(size=3).astype(np.float32) * [1, 1, step < 100]  # coordinate 2: 0 after 100
            opt.step()
        arrays = [v for v in opt.state[0].values() if isinstance(v, np.ndarray)]
        subnormal = sum(np.count_nonzero((a != 0) & (np.abs(a) < tiny)) for a in arrays)
        runs.append((p.data.copy(), subnormal))
    (flushed, n_flushed), (kept, n_kept) = runs
    assert n_kept > 0 and n_flushed == 0
    np.testing.assert_array_equal(flushed, kept)


def test_load_state_dict_rejects_mismatched_parameters():
    p = [Parameter(np.ones((2, 3)))]
    opt = Adam(p)
    p[0].grad[...] = 1
    opt.step()
    with pytest.raises(ValueError, match=r"exp_avg of parameter 0 has shape \(2, 3\)"):
        Adam([Parameter(np.ones(3))]).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="holds 1 parameters"):
        Adam([Parameter(np.ones((2, 3)))]).load_state_dict({"lr": 1e-3, "step_count": 1, "state": {3: {}}})


# -- by hand ------------------------------------------------------------------------------
def test_adam_first_step_moves_each_entry_by_lr_times_sign():
    """After one step m̂ = g and v̂ = g², so d = g / (|g| + ε) ≈ sign(g)."""
    p = Parameter(np.array([1.0, 2.0, 3.0]))
    p.grad[...] = [0.5, -1e-3, 0.0]
    Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.9, 2.1, 3.0], rtol=1e-6)


def test_adamw_decay_is_decoupled_from_the_moments():
    p, q = Parameter(np.array([2.0])), Parameter(np.array([2.0]))
    p.grad[...] = q.grad[...] = 0.0
    AdamW([p], lr=0.1, weight_decay=0.5).step()
    Adam([q], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.data, [2.0 * (1 - 0.05)])  # zero gradient: only the decay acts
    np.testing.assert_allclose(q.data, [2.0 - 0.1], rtol=1e-6)  # coupled: g = λθ = 1 → step ≈ lr


def test_rmsprop_and_adagrad_first_steps_by_hand():
    p = Parameter(np.array([1.0]))
    p.grad[...] = 2.0
    RMSprop([p], lr=0.01, alpha=0.9, eps=0.0).step()  # v = 0.1·4 → d = 2 / √0.4
    np.testing.assert_allclose(p.data, [1.0 - 0.01 * 2 / np.sqrt(0.4)], rtol=1e-14)
    q = Parameter(np.array([1.0]))
    opt = Adagrad([q], lr=0.1, lr_decay=0.5, eps=0.0)
    q.grad[...] = 2.0
    opt.step()  # G = 4 → d = 1
    q.grad[...] = 1.0
    opt.step()  # G = 5, lr 0.1 / 1.5
    np.testing.assert_allclose(q.data, [1.0 - 0.1 - 0.1 / 1.5 / np.sqrt(5)], rtol=1e-14)


@given(seed=seeds, t=st.integers(1, 50))
def test_adam_direction_obeys_the_cauchy_schwarz_bound(seed, t):
    """Whatever the gradients, m = Σ w_k g_k and v = Σ u_k g_k² (w_k = (1-β₁)β₁ᵏ,
    u_k = (1-β₂)β₂ᵏ) give |m| ≤ √(Σ w_k²/u_k) √v, so with ε = 0
    |d| ≤ (1-β₁)/√(1-β₂) · √(1-β₂ᵗ)/(1-β₁ᵗ) · √(Σ_{k<t} (β₁²/β₂)ᵏ)  (= 1 at t = 1)."""
    b1, b2 = 0.9, 0.999
    rng = np.random.default_rng(seed)
    state = {}
    for _ in range(t):
        d = adam_direction(rng.normal(size=5) * 10.0 ** rng.uniform(-3, 3), state, b1, b2, 0.0, False)
    S = sum((b1 * b1 / b2) ** k for k in range(t))
    bound = (1 - b1) / np.sqrt(1 - b2) * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * np.sqrt(S)
    assert np.all(np.abs(d) <= bound * (1 + 1e-12))
    assert state["step"] == t


def test_optimizer_by_name_and_repr():
    p = [Parameter(np.zeros(2))]
    for name, cls in [("sgd", SGD), ("Adam", Adam), ("ADAMW", AdamW), ("rmsprop", RMSprop), ("adagrad", Adagrad)]:
        opt = optimizer_by_name(name, p, lr=0.5)
        assert type(opt) is cls and opt.lr == 0.5 and f"lr={0.5}" in repr(opt)
    assert AdamW(p).weight_decay == 0.01 and Adam(p).weight_decay == 0.0
    with pytest.raises(ValueError, match="unknown optimiser 'lbfgs'"):
        optimizer_by_name("lbfgs", p)


@pytest.mark.parametrize("make, match", [
    (lambda p: Adam(p, betas=(1.0, 0.999)), "beta1"),
    (lambda p: Adam(p, betas=(0.9,)), "betas must be a pair"),
    (lambda p: AdamW(p, weight_decay=-1), "weight_decay"),
    (lambda p: Adam(p, lr=0), "learning rate must be positive"),
    (lambda p: RMSprop(p, alpha=1.5), "alpha"),
    (lambda p: RMSprop(p, momentum=-0.1), "momentum"),
    (lambda p: Adagrad(p, lr_decay=-1), "lr_decay"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
])
def test_bad_hyperparameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(2))])


PAPER_AND_IN_PLACE = [
    (adam_direction, adam_direction_in_place, dict(beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=False)),
    (adam_direction, adam_direction_in_place, dict(beta1=0.8, beta2=0.99, eps=1e-6, amsgrad=True)),
    (rmsprop_direction, rmsprop_direction_in_place, dict(alpha=0.99, eps=1e-8, momentum=0.0, centered=False)),
    (rmsprop_direction, rmsprop_direction_in_place, dict(alpha=0.9, eps=1e-8, momentum=0.5, centered=True)),
    (adagrad_direction, adagrad_direction_in_place, dict(lr_decay=0.01, eps=1e-10, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("paper, in_place, kwargs", PAPER_AND_IN_PLACE,
                         ids=[f"{p.__name__}-{i}" for i, (p, _, _) in enumerate(PAPER_AND_IN_PLACE)])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_in_place_direction_computes_the_papers_lines(paper, in_place, kwargs, dtype, rtol):
    """The optimisers' in-place twins (optim/in_place.py) against the paper forms they
    speed up, over 300 steps of gradients of varying size with exact zeros: the same
    directions and the same state.  Tolerance: the two orders of operations round
    differently (a few ulps a step), and an entry of m near 0 carries the rounding of
    terms of size |g|, so the absolute tolerance is relative to the direction's scale."""
    rng = np.random.default_rng(7)
    paper_state, in_place_state = {}, {}
    for _ in range(300):
        g = (rng.normal(size=(6, 5)) * 10.0 ** rng.uniform(-3, 1) * (rng.random((6, 5)) > 0.1)).astype(dtype)
        expected = paper(g, paper_state, **kwargs)
        got = in_place(g, in_place_state, **kwargs, out=np.empty_like(g))
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    assert paper_state.keys() == in_place_state.keys()
    for key, value in paper_state.items():
        np.testing.assert_allclose(in_place_state[key], value, rtol=rtol, atol=rtol * np.abs(value).max())
