"""The torch baselines' training options by name: device, optimiser, schedule, penalty, loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_mnist.nn.losses import CrossEntropy, SoftmaxCrossEntropy

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from torch_baselines import train, utils  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# -- devices, optimisers, schedules, penalties -----------------------------------------
def test_resolve_device():
    assert utils.resolve_device("cpu") == torch.device("cpu")
    assert utils.resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="expected 'auto', 'cpu' or 'cuda"):
        utils.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no CUDA device"):
            utils.resolve_device("cuda")


@pytest.mark.parametrize("name,cls,extra", [
    ("sgd", torch.optim.SGD, {"momentum": 0.0}), ("momentum", torch.optim.SGD, {"momentum": 0.9}),
    ("nesterov", torch.optim.SGD, {"nesterov": True}), ("adam", torch.optim.Adam, {}),
    ("adamw", torch.optim.AdamW, {}), ("rmsprop", torch.optim.RMSprop, {}), ("adagrad", torch.optim.Adagrad, {}),
])
def test_optimizer_by_name(name, cls, extra):
    opt = train.optimizer_by_name(name, nn.Linear(2, 2).parameters(), lr=0.01, weight_decay=1e-4)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.01 and group["weight_decay"] == 1e-4
    assert all(group[k] == v for k, v in extra.items())


def test_unknown_optimizer_and_schedule():
    with pytest.raises(ValueError, match="unknown optimiser 'lbfgs2'"):
        train.optimizer_by_name("lbfgs2", nn.Linear(2, 2).parameters(), lr=0.1)
    opt = train.optimizer_by_name("sgd", nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown schedule 'cyclic'"):
        train.schedule_by_name("cyclic", opt, epochs=3)
    assert train.schedule_by_name("none", opt, epochs=3) is None


@pytest.mark.parametrize("name,kwargs,expected", [
    ("step", {"step_size": 2, "gamma": 0.5}, [1.0, 1.0, 0.5, 0.5, 0.25]),
    ("exponential", {"gamma": 0.5}, [1.0, 0.5, 0.25, 0.125, 0.0625]),
    ("cosine", {}, [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0]),
    ("warmup", {"warmup_epochs": 2, "warmup_start": 0.1}, [0.1, 0.55, 1.0, 1.0, 1.0]),
    # one warm-up epoch, then cosine over the remaining 4 (as "cosine" over 4 above)
    ("warmup_cosine", {"warmup_epochs": 1, "warmup_start": 0.5},
     [0.5, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]),
])
def test_schedules_per_epoch(name, kwargs, expected):
    opt = train.optimizer_by_name("sgd", nn.Linear(2, 2).parameters(), lr=1.0)
    epochs = 4 if name == "cosine" else 5
    sched = train.schedule_by_name(name, opt, epochs=epochs, **kwargs)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(expected, abs=1e-12)


def test_penalty_values_and_gradient():
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64, requires_grad=True)
    value = train.penalty([w], l1=0.001, l2=0.01)
    assert value.item() == pytest.approx(0.001 * 3.5 + 0.01 * 5.25, rel=1e-15)
    value.backward()
    torch.testing.assert_close(w.grad, 0.001 * torch.sign(w.detach()) + 2 * 0.01 * w.detach())


def test_loss_by_name_matches_the_numpy_losses():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    y = rng.integers(0, 4, size=5)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    zt, yt, pt = torch.from_numpy(z), torch.from_numpy(y), torch.from_numpy(p)
    expected = SoftmaxCrossEntropy().forward(z, y)
    assert train.loss_by_name("cross_entropy")(zt, yt).item() == pytest.approx(expected, rel=1e-12)
    assert train.loss_by_name("cross_entropy_probs", "sum")(pt, yt).item() == pytest.approx(
        CrossEntropy(reduction="sum").forward(p, y), rel=1e-12)
    from tinygrad_mnist.nn.losses import MSELoss

    assert train.loss_by_name("mse")(pt, yt).item() == pytest.approx(MSELoss().forward(p, y), rel=1e-12)
    with pytest.raises(ValueError, match="unknown loss"):
        train.loss_by_name("hinge")
