"""Initialisers: bounds and variance statistically, seeds, names and errors."""

import math

import numpy as np
import pytest

from tinygrad_mnist import Linear, initializer
from tinygrad_mnist.nn.init import INITIALIZERS, fans

SHAPE = (400, 300)  # 120,000 samples: the sample std is within ~0.5% of the true one
FAN_IN, FAN_OUT = 300, 400


def draw(name, dtype=np.float64, seed=0, **kw):
    return initializer(name, **kw)(SHAPE, np.random.default_rng(seed), dtype=dtype)


def test_fans_follow_torch_for_linear_and_conv():
    assert fans((400, 300)) == (300, 400)
    assert fans((16, 8, 3, 3)) == (8 * 9, 16 * 9)


@pytest.mark.parametrize("name, bound", [
    ("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("he_uniform", math.sqrt(6 / FAN_IN)),
])
def test_uniform_initializers_bounds_and_variance(name, bound):
    w = draw(name)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # the whole interval is used
    # Var U(-d, d) = d²/3; relative standard error of the sample variance ≈ 0.3% here.
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * w.size)


@pytest.mark.parametrize("name, kw, std", [
    ("normal", {"std": 0.1}, 0.1),
    ("normal", {"std": 1.0}, 1.0),
    ("glorot_normal", {}, math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("he_normal", {}, math.sqrt(2 / FAN_IN)),
])
def test_normal_initializers_std(name, kw, std):
    w = draw(name, **kw)
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    # Gaussian tails: about 0.27% beyond 3σ.
    assert 0.001 < np.mean(np.abs(w) > 3 * std) < 0.005


def test_zeros_and_dtypes():
    assert not draw("zeros").any()
    assert draw("glorot_uniform", dtype=np.float32).dtype == np.float32


def test_same_seed_same_weights_different_seed_different_weights():
    np.testing.assert_array_equal(draw("he_normal", seed=3), draw("he_normal", seed=3))
    assert not np.array_equal(draw("he_normal", seed=3), draw("he_normal", seed=4))
    a, b = Linear(5, 4, init="normal", init_kwargs={"std": 0.1}, seed=7), Linear(5, 4, init="normal",
                                                                              init_kwargs={"std": 0.1}, seed=7)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not a.bias.data.any()


def test_aliases_resolve_to_the_paper_defaults(capsys):
    assert initializer("xavier") is INITIALIZERS["glorot_uniform"]
    assert initializer("kaiming") is INITIALIZERS["he_normal"]
    assert initializer("Kaiming-Uniform") is INITIALIZERS["he_uniform"]
    err = capsys.readouterr().err
    assert "'xavier' is deprecated; it now means 'glorot_uniform'" in err and err.count("note:") == 3


def test_unknown_name_and_missing_generator_are_clear_errors():
    with pytest.raises(ValueError, match="unknown initialiser 'gloriot'"):
        initializer("gloriot")
    with pytest.raises(TypeError, match="np.random.Generator"):
        initializer("normal")((2, 2), 0)
    with pytest.raises(ValueError, match="std must be non-negative"):
        draw("normal", std=-1.0)
