"""Learning-rate schedules against torch.optim.lr_scheduler, epoch by epoch, and inside fit."""

import numpy as np
import pytest

from tinygrad_mnist.nn.module import Parameter
from tinygrad_mnist.optim import SGD, Adam
from tinygrad_mnist.optim.schedules import CosineAnnealingLR, LinearWarmup, StepLR, schedule_by_name


def opt(lr=0.1):
    return SGD([Parameter(np.zeros(2))], lr=lr)


def our_rates(make, epochs, lr=0.1):
    o = opt(lr)
    sched = make(o)
    rates = [o.lr]
    for _ in range(epochs):
        sched.step()
        rates.append(o.lr)
    return rates


def torch_rates(make, epochs, lr=0.1):
    torch = pytest.importorskip("torch")
    o = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr)
    sched = make(torch.optim.lr_scheduler, o)
    rates = [o.param_groups[0]["lr"]]
    for _ in range(epochs):
        o.step()
        sched.step()
        rates.append(o.param_groups[0]["lr"])
    return rates


def assert_same_rates(ours, theirs, lr):
    """Closed forms here, torch's recursive forms there: equal up to rounding."""
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15 * lr)


@pytest.mark.parametrize("step_size, gamma", [(1, 0.5), (3, 0.1), (7, 0.9)])
def test_step_lr_matches_torch(step_size, gamma):
    ours = our_rates(lambda o: StepLR(o, step_size, gamma), 30)
    theirs = torch_rates(lambda S, o: S.StepLR(o, step_size, gamma), 30)
    assert_same_rates(ours, theirs, 0.1)
    assert ours[step_size] == pytest.approx(0.1 * gamma) and ours[step_size - 1] == 0.1


@pytest.mark.parametrize("T_max, eta_min, lr", [(10, 0.0, 0.1), (7, 1e-3, 0.5), (1, 0.0, 1.0), (25, 0.01, 0.03)])
def test_cosine_matches_torch_including_past_t_max(T_max, eta_min, lr):
    ours = our_rates(lambda o: CosineAnnealingLR(o, T_max, eta_min), 3 * T_max, lr)
    theirs = torch_rates(lambda S, o: S.CosineAnnealingLR(o, T_max, eta_min), 3 * T_max, lr)
    assert_same_rates(ours, theirs, lr)
    assert ours[0] == lr and ours[T_max] == pytest.approx(eta_min, abs=1e-15)
    assert ours[2 * T_max] == pytest.approx(lr)  # the cosine comes back up, as torch's


@pytest.mark.parametrize("warmup, start_factor", [(1, None), (5, None), (4, 0.25)])
def test_warmup_alone_matches_torch_linear_lr(warmup, start_factor):
    f = 1 / (warmup + 1) if start_factor is None else start_factor
    ours = our_rates(lambda o: LinearWarmup(o, warmup, start_factor=start_factor), 12)
    theirs = torch_rates(lambda S, o: S.LinearLR(o, start_factor=f, end_factor=1.0, total_iters=warmup), 12)
    assert_same_rates(ours, theirs, 0.1)
    if start_factor is None:  # the default ramp base·(e + 1)/(W + 1)
        np.testing.assert_allclose(ours[:warmup + 1], 0.1 * np.arange(1, warmup + 2) / (warmup + 1))


@pytest.mark.parametrize("after", ["cosine", "step"])
def test_warmup_then_schedule_matches_torch_sequential_lr(after):
    W, E = 3, 25
    f = 1 / (W + 1)

    def ours_make(o):
        inner = CosineAnnealingLR(o, T_max=10) if after == "cosine" else StepLR(o, 4, 0.5)
        return LinearWarmup(o, W, after=inner)

    def torch_make(S, o):
        inner = S.CosineAnnealingLR(o, T_max=10) if after == "cosine" else S.StepLR(o, 4, 0.5)
        return S.SequentialLR(o, [S.LinearLR(o, start_factor=f, total_iters=W), inner], milestones=[W])

    ours = our_rates(ours_make, E)
    assert_same_rates(ours, torch_rates(torch_make, E), 0.1)
    assert ours[W] == pytest.approx(0.1)


