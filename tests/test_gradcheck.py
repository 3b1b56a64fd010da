"""tinygrad_mnist.check.gradcheck: central differences, the report, and the ``gradcheck`` command."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from hypothesis import given

from tinygrad_mnist.check.gradcheck import (
    check_jacobian,
    check_model,
    check_module,
    noise_floor,
    numerical_gradient,
    numerical_jacobian,
    relative_error,
)
from tinygrad_mnist.cli.gradcheck import add_parser
from tinygrad_mnist.models import mlp
from tinygrad_mnist.nn.linear import Linear
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy

from .strategies import float_arrays


@given(x=float_arrays((3, 4)), a=float_arrays((3, 4)))
def test_central_differences_are_exact_for_a_quadratic_and_restore_the_input(x, a):
    original = x.copy()
    grad = numerical_gradient(lambda: float(np.sum(a * x * x)), x, eps=1e-3)
    # (f(x+ε) − f(x−ε)) / 2ε = 2 a x exactly for a quadratic: only rounding remains
    np.testing.assert_allclose(grad, 2 * a * x, rtol=0, atol=1e-9 * (1 + np.abs(a * x * x).sum()))
    np.testing.assert_array_equal(x, original)


def test_numerical_jacobian_of_a_linear_map_is_the_matrix():
    A = np.random.default_rng(0).standard_normal((3, 5))
    x = np.random.default_rng(1).standard_normal(5)
    np.testing.assert_allclose(numerical_jacobian(lambda: A @ x, x), A, rtol=1e-9, atol=1e-10)
    cols = numerical_jacobian(lambda: A @ x, x, indices=np.array([4, 1]))
    np.testing.assert_allclose(cols, A[:, [4, 1]], rtol=1e-9, atol=1e-10)


def test_relative_error_is_measured_against_the_largest_entry_and_the_floor():
    assert relative_error(np.array([1.0, 0.0]), np.array([1.0, 1e-9])) == pytest.approx(1e-9)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1e-12]), np.array([0.0]), floor=1e-6) == pytest.approx(1e-6)
    assert noise_floor(1.0, eps=1e-6, tol=1e-6) == pytest.approx(4 * np.finfo(float).eps * 1e12)


def _model():
    return mlp((6, 4, 3), "tanh", seed=0, dtype=np.float64)


def _batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (3, 6)), np.array([0, 2, 1])


def test_a_correct_model_passes_and_the_table_names_every_array():
    model = _model()
    x, y = _batch()
    report = check_model(model, SoftmaxCrossEntropy(), x, y)
    assert report.passed and report.max_rel_error < 1e-6
    text = str(report)
    for name in ("input", "0.weight", "0.bias", "2.weight", "2.bias", "PASSED"):
        assert name in text
    assert report["0.weight"].shape == (4, 6) and report["0.weight"].checked == 24


class _OneWrongEntry(Linear):
    """A Linear whose weight gradient is off by 1e-3 at entry (2, 1)."""

    def backward(self, grad_out):
        gx = super().backward(grad_out)
        self.weight.grad[2, 1] += 1e-3
        return gx


def test_the_report_names_the_parameter_the_worst_index_and_both_values():
    layer = _OneWrongEntry(5, 4, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((2, 5))
    g = np.random.default_rng(2).standard_normal((2, 4))
    report = check_module(layer, x, g)
    assert not report.passed
    (bad,) = report.failures
    assert bad.name == "weight" and bad.index == (2, 1)
    assert bad.analytic - bad.numeric == pytest.approx(1e-3, rel=1e-6)
    expected = float(g[:, 2] @ x[:, 1])
    assert bad.numeric == pytest.approx(expected, rel=1e-8)
    text = str(report)
    assert "FAILED: 1 of 3 arrays" in text and "(2, 1)" in text and f"{bad.analytic:.9e}" in text


def test_checks_refuse_float32_and_leave_gradients_and_inputs_alone():
    model = _model()
    x, y = _batch()
    with pytest.raises(TypeError, match="float64"):
        check_model(mlp((6, 4, 3), "tanh", seed=0), SoftmaxCrossEntropy(), x.astype(np.float32), y)
    for p in model.parameters():
        p.grad[...] = 7.0
    x_copy = x.copy()
    check_model(model, SoftmaxCrossEntropy(), x, y)
    assert all(np.all(p.grad == 7.0) for p in model.parameters())
    np.testing.assert_array_equal(x, x_copy)


def test_max_checks_samples_entries_per_array():
    model = _model()
    x, y = _batch()
    report = check_model(model, SoftmaxCrossEntropy(), x, y, max_checks=5)
    assert [c.checked for c in report.checks] == [5, 5, 4, 5, 3]


def test_check_jacobian_reports_a_wrong_shape_and_missing_entries():
    class NoBias(Linear):
        def jacobian(self, x):
            jac = super().jacobian(x)
            del jac["bias"]
            return jac

    with pytest.raises(KeyError, match="bias"):
        check_jacobian(NoBias(2, 3, dtype=np.float64), np.ones(2))


def _cli(argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["gradcheck", *argv])
    return args.func(args)


def test_command_line_passes_prints_a_table_and_fails_with_exit_1(capsys):
    assert _cli(["--in-features", "12", "--hidden", "5", "4", "--batch", "3", "--activation", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "0.weight" in out and "(5, 12)" in out
    # a huge step: truncation error O(ε²) far above the tolerance, so the check must fail
    assert _cli(["--in-features", "12", "--hidden", "5", "--eps", "0.5"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert _cli(["--in-features", "8", "--hidden", "3", "--output", "softmax", "--loss", "mse",
                 "--reduction", "sum", "--activation", "relu"]) == 0
    with pytest.raises(ValueError, match="--batch"):
        _cli(["--batch", "0"])


def test_command_line_checks_the_course_cnn():
    assert _cli(["--model", "course-cnn", "--image-size", "8", "--channels", "2", "2", "3", "--batch", "2",
                 "--max-checks", "20"]) == 0
