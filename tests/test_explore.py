"""The backprop explorer's numbers, without a browser: the embedded g, J and Jᵀg agree
with each module's own ``forward``, ``backward`` and ``jacobian`` to float64 precision,
and with torch autograd; the page is self-contained; the command writes, loads
checkpoints and serves."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("torch")  # noqa: E402  (the explorer compares with torch; a dev dependency)

from tinygrad_mnist.cli import main
from tinygrad_mnist.data import load_digits
from tinygrad_mnist.explore import (
    decode_array,
    encode_array,
    generate,
    jacobian_rows,
    make_model,
    read_page_data,
    start_server,
    stop_server,
    write_page,
)
from tinygrad_mnist.nn.losses import SoftmaxCrossEntropy

U64 = np.finfo(np.float64).eps / 2


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def pages(digits, one_torch_thread):
    """Generated data for three presets on two 8×8 test images (no timings)."""
    _, test = digits
    out = {}
    for name in ("mlp", "classic-mlp", "small-cnn"):
        em = make_model(name, image_shape=test.image_shape, seed=1)
        out[name] = (em, generate(em, test, [5, 0], timing_batch=0))
    return out


def reference(em, x, label):
    """Layer inputs h_0 … h_K and gradients ∂L/∂h_0 … ∂L/∂h_K, straight from the modules."""
    hs = [x[None]]
    for layer in em.model:
        hs.append(layer.forward(hs[-1]))
    from tinygrad_mnist.explore.trace import loss_module

    loss = loss_module(em)
    loss.forward(hs[-1], np.array([label]))
    em.model.zero_grad()
    grads = [None] * len(hs)
    grads[-1] = loss.backward()
    for k in range(len(hs) - 1, 0, -1):
        grads[k - 1] = em.model[k - 1].backward(grads[k])
    params = [{n: p.grad.copy() for n, p in layer.named_parameters()} for layer in em.model]
    em.model.zero_grad()
    return [h[0] for h in hs], [g[0] for g in grads], params


def rounding_bound(J, g):
    """|fl(Jᵀg) - Jᵀg| ≤ n·u·|J|ᵀ|g| per entry (n terms per sum), plus an underflow floor."""
    return 2 * J.shape[0] * U64 * (np.abs(J).T @ np.abs(g)) + 1e-300


@pytest.mark.parametrize("name", ["mlp", "classic-mlp", "small-cnn"])
def test_embedded_g_jacobian_and_jtg_match_the_modules(pages, digits, name):
    em, data = pages[name]
    _, test = digits
    assert [e["index"] for e in data["examples"]] == [5, 0]
    for ex in data["examples"]:
        x = test.images[ex["index"]].astype(np.float64).reshape(em.input_shape) / 255
        hs, grads, _ = reference(em, x, ex["label"])
        K = len(em.model)
        assert len(ex["steps"]) == K + 1
        assert [s["layer"] for s in ex["steps"]] == [0] + list(range(K, 0, -1))
        for step in ex["steps"][1:]:
            k = step["layer"]
            layer = em.model[k - 1]
            g = decode_array(ex["grads"][k]).reshape(-1)
            jtg = decode_array(ex["grads"][k - 1]).reshape(-1)
            # g and Jᵀg are the modules' own backward values, bit for bit
            np.testing.assert_array_equal(g, grads[k].reshape(-1))
            np.testing.assert_array_equal(jtg, grads[k - 1].reshape(-1))
            # the shown J is (a block of) the module's own jacobian()
            J = layer.jacobian(hs[k - 1])["input"].reshape(g.size, jtg.size)
            jac = step["jac"]
            (r0, r1), (c0, c1) = jac["rows"], jac["cols"]
            assert jac["shape"] == [g.size, jtg.size]
            block = decode_array(jac["data"])
            assert block.shape == (r1 - r0, c1 - c0)
            np.testing.assert_array_equal(block, J[r0:r1, c0:c1])
            assert jac["full"] == ((r1 - r0, c1 - c0) == J.shape)
            # backward is the vector-Jacobian product Jᵀg, to float64 rounding
            assert np.all(np.abs(J.T @ g - jtg) <= rounding_bound(J, g))
            if step["explicit_diff"] is not None:
                assert step["explicit_diff"]["max_abs"] <= float(np.max(rounding_bound(J, g)))


@pytest.mark.parametrize("name", ["mlp", "classic-mlp", "small-cnn"])
def test_torch_autograd_agrees_to_float64_precision(pages, name):
    em, data = pages[name]
    for ex in data["examples"]:
        assert ex["loss"] == pytest.approx(ex["loss_torch"], rel=1e-13)
        for step in ex["steps"]:
            ours, theirs = decode_array(ex["grads"][step["in"]]), decode_array(ex["torch_grads"][step["in"]])
            assert step["diff"]["max_abs"] == float(np.max(np.abs(ours - theirs)))
            assert step["diff"]["max_rel"] == pytest.approx(step["diff"]["max_abs"] / np.max(np.abs(theirs)), rel=1e-12)
            # a few hundred roundings of an O(1) chain, cancellation at the loss included
            assert step["diff"]["max_rel"] < 1e-12
            for p in step["params"]:
                assert p["diff"]["max_rel"] < 1e-12


def test_loss_step_and_parameter_gradients(pages, digits):
    em, data = pages["mlp"]
    _, test = digits
    ex = data["examples"][0]
    x = test.images[ex["index"]].astype(np.float64).reshape(em.input_shape) / 255
    hs, grads, params = reference(em, x, ex["label"])
    loss = ex["steps"][0]
    J = decode_array(loss["jac"]["data"])                      # ∂L/∂logits, one row
    p = np.exp(hs[-1] - hs[-1].max()) / np.exp(hs[-1] - hs[-1].max()).sum()
    np.testing.assert_allclose(J[0], p - np.eye(10)[ex["label"]], rtol=0, atol=4 * U64)
    np.testing.assert_allclose(ex["probabilities"], p, rtol=1e-14)
    assert ex["prediction"] == int(np.argmax(hs[-1]))
    assert ex["loss"] == pytest.approx(SoftmaxCrossEntropy(reduction="sum").forward(hs[-1][None], [ex["label"]]))
    for step in ex["steps"][1:]:
        ours = params[step["layer"] - 1]
        assert [q["name"] for q in step["params"]] == list(ours)
        for q in step["params"]:  # images in float32
            np.testing.assert_allclose(decode_array(q["grad"]).reshape(q["shape"]), ours[q["name"]], rtol=1e-6,
                                       atol=1e-6 * np.abs(ours[q["name"]]).max())
    # the first Linear's weight gradient is drawn as one 8×8 image per hidden unit
    first = ex["steps"][-1]["params"][0]
    assert first["view"] == [64, 8, 8]


def test_large_jacobians_are_shown_as_rows_from_backward(digits, one_torch_thread):
    """With no whole Jacobian allowed, each shown row i is backward(e_i) = Jᵀe_i."""
    _, test = digits
    em = make_model("small-cnn", image_shape=test.image_shape, seed=2)
    data = generate(em, test, [7], timing_batch=0, full_limit=0)
    ex = data["examples"][0]
    x = test.images[7].astype(np.float64).reshape(em.input_shape) / 255
    hs, _, _ = reference(em, x, ex["label"])
    conv_seen = False
    for step in ex["steps"][1:]:
        layer = em.model[step["layer"] - 1]
        jac = step["jac"]
        assert jac["method"] == "backward(e_i)" and step["explicit_diff"] is None
        J = layer.jacobian(hs[step["layer"] - 1])["input"].reshape(jac["shape"])
        (r0, r1), (c0, c1) = jac["rows"], jac["cols"]
        block = decode_array(jac["data"])
        np.testing.assert_allclose(block, J[r0:r1, c0:c1], rtol=0, atol=64 * U64 * np.abs(J).max())
        conv_seen |= type(layer).__name__ == "Conv2d"
    assert conv_seen


def test_a_large_jacobian_block_is_labelled_and_centred(digits, one_torch_thread):
    _, test = digits
    em = make_model("course-cnn", image_shape=test.image_shape, seed=0)
    ex = generate(em, test, [0], timing_batch=0)["examples"][0]
    conv1 = ex["steps"][-1]                           # Conv2d 1→8 on 8×8: J is 512×64
    assert conv1["jac"]["shape"] == [512, 64] and not conv1["jac"]["full"]
    (r0, r1), (c0, c1) = conv1["jac"]["rows"], conv1["jac"]["cols"]
    assert r1 - r0 == 64 and (c0, c1) == (0, 64)
    g = np.abs(decode_array(ex["grads"][1]).reshape(-1))
    assert r0 <= int(np.argmax(g)) < r1


def test_jacobian_rows_restores_parameter_gradients(rng):
    em = make_model("mlp", image_shape=(4, 4), hidden=[5], seed=0)
    layer = em.model[0]
    layer.weight.grad[...] = 3.0
    rows = jacobian_rows(layer, rng.normal(size=16), np.array([1, 3]))
    np.testing.assert_array_equal(rows, layer.weight.data[[1, 3]])
    assert np.all(layer.weight.grad == 3.0)


def test_arrays_round_trip_exactly(rng):
    a = rng.normal(size=(3, 5))
    np.testing.assert_array_equal(decode_array(json.loads(json.dumps(encode_array(a)))), a)
    sparse = np.zeros((20, 30))
    sparse[rng.integers(0, 20, 15), rng.integers(0, 30, 15)] = rng.normal(size=15)
    enc = encode_array(sparse, sparse=True)
    assert "nz" in enc
    np.testing.assert_array_equal(decode_array(enc), sparse)
    assert decode_array(encode_array(a, "f4")).dtype == np.float64
    with pytest.raises(ValueError, match="f4"):
        encode_array(a, "f2")


def test_page_is_self_contained(pages, tmp_path):
    _, data = pages["small-cnn"]
    path = write_page(data, tmp_path)
    html = path.read_text(encoding="utf-8")
    for needle in ("http://", "https://", " src=", "@import", "url(", "fetch(", "XMLHttpRequest"):
        assert needle not in html, needle
    assert re.findall(r'href="([^"]*)"', html) == ["data:,"]  # the empty favicon
    assert read_page_data(path) == json.loads(json.dumps(data))


def test_timings_cover_every_layer(digits, one_torch_thread):
    _, test = digits
    em = make_model("small-cnn", image_shape=test.image_shape)
    data = generate(em, test, [0], timing_batch=16, repeats=1)
    rows = data["timing"]["rows"]
    assert len(rows) == len(em.model) and data["timing"]["batch"] == 16
    for row in rows:
        assert set(row) == {"numpy_forward_ms", "numpy_backward_ms", "torch_forward_ms", "torch_backward_ms"}
        assert all(v > 0 for v in row.values())
    assert data["timing"]["threads"] == {"numpy_blas": 1, "torch_intra_op": 1}


def test_command_writes_the_page(tmp_path, capsys, one_torch_thread):
    out = tmp_path / "page"
    rc = main(["explore", "--dataset", "digits", "--model", "small-cnn", "--examples", "3", "9", "--example", "9",
               "--timing-batch", "8", "--repeats", "1", "--out", str(out)])
    assert rc == 0
    data = read_page_data(out / "index.html")
    assert [e["index"] for e in data["examples"]] == [9, 3]
    assert [layer["type"] for layer in data["layers"]] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "Flatten",
                                                           "Linear"]
    printed = capsys.readouterr().out
    assert "wrote" in printed
    # by default the model is trained for a moment (one epoch on up to 3,000 images: all 1,438 of the digits)
    assert data["model"]["trained"] is True and "Adam" in data["model"]["source"]
    assert "trained for one epoch on 1,438 images" in printed


def test_train_images_0_keeps_fresh_weights_and_says_so(tmp_path, one_torch_thread):
    out = tmp_path / "page"
    assert main(["explore", "--dataset", "digits", "--train-images", "0", "--examples", "0", "--timing-batch", "0",
                 "--out", str(out)]) == 0
    data = read_page_data(out / "index.html")
    assert data["model"]["trained"] is False and "Adam" not in data["model"]["source"]


def test_each_layer_type_explains_its_jacobian(pages):
    """One sentence per layer type says what J is (Linear: W; activations: diagonal; the loss: p − y ...)."""
    from tinygrad_mnist.explore.generate import EXPLAIN, layer_explanation

    expected = {"Linear": "J = W", "Tanh": "diagonal", "Sigmoid": "diagonal", "ReLU": "diagonal",
                "Softmax": "diag(p) − ppᵀ", "Conv2d": "sparse", "MaxPool2d": "selection matrix",
                "Flatten": "identity", "SoftmaxCrossEntropy": "p − y", "CrossEntropy": "−y/p"}
    for kind, phrase in expected.items():
        assert phrase in EXPLAIN[kind], kind
    seen = set()
    for em, data in pages.values():
        for row, layer in zip(data["layers"], em.model, strict=True):
            assert row["explain"] == layer_explanation(type(layer).__name__)
            seen.add(row["type"])
        assert data["model"]["loss_explain"] == EXPLAIN[data["model"]["loss_type"]]
        seen.add(data["model"]["loss_type"])
        assert data["model"]["trained"] is False            # make_model alone: fresh weights
    assert seen >= {"Linear", "Tanh", "Sigmoid", "Softmax", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
                    "SoftmaxCrossEntropy", "CrossEntropy"}
    assert "Mystery" in layer_explanation("Mystery")


def test_command_loads_a_train_checkpoint(tmp_path, one_torch_thread):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--hidden", "12", "--activation", "relu",
                 "--output", "logits", "--out", str(run), "--no-progress"]) == 0
    out = tmp_path / "page"
    assert main(["explore", "--dataset", "digits", "--checkpoint", str(run / "model.npz"), "--timing-batch", "0",
                 "--examples", "0", "--out", str(out)]) == 0
    data = read_page_data(out / "index.html")
    assert [layer["type"] for layer in data["layers"]] == ["Linear", "ReLU", "Linear"]
    assert data["layers"][0]["out_view"] == [12]
    saved = np.load(run / "model.npz")
    w = decode_array(data["examples"][0]["steps"][-1]["params"][0]["grad"])
    assert w.shape == (12, 8, 8) and "checkpoint" in data["model"]["source"]
    # a checkpoint counts as trained and is not trained further by default
    assert data["model"]["trained"] is True and "Adam" not in data["model"]["source"]
    em = make_model("mlp", image_shape=(8, 8), checkpoint=run / "model.npz")
    np.testing.assert_array_equal(em.model[0].weight.data, saved["0.weight"].astype(np.float64))


def test_command_rejects_a_checkpoint_of_another_model(tmp_path, capsys):
    path = tmp_path / "other.npz"
    np.savez(path, **{"0.weight": np.zeros((3, 64), np.float32), "0.bias": np.zeros(3, np.float32)})
    assert main(["explore", "--dataset", "digits", "--checkpoint", str(path), "--out", str(tmp_path)]) == 1
    assert "does not fit" in capsys.readouterr().err
    assert main(["explore", "--dataset", "digits", "--examples", "100000", "--out", str(tmp_path)]) == 1
    assert "[0, 359)" in capsys.readouterr().err


def test_server_answers_on_localhost_and_stops(pages, tmp_path):
    write_page(pages["mlp"][1], tmp_path)
    server, thread, url = start_server(tmp_path)
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url + "index.html", timeout=10) as response:
        assert response.status == 200 and b"explorer-data" in response.read()
    stop_server(server, thread)
    assert not thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "index.html", timeout=2)


def test_command_reads_the_checkpoint_format_with_its_architecture(tmp_path, one_torch_thread):
    from tinygrad_mnist import checkpoint
    from tinygrad_mnist.models import CourseCNNSpec, build

    layers = CourseCNNSpec(channels=(3, 5), image_size=8, activation="tanh").layers()
    model = build(layers, seed=4)
    path = checkpoint.save(tmp_path / "ck.npz", model)
    out = tmp_path / "page"
    assert main(["explore", "--dataset", "digits", "--model", "mlp", "--checkpoint", str(path), "--timing-batch", "0",
                 "--examples", "2", "--out", str(out)]) == 0
    data = read_page_data(out / "index.html")
    assert [layer["type"] for layer in data["layers"]] == ["Conv2d", "Tanh", "MaxPool2d", "Conv2d", "Tanh", "Flatten",
                                                           "Linear"]
    em = make_model("mlp", image_shape=(8, 8), checkpoint=path)
    for ours, saved in zip(em.model.parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(ours.data, saved.data.astype(np.float64))
    assert all(s["diff"]["max_rel"] < 1e-12 for s in data["examples"][0]["steps"])