def test_schedule_by_name():
    o = opt(0.2)
    assert schedule_by_name("none", o) is None and schedule_by_name(None, o) is None
    assert isinstance(schedule_by_name("step", o, step_size=2), StepLR)
    s = schedule_by_name("Cosine", o, T_max=10, warmup_steps=2)
    assert isinstance(s, LinearWarmup) and isinstance(s.after, CosineAnnealingLR)
    assert s.base_lr == 0.2 and o.lr == pytest.approx(0.2 / 3)
    assert isinstance(schedule_by_name("warmup", o, warmup_steps=4), LinearWarmup)
    assert isinstance(schedule_by_name("none", o, warmup_steps=4), LinearWarmup)
    with pytest.raises(ValueError, match="unknown schedule 'exp'"):
        schedule_by_name("exp", o)
    with pytest.raises(ValueError, match="warmup_steps must be a positive integer"):
        schedule_by_name("warmup", o)


@pytest.mark.parametrize("make, match", [
    (lambda o: StepLR(o, 0), "step_size must be a positive integer"),
    (lambda o: StepLR(o, 2, gamma=0), "gamma must be positive"),
    (lambda o: CosineAnnealingLR(o, 2.5), "T_max must be a positive integer"),
    (lambda o: CosineAnnealingLR(o, 3, eta_min=-1), "eta_min"),
    (lambda o: LinearWarmup(o, 2, start_factor=0), "start_factor"),
    (lambda o: LinearWarmup(o, 2, after=StepLR(opt(), 2)), "same optimiser"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make(opt())


def test_state_dict_resume_and_lr_at():
    o = opt()
    s = CosineAnnealingLR(o, 10)
    for _ in range(4):
        s.step()
    saved = s.state_dict()
    o2 = opt()
    s2 = CosineAnnealingLR(o2, 10)
    s2.load_state_dict(saved)
    assert o2.lr == o.lr == s.get_last_lr()[0] == s.lr_at(4)
    s.step(), s2.step()
    assert o2.lr == o.lr
    with pytest.raises(TypeError, match="optimiser with an `lr`"):
        StepLR(object(), 2)


def test_the_optimizer_steps_with_the_scheduled_rate():
    """Adam with a schedule follows torch's Adam with torch's schedule, step by step."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p = Parameter(rng.normal(size=5))
    t = torch.tensor(p.data.copy(), requires_grad=True)
    ours, theirs = Adam([p], lr=0.05), torch.optim.Adam([t], lr=0.05)
    s = LinearWarmup(ours, 2, after=CosineAnnealingLR(ours, 6))
    S = torch.optim.lr_scheduler
    ts = S.SequentialLR(theirs, [S.LinearLR(theirs, 1 / 3, total_iters=2), S.CosineAnnealingLR(theirs, 6)], [2])
    for _epoch in range(8):
        for _ in range(5):
            g = rng.normal(size=5)
            p.grad[...] = g
            t.grad = torch.tensor(g)
            ours.step()
            theirs.step()
        s.step()
        ts.step()
    np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12)


def test_fit_steps_the_schedule_once_per_epoch():
    from tinygrad_mnist.data import Dataset
    from tinygrad_mnist.nn.linear import Linear
    from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy
    from tinygrad_mnist.nn.module import Sequential
    from tinygrad_mnist.train import fit

    rng = np.random.default_rng(0)
    data = Dataset(rng.integers(0, 256, (40, 2, 2), dtype=np.uint8), rng.integers(0, 2, 40), "tiny", 2)
    model = Sequential(Linear(4, 2))
    o = SGD(model.parameters(), lr=0.1)
    seen = []
    fit(model, SoftmaxCrossEntropy(), o, data, epochs=5, batch_size=8, scheduler=StepLR(o, 2, 0.5),
        callbacks=[lambda epoch, h: seen.append(o.lr)], progress=False)
    assert seen == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025])  # after epochs 1..5
