"""The byte and flop models of ``bench --profile`` (benchmarks/bandwidth.py) and the copy
bandwidth of benchmarks/machine.py.  No speed is asserted."""

import numpy as np
import pytest

from benchmarks.bandwidth import gemm_flop_counts, gemm_ms_by_phase, phase_bytes, phase_rows
from benchmarks.machine import cache_sizes, copy_bandwidth_gbs, out_of_cache_bytes
from benchmarks.models import gemm_flops_per_sample, model_by_name
from benchmarks.profile import gemm_calls
from tinygrad_mnist import Conv2d, Flatten, Linear, MaxPool2d, ReLU


def _course_cnn_shapes(batch):
    model = model_by_name("course-cnn").build_numpy()
    x = np.zeros((batch, 1, 28, 28), np.float32)
    shapes, c_ordered = [], []
    for layer in model:
        shapes.append(x.shape)
        c_ordered.append(bool(x.flags.c_contiguous))
        x = layer.forward(x)
    return list(model), shapes, c_ordered, x.shape


def test_gemm_flops_add_up_to_the_models_flops_per_sample():
    layers, shapes, _, _ = _course_cnn_shapes(8)
    flops = gemm_flop_counts(layers, shapes)
    assert set(flops) == {label for label, _ in gemm_calls(layers, shapes)}
    assert sum(flops.values()) == 8 * model_by_name("course-cnn").gemm_flops_per_sample()
    assert gemm_flops_per_sample(model_by_name("course-cnn").layers()) > 0


def test_conv_forward_bytes_follow_the_im2col_shapes():
    conv = Conv2d(8, 16, 3, padding=1)
    n = 4
    # x (4, 8, 14, 14); padded (8, 16, 16, 4); cols (72, 14·14·4); y (16, 14·14·4)
    s, padded, k, m, o = 4 * 8 * 14 * 14, 8 * 16 * 16 * n, 72, 14 * 14 * n, 16
    assert phase_bytes(conv, (n, 8, 14, 14), (n, 16, 14, 14), "forward") == 4 * (s + 2 * padded + k * m + 2 * o * m)
    assert phase_bytes(conv, (n, 8, 14, 14), (n, 16, 14, 14), "backward") == 4 * (o * m + k * m + padded)
    first = Conv2d(8, 16, 3, padding=1, needs_input_grad=False)
    assert phase_bytes(first, (n, 8, 14, 14), (n, 16, 14, 14), "backward") == 4 * o * m


def test_elementwise_layer_bytes():
    shape, pooled = (2, 3, 4, 4), (2, 3, 2, 2)
    assert phase_bytes(ReLU(), shape, shape, "forward", itemsize=8) == 2 * 8 * 96
    assert phase_bytes(ReLU(), shape, shape, "backward") == 3 * 4 * 96
    assert phase_bytes(MaxPool2d(2), shape, pooled, "forward") == 4 * 96 + 5 * 24
    assert phase_bytes(Flatten(), shape, (2, 48), "forward") == 2 * 4 * 96
    assert phase_bytes(Flatten(), shape, (2, 48), "forward", input_c_ordered=True) == 0
    assert phase_bytes(Linear(48, 10), (2, 48), (2, 10), "backward") == 4 * 20
    with pytest.raises(ValueError, match="direction"):
        phase_bytes(ReLU(), shape, shape, "sideways")


def test_phase_rows_take_each_layers_gemms_out_of_its_time():
    layers, shapes, c_ordered, out_shape = _course_cnn_shapes(2)
    rows = [{"layer": f"{i} {type(m).__name__}", "numpy_forward_ms": 1.0, "numpy_backward_ms": 2.0}
            for i, m in enumerate(layers)]
    gemms = {label: 0.25 for label, _ in gemm_calls(layers, shapes)}
    assert gemm_ms_by_phase(gemms)[(3, "backward")] == 0.5  # dW and dcols
    split = {"gemms": gemms, "loss_ms": 0.1, "optimiser_ms": 0.2, "data_ms": 0.3}
    n_params = sum(p.data.size for layer in layers for p in layer.parameters())
    phases = {p["phase"]: p for p in phase_rows(layers, shapes, c_ordered, out_shape, rows, split, n_params)}
    assert phases["0 Conv2d forward"]["ms"] == 0.75
    assert phases["0 Conv2d backward"]["ms"] == 1.75   # no input gradient for the data
    assert phases["3 Conv2d backward"]["ms"] == 1.5
    assert phases["1 ReLU backward"]["ms"] == 2.0
    assert "8 Flatten backward" not in phases            # a reshape moves no bytes
    assert phases["optimiser"]["bytes"] == 7 * 4 * n_params
    p = phases["2 MaxPool2d forward"]
    assert p["gb_per_s"] == pytest.approx(p["bytes"] / 1e6)


def test_copy_bandwidth_and_cache_sizes_are_plausible():
    assert copy_bandwidth_gbs(1 << 16, repeats=3) > 0
    sizes = cache_sizes()
    assert all(v > 0 for v in sizes.values())
    assert 64 * 2**20 <= out_of_cache_bytes() <= 2**30
    assert out_of_cache_bytes(cap=2**26) <= 2**26
