"""The CNN, optimiser and regularisation studies: each runs in smoke mode on tiny data and
writes what it promises, with numbers that mean what they say; the pieces they added to
the engine (plain deep controls, batch norm and dropout in the course CNN, augmentation
shared by both engines) behave as documented."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from experiments import runner
from experiments.registry import STUDIES
from tinygrad_mnist.models import CourseCNNSpec, build, num_parameters

PROMISED = {
    "cnn_vs_mlp": ("learning_curves.png", "test_accuracy.png", "parameters.md", "summary.md", "epochs.md"),
    "pool_order": ("curves.png", "times.png", "commute.md", "summary.md"),
    "optimizers": ("cnn_curves.png", "digits_val_accuracy.png", "cnn_summary.md", "digits_summary.md"),
    "residual": ("curves.png", "first_epoch_cost.png", "summary.md"),
    "regularization": ("curves.png", "val_accuracy.png", "summary.md", "hyperparameters.md", "confusion_matrix.png",
                       "misclassified.png"),
    "digits_sweeps": ("lr_sweep.png", "hidden_sweep.png", "lr_summary.md", "hidden_summary.md"),
    "digits_penalties": ("curves.png", "val_accuracy.png", "weights.png", "predictions_simple_mlp.png",
                         "predictions_complex_mlp.png", "summary.md"),
    "equal_size": ("losses.png", "regularizer.png", "parameters.md", "summary.md"),
    "lenet_tutorial": ("architecture.md", "curves.png", "summary.md"),
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, one_torch_thread):
    """Every study of this file in smoke mode: ``{name: result of run_study}``."""
    root = tmp_path_factory.mktemp("results")
    return {name: runner.run_study(name, ["--smoke", "--out", str(root)], echo=False) for name in PROMISED}


def test_the_studies_are_registered():
    assert set(PROMISED) <= set(STUDIES)


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_smoke_writes_the_promised_files(smoke, name):
    out = Path(smoke[name]["out"])
    for f in PROMISED[name] + ("metrics.json", "manifest.json", "log.txt"):
        assert (out / f).is_file(), f"{name}: {f} missing"
    for md in out.glob("*.md"):
        with open(md.with_suffix(".csv")) as fh:
            assert len(list(csv.DictReader(fh))) == len(md.read_text().strip().splitlines()) - 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == "smoke" and manifest["config"]["engines"] == ["numpy", "torch"]
    assert "--smoke" not in manifest["rerun"] and manifest["rerun"].startswith(f"python -m experiments run {name}")
    module = runner.load_study(name)
    text = module.describe(smoke[name]["metrics"], manifest["config"])
    assert len(text) > 100 and "nan" not in text


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_both_engines_report_time_and_accuracy(smoke, name):
    """Every study trains on numpy and on torch and tables the time and accuracy of each."""
    out = Path(smoke[name]["out"])
    tables = [p for p in out.glob("*.csv") if "engine" in p.read_text().splitlines()[0]]
    assert tables
    for path in tables:
        with open(path) as fh:
            rows = list(csv.DictReader(fh))
        assert {r["engine"] for r in rows} == {"numpy", "torch"}
        for r in rows:
            assert float(r["seconds"]) > 0 and 0 <= float(r["test_accuracy_pct"]) <= 100


def test_the_engines_agree_from_the_same_weights(smoke):
    rows = smoke["cnn_vs_mlp"]["metrics"]["final"]
    for model in ("CNN", "MLP"):
        assert rows[f"numpy {model}"]["test_accuracy_pct"] == pytest.approx(rows[f"torch {model}"]["test_accuracy_pct"],
                                                                              abs=1.0)
    penalties = {(r["model"], r["engine"]): r for r in smoke["digits_penalties"]["metrics"]["runs"]}
    for model in ("plain", "L1", "L2"):   # the same Penalty object on both sides
        assert penalties[(model, "numpy")]["test_loss"] == pytest.approx(penalties[(model, "torch")]["test_loss"],
                                                                         rel=1e-3)


def test_pool_order_commutes_for_monotone_activations(smoke):
    m = smoke["pool_order"]["metrics"]
    commute = {r["function"]: r for r in m["commute"]}
    assert commute["relu"]["max_abs_difference"] == 0.0 and commute["tanh"]["max_abs_difference"] == 0.0
    assert commute["x² (not monotone)"]["max_abs_difference"] > 0.01
    assert commute["relu"]["activations_computed_before"] * 4 == commute["relu"]["activations_computed_after"]
    # the same function and the same gradients: ReLU trains identically in both orders
    assert m["order_effect"]["relu, numpy"]["max_train_loss_difference"] == 0.0


def test_cnn_vs_mlp_counts_the_weights(smoke):
    out = Path(smoke["cnn_vs_mlp"]["out"])
    with open(out / "parameters.csv") as fh:
        rows = list(csv.DictReader(fh))
    for model in ("CNN", "MLP"):
        layers = [int(r["parameters"]) for r in rows if r["model"] == model and r["description"] != "total"]
        total = [int(r["parameters"]) for r in rows if r["model"] == model and r["description"] == "total"]
        assert total == [sum(layers)] == [smoke["cnn_vs_mlp"]["metrics"]["setup"]["parameters"][model]]


def test_cnn_vs_mlp_trains_by_plain_sgd_by_default(smoke):
    """The Uppsala exercise trains the course CNN by standard SGD: no momentum, constant lr."""
    from experiments.studies.cnn.cnn_vs_mlp import Config, optimizer_text

    cfg = Config()
    assert (cfg.optimizer, cfg.momentum, cfg.schedule) == ("sgd", 0.0, "none")
    manifest = json.loads((Path(smoke["cnn_vs_mlp"]["out"]) / "manifest.json").read_text())
    assert (manifest["config"]["optimizer"], manifest["config"]["schedule"]) == ("sgd", "none")
    setup = smoke["cnn_vs_mlp"]["metrics"]["setup"]
    assert setup["optimizer"]["CNN"] == f"plain SGD, lr {cfg.lr:g}" and setup["schedule"] == "none"
    assert setup["momentum"]["CNN"] == 0.0
    # the cosine schedule (the earlier recipe) stays one flag away
    assert optimizer_text("sgd", 0.1, 0.0, "cosine") == "SGD, lr 0.1, cosine schedule"
    assert optimizer_text("sgd", 0.05, 0.9) == "SGD, lr 0.05, momentum 0.9"


def test_residual_plain_controls_have_no_skip(smoke):
    params = smoke["residual"]["metrics"]["setup"]["parameters"]
    assert params["2 pairs, plain"] < params["2 pairs, skip"]          # no 1×1 projections
    assert params["course CNN (1 pair)"] < params["2 pairs, plain"]
    assert set(smoke["residual"]["metrics"]["skip_vs_plain"]) == {"2 pairs, numpy", "2 pairs, torch"}


def test_regularization_best_model_errors(smoke):
    m = smoke["regularization"]["metrics"]
    assert np.sum(m["confusion_matrix"]) == m["setup"]["n_test"]
    assert m["best"]["model"] in m["setup"]["parameters"]
    with open(Path(smoke["regularization"]["out"]) / "hyperparameters.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["vanilla", "dropout + weight decay", "batch norm + cosine",
                                         "augmentation + BN + dropout"]
    assert all(r["optimizer"].startswith("adam (betas 0.9, 0.999") for r in rows)
    for key in ("loss", "schedule", "augmentation", "dropout", "batch_norm", "weight_decay", "init", "shuffle"):
        assert all(r[key] for r in rows), key
    assert m["best"]["model"] != "vanilla"              # the best of the three variations
    assert m["best"]["misclassified_shown"] <= 10


def test_regularization_curves_show_cost_and_accuracy(smoke):
    """Every variation's learning curves carry the cost as well as the accuracy, train and validation."""
    m = smoke["regularization"]["metrics"]
    runs = {(r["model"], r["engine"]): r for r in m["runs"]}
    assert set(m["curves"]) == set(m["setup"]["parameters"])
    for name, by_engine in m["curves"].items():
        assert set(by_engine) == {"numpy", "torch"}
        for e, c in by_engine.items():
            for key in ("train_cost", "val_cost", "train_accuracy_pct", "val_accuracy_pct"):
                assert len(c[key]) == m["setup"]["epochs"] and all(np.isfinite(c[key])), (name, e, key)
            assert all(v > 0 for v in c["train_cost"] + c["val_cost"])
            assert c["val_accuracy_pct"][-1] == pytest.approx(runs[(name, e)]["val_accuracy_pct"])
            assert c["seconds"] == pytest.approx(runs[(name, e)]["seconds"])


