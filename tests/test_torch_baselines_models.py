"""The torch baselines' architectures: parameter counts, layer shapes, builders, seeding, init.

Parameter counts are worked out by hand in the comments (conv: C_out·C_in·k² + C_out;
linear: out·in + out; batch norm: 2·C).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.models import CLASSIC_MLP, CourseCNNSpec, MLPSpec, build_mlp

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from torch_baselines import models, utils  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# -- architectures and exact parameter counts ------------------------------------------
COUNTS = {
    # 1·8·9+8 = 80; 8·16·9+16 = 1,168; 16·32·9+32 = 4,640; 32·7·7·10+10 = 15,690 → 21,578
    "course": (lambda: models.build_course_cnn(), 21_578, [80, 1_168, 4_640, 15_690]),
    "course-tanh-pool-first": (lambda: models.build_course_cnn(CourseCNNSpec("tanh", pool_first=True)),
                               21_578, [80, 1_168, 4_640, 15_690]),
    "course-sigmoid": (lambda: models.build_course_cnn(CourseCNNSpec("sigmoid")), 21_578, None),
    # residual blocks of 2: stage 1: 80 + (8·8·9+8 = 584) + 1×1 projection (1·8+8 = 16) = 680;
    # stage 2: 1,168 + (16·16·9+16 = 2,320) + (8·16+16 = 144) = 3,632;
    # stage 3: 4,640 + (32·32·9+32 = 9,248) + (16·32+32 = 544) = 14,432; fc 15,690 → 34,434
    "course-residual2": (lambda: models.build_course_cnn(CourseCNNSpec(residual_depth=2)), 34_434,
                         [80, 584, 16, 1_168, 2_320, 144, 4_640, 9_248, 544, 15_690]),
    # one more same-width conv per stage: + 584 + 2,320 + 9,248 = 12,152 → 46,586
    "course-residual3": (lambda: models.build_course_cnn(CourseCNNSpec(residual_depth=3)), 46_586, None),
    # 28 → conv5 → 24 → pool → 12 → conv5 → 8 → pool → 4: 1·6·25+6 = 156; 6·16·25+16 = 2,416;
    # 16·4·4·120+120 = 30,840; 120·84+84 = 10,164; 84·10+10 = 850 → 44,426
    "lenet": (lambda: models.LeNet(), 44_426, [156, 2_416, 30_840, 10_164, 850]),
    # padding 2: 32 → 28 → 14 → 10 → 5: fc1 16·5·5·120+120 = 48,120 → 61,706
    "lenet-pad2": (lambda: models.LeNet(padding=2), 61_706, [156, 2_416, 48_120, 10_164, 850]),
    # 64·32+32 = 2,080; 32·10+10 = 330 → 2,410
    "simple-mlp": (lambda: models.SimpleMLP(), 2_410, [2_080, 330]),
    # 64·128+128 = 8,320; BN 256; 128·64+64 = 8,256; BN 128; 64·10+10 = 650 → 17,610
    "complex-mlp": (lambda: models.ComplexMLP(), 17_610, [8_320, 256, 8_256, 128, 650]),
    # 784·64+64 = 50,240; 64·10+10 = 650 → 50,890
    "classic-mlp": (lambda: models.build_mlp(CLASSIC_MLP), 50_890, [50_240, 650]),
    # widths (15, 30, 60): 150 + 4,080 + 16,260 + 60·49·10+10 = 29,410 → 49,900 (within 2% of 50,890)
    "matched-cnn": (lambda: models.build_param_matched_cnn(CLASSIC_MLP), 49_900, [150, 4_080, 16_260, 29_410]),
}
INPUTS = {"simple-mlp": (64,), "complex-mlp": (64,), "classic-mlp": (784,)}


@pytest.mark.parametrize("name", list(COUNTS))
def test_parameter_counts_and_output_shape(name):
    build, total, per_layer = COUNTS[name]
    model = build()
    rows, counted = utils.parameter_rows(model)
    assert utils.num_parameters(model) == counted
    assert counted == total == sum(p.numel() for p in model.parameters())
    if per_layer is not None:
        assert [r["parameters"] for r in rows] == per_layer
    descs = getattr(model, "layer_descs", None)
    if descs is not None:
        assert models.num_parameters(descs) == total
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros((3, *INPUTS.get(name, (1, 28, 28)))))
    assert out.shape == (3, 10)


def test_course_cnn_layer_by_layer_shapes_and_description_count():
    spec = CourseCNNSpec()
    assert models.num_parameters(spec.layers()) == 21_578
    model = models.build_course_cnn(spec)
    x = torch.zeros(2, 1, 28, 28)
    shapes = []
    for m in model:
        x = m(x)
        shapes.append(tuple(x.shape))
    assert shapes == [(2, 8, 28, 28), (2, 8, 28, 28), (2, 8, 14, 14), (2, 16, 14, 14), (2, 16, 14, 14),
                      (2, 16, 7, 7), (2, 32, 7, 7), (2, 32, 7, 7), (2, 1568), (2, 10)]
    assert [type(m).__name__ for m in model] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                                                 "Conv2d", "ReLU", "Flatten", "Linear"]


def test_pool_first_puts_each_pool_before_its_activation():
    model = models.build_course_cnn(CourseCNNSpec("sigmoid", pool_first=True, output="softmax"))
    assert [type(m).__name__ for m in model] == ["Conv2d", "MaxPool2d", "Sigmoid", "Conv2d", "MaxPool2d", "Sigmoid",
                                                 "Conv2d", "Sigmoid", "Flatten", "Linear", "Softmax"]
    probs = model(torch.rand(4, 1, 28, 28))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(4))


def test_residual_computes_block_plus_projection_and_registers_block_first():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh())
    proj = nn.Conv2d(2, 4, 1)
    res = models.Residual(block, proj)
    x = torch.randn(3, 2, 5, 5)
    torch.testing.assert_close(res(x), block(x) + proj(x), rtol=0, atol=0)
    assert [n for n, _ in res.named_parameters()] == ["block.0.weight", "block.0.bias",
                                                      "projection.weight", "projection.bias"]
    same = models.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1)))
    y = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(same(y), same.block(y) + y, rtol=0, atol=0)


def test_residual_description_uses_a_projection_only_where_channels_change():
    spec = CourseCNNSpec(residual_depth=2, channels=(8, 8, 16))
    model = models.build_course_cnn(spec)
    residuals = [m for m in model if isinstance(m, models.Residual)]
    assert [r.projection is None for r in residuals] == [False, True, False]  # 1→8, 8→8, 8→16
    assert len(residuals[0].block) == 4  # conv, act, conv, act


def test_build_errors_name_the_layer():
    from tinygrad_mnist.models import LayerDesc

    with pytest.raises(ValueError, match="unknown layer kind 'lstm'"):
        models.build([LayerDesc.make("lstm")])
    with pytest.raises(ValueError, match="'linear' is missing the argument 'out_features'"):
        models.build([LayerDesc.make("linear", in_features=3)])
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        models.build([LayerDesc.make("activation", name="gelu")])
    with pytest.raises(TypeError, match="expected a LayerDesc"):
        models.build([nn.ReLU()])


def test_build_seed_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = models.build_course_cnn(seed=7)
    assert torch.equal(torch.rand(3), expected_next)
    b = models.build_course_cnn(seed=7)
    c = models.build_course_cnn(seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


@pytest.mark.parametrize("init,kwargs,expected_std", [
    ("normal", {"std": 0.1}, 0.1),
    ("xavier_uniform", {}, math.sqrt(2 / (784 + 256))),  # U(±√(6/(in+out))): std √(2/(in+out))
    ("glorot_normal", {}, math.sqrt(2 / (784 + 256))),
    ("kaiming_uniform", {}, math.sqrt(2 / 784)),        # U(±√(6/in)): std √(2/in)
    ("he_normal", {}, math.sqrt(2 / 784)),
])
def test_torch_mlp_initialization_follows_the_spec(init, kwargs, expected_std):
    spec = MLPSpec((784, 256, 10), "relu", "logits", init, kwargs)
    model = models.build_mlp(spec, seed=0)
    w = model[0].weight.detach()
    # 200,704 draws: the sample std is within ~0.5% of the true one
    assert abs(w.std().item() / expected_std - 1) < 0.02
    assert torch.count_nonzero(model[0].bias) == 0 and torch.count_nonzero(model[2].bias) == 0
    # the numpy engine draws from the same distribution (not the same numbers)
    np_w = build_mlp(spec, seed=0)[0].weight.data
    assert abs(np_w.std() / expected_std - 1) < 0.02
    assert torch.equal(w, models.build_mlp(spec, seed=0)[0].weight)
    assert not torch.equal(w, models.build_mlp(spec, seed=1)[0].weight)


def test_mlp_twin_has_the_numpy_structure():
    spec = MLPSpec((784, 32, 16, 10), "tanh", "softmax")
    np_model, t_model = build_mlp(spec), models.build_mlp(spec)
    assert [type(m).__name__ for m in np_model] == [type(m).__name__ for m in t_model]
    assert [(n, p.shape) for n, p in np_model.named_parameters()] == \
           [(n, tuple(p.shape)) for n, p in t_model.named_parameters()]


@given(target=st.integers(1_100, 2_000_000))
def test_param_matched_cnn_is_within_ten_percent(target):
    spec = models.param_matched_cnn_spec(target)
    count = models.num_parameters(spec.layers())
    assert abs(count - target) <= 0.10 * target
    c1, c2, c3 = spec.channels
    assert c2 == 2 * c1 and 2 * c1 <= c3 <= 8 * c1


def test_param_matched_cnn_for_the_digits_mlps_and_errors():
    for mlp in (models.SimpleMLP(), models.ComplexMLP()):
        target = sum(p.numel() for p in mlp.parameters())
        model = models.build_course_cnn(models.param_matched_cnn_spec(mlp, image_size=8))
        count = sum(p.numel() for p in model.parameters())
        assert abs(count - target) <= 0.10 * target
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert models.param_matched_cnn_spec(21_578).channels == (8, 16, 32)  # the course CNN itself
    with pytest.raises(ValueError, match="no CNN of widths"):
        models.param_matched_cnn_spec(100)
    with pytest.raises(TypeError):
        models.param_matched_cnn_spec("many")


def test_parameter_table_lists_layers_and_total():
    table = utils.parameter_table(models.build_course_cnn())
    lines = table.splitlines()
    assert lines[0].split() == ["layer", "type", "shapes", "parameters"]
    assert any(line.split()[:2] == ["0", "Conv2d"] and line.endswith("80") for line in lines)
    assert "8×1×3×3 + 8" in table and "10×1568 + 10" in table
    assert lines[-1].split() == ["total", "21,578"]