def test_regularization_row_titles_name_batch_lr_epochs_and_time():
    from experiments.studies.cnn.regularization import row_title

    title = row_title("batch norm + cosine", {"lr": 0.001, "batch_size": 64, "epochs": 10, "schedule": "cosine"},
                      {"numpy": 81.26, "torch": 60.0})
    assert title == ("batch norm + cosine — batch 64, lr 0.001 (cosine to 0), 10 epochs\n"
                     "training numpy 81.3 s, torch 60.0 s")


def test_pick_misclassified_takes_one_per_class_first_then_fills_up():
    from experiments.studies.cnn.regularization import pick_misclassified

    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3])
    predicted = np.array([1, 1, 1, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0])   # no error on class 2
    picks = pick_misclassified(labels, predicted, 10)
    assert picks[:3] == [0, 3, 6]                       # the first error of classes 0, 1, 3
    assert picks[3:] == [1, 7, 8, 9, 10, 11, 12]       # then the other errors in order, up to 10
    assert all(labels[i] != predicted[i] for i in picks) and len(set(picks)) == 10
    assert pick_misclassified(labels, labels, 10) == []
    assert pick_misclassified(labels, predicted, 2) == [0, 3]


def test_digits_penalties_draws_the_classification_results(smoke):
    m = smoke["digits_penalties"]["metrics"]
    assert set(m["predictions"]) == {"SimpleMLP", "ComplexMLP"}
    assert m["predictions"]["SimpleMLP"]["file"] == "predictions_simple_mlp.png"
    for p in m["predictions"].values():
        assert 0 < p["shown"] <= 24 and 0 <= p["errors_shown"] <= p["shown"]
        assert (Path(smoke["digits_penalties"]["out"]) / p["file"]).stat().st_size > 1000


# -- overfitting (MLP-from-scratch project §2.5 and §3.3) ----------------------------------------------
@pytest.fixture(scope="module")
def overfitting_smoke(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("overfitting")
    return runner.run_study("overfitting", ["--smoke", "--out", str(root)], echo=False)


def test_overfitting_runs_both_settings_for_both_models(overfitting_smoke):
    m = overfitting_smoke["metrics"]
    out = Path(overfitting_smoke["out"])
    with open(out / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    sizes = sorted({int(r["n_train"]) for r in rows})
    assert len(sizes) == 2
    keys = {(r["model"], r["setting"], int(r["n_train"])) for r in rows}
    assert keys == {(model, s, n) for model in ("mlp", "lenet") for s in ("assignment", "tuned") for n in sizes}
    for r in rows:
        for col in ("final_train_accuracy_pct", "final_val_accuracy_pct", "best_val_accuracy_pct", "gap_pct"):
            assert np.isfinite(float(r[col]))
        gap = float(r["final_train_accuracy_pct"]) - float(r["final_val_accuracy_pct"])
        assert float(r["gap_pct"]) == pytest.approx(gap, abs=1e-3)
    by = {(r["model"], r["setting"]): r for r in rows}
    # the assignment's settings: batch 256, lr 0.001 (the MLP's on the summed loss: 0.256 on the mean)
    assert (by[("mlp", "assignment")]["optimizer"], int(by[("mlp", "assignment")]["batch_size"])) == ("sgd", 256)
    assert float(by[("mlp", "assignment")]["lr_on_mean_loss"]) == pytest.approx(0.256)
    assert float(by[("mlp", "assignment")]["momentum"]) == 0.0
    assert (by[("lenet", "assignment")]["optimizer"], float(by[("lenet", "assignment")]["momentum"])) == ("sgd", 0.9)
    assert float(by[("lenet", "assignment")]["lr_on_mean_loss"]) == pytest.approx(0.001)
    assert (by[("lenet", "tuned")]["optimizer"], int(by[("lenet", "tuned")]["batch_size"])) == ("adam", 256)
    assert (by[("mlp", "tuned")]["optimizer"], int(by[("mlp", "tuned")]["batch_size"])) == ("sgd", 64)
    assert set(m["setup"]["settings"]) == {"assignment", "tuned"}
    assert "summed over the batch" in m["setup"]["settings"]["assignment"]["mlp"]
    for f in ("mlp_accuracy_assignment.png", "mlp_accuracy_tuned.png", "lenet_accuracy_assignment.png",
              "lenet_accuracy_tuned.png"):
        assert (out / f).is_file(), f
    assert "assignment settings" in (out / "log.txt").read_text() and "Answer:" in (out / "log.txt").read_text()


def test_summed_loss_lr_is_the_mean_loss_lr_times_the_batch():
    """One SGD step at lr on the batch-summed cross-entropy is the step at lr·B on the batch mean."""
    from experiments.studies.mlp.overfitting import summed_lr_as_mean
    from tinygrad_mnist import SGD, SoftmaxCrossEntropy
    from tinygrad_mnist.models import MLPSpec

    layers = MLPSpec((12, 5, 3), "sigmoid", "logits").layers()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 12)), rng.integers(0, 3, 8)
    after = {}
    for reduction, lr in (("sum", 0.001), ("mean", summed_lr_as_mean(0.001, 8))):
        model = build(layers, seed=1, dtype=np.float64)
        loss = SoftmaxCrossEntropy(reduction=reduction)
        opt = SGD(model.parameters(), lr=lr)
        model.zero_grad()
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
        after[reduction] = [p.data.copy() for p in model.parameters()]
    for a, b in zip(after["sum"], after["mean"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert summed_lr_as_mean(0.001, 256) == pytest.approx(0.256)
    with pytest.raises(ValueError, match="batch_size"):
        summed_lr_as_mean(0.001, 0)


def test_equal_size_counts_match(smoke):
    m = smoke["equal_size"]["metrics"]
    assert abs(m["count_difference_pct"]) <= 10


def test_lenet_architecture_on_mnist_shapes():
    from experiments.studies.cnn.lenet_tutorial import architecture_rows
    from torch_baselines import lenet_layers

    rows = architecture_rows(lenet_layers(0), 28)
    shapes = [r["output_shape"] for r in rows if r["layer"] not in ("input", "total")]
    assert shapes[:7] == ["6×24×24", "6×24×24", "6×12×12", "16×8×8", "16×8×8", "16×4×4", "256"]
    assert rows[-1]["parameters"] == 44426


def test_equal_size_cnn_matches_the_mnist_mlp():
    from experiments.studies.cnn.equal_size import matched_cnn_layers

    layers = matched_cnn_layers(669706, (16, 32), 28)
    assert abs(num_parameters(layers) - 669706) <= 0.01 * 669706
    with pytest.raises(ValueError, match="within"):
        matched_cnn_layers(100, (16, 32), 28)


# -- the course CNN's new options ----------------------------------------------------------------
@pytest.mark.parametrize("depth, plain, skip", [(2, 33730, 34434), (3, 45882, 46586)])
def test_plain_deep_control_counts(depth, plain, skip):
    spec = CourseCNNSpec(residual_depth=depth, skip=False)
    assert not any(d.kind == "residual" for d in spec.layers())
    assert num_parameters(spec.layers()) == plain == build(spec.layers()).num_parameters()
    assert num_parameters(CourseCNNSpec(residual_depth=depth).layers()) == skip


def test_batch_norm_and_dropout_options():
    layers = CourseCNNSpec(batch_norm=True, dropout=0.3).layers()
    kinds = [d.kind for d in layers]
    assert kinds.count("batchnorm2d") == 3 and kinds[-2:] == ["dropout", "linear"]
    assert num_parameters(layers) == 21578 + 2 * (8 + 16 + 32)
    with pytest.raises(ValueError, match="skip = False"):
        CourseCNNSpec(skip=False)
    with pytest.raises(ValueError, match="dropout"):
        CourseCNNSpec(dropout=1.0)


def test_torch_twin_of_the_new_options_computes_the_same(one_torch_thread):
    import torch

    import torch_baselines as tb

    spec = CourseCNNSpec(residual_depth=2, skip=False, batch_norm=True, dropout=0.25, channels=(2, 3, 4), image_size=8)
    model = build(spec.layers(), seed=3, dtype=np.float64)
    twin = tb.build(spec.layers(), dtype=torch.float64)
    tb.numpy_to_torch(model, twin)
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 8))
    model.eval()
    twin.eval()
    with torch.no_grad():
        np.testing.assert_allclose(model.forward(x), twin(torch.from_numpy(x)).numpy(), rtol=1e-10, atol=1e-12)


# -- augmentation shared by both engines (the augmentation itself: tests/test_data_augment.py) ----
def test_both_engines_train_on_the_same_augmented_batches(one_torch_thread):
    """The numpy fit and torch fit read one AugmentedLoader: from the same weights they stay together."""
    from experiments.recipes import recipe
    from experiments.training import Data, train

    layers = CourseCNNSpec(channels=(2, 3, 4), image_size=8).layers()
    data = Data(dataset="digits", train_size=200, test_size=100)
    runs = {e: train(recipe(e, layers, optimizer="sgd", lr=0.05, epochs=2, batch_size=32, max_shift=1,
                             max_degrees=10, eval_train=False), data) for e in ("numpy", "torch")}
    plain = train(recipe("numpy", layers, optimizer="sgd", lr=0.05, epochs=2, batch_size=32,
                         eval_train=False), data)
    n, t = (runs[e]["history"]["batch_loss"] for e in ("numpy", "torch"))
    np.testing.assert_allclose(np.concatenate(n), np.concatenate(t), rtol=1e-4)
    assert not np.allclose(np.concatenate(n), np.concatenate(plain["history"]["batch_loss"]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")    # the overflow that makes it diverge
def test_a_diverged_run_is_a_result_not_a_crash():
    from experiments.recipes import recipe, summary_row
    from experiments.training import Data, train
    from tinygrad_mnist.models import MLPSpec

    layers = MLPSpec((64, 16, 10), "relu").layers()
    r = train(recipe("numpy", layers, optimizer="sgd", lr=1e30, epochs=3, batch_size=32,
                     extras=("test_outputs",)), Data(dataset="digits", train_size=200, val_size=100))
    assert "loss became" in r["diverged"]
    h = r["history"]
    assert len(h["train_loss"]) == len(h["test_accuracy"]) == len(h["val_accuracy"]) == 3
    assert np.isnan(h["test_accuracy"][-1]) and r["test_outputs"].shape == (r["n_test"], 10)
    assert summary_row(r, model="x")["diverged"] is True
