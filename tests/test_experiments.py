"""The experiment runner: every registered study in smoke mode writes what it promises,
the report builds from those outputs, flags and names are checked, the data split and
the two training losses behave as documented."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from experiments import runner
from experiments.common import load_splits
from experiments.manifest import mode_note, stamp_png
from experiments.registry import STUDIES
from experiments.training import Data
from tests.test_experiments_cnn import PROMISED as CNN_STUDIES

# Every registered study runs here in smoke mode, except those whose own test file does it
# (the CNN studies, tests/test_experiments_cnn.py): a newly registered study is covered
# without another line of test.
SMOKED = tuple(name for name in STUDIES if name not in CNN_STUDIES)


# -- every study, smoke mode, once per session ------------------------------------------------
@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory, one_torch_thread):
    """``run all --smoke`` (the studies of SMOKED) into a temporary results folder:
    ``(root, results by name, log messages)``."""
    root = tmp_path_factory.mktemp("results")
    messages = []
    results = runner.run_all(["--smoke", "--out", str(root)], echo=False, log=messages.append, only=SMOKED)
    return root, {r["name"]: r for r in results}, messages


def test_every_registered_study_is_smoke_tested():
    assert set(SMOKED) | set(CNN_STUDIES) == set(STUDIES)


def test_every_registered_study_is_listed_in_the_experiments_readme():
    """experiments/README.md has an entry per registered study (a bold "**N. `name`**"
    heading, its full and its quick command) and no entry for an unregistered name."""
    import re

    text = (Path(__file__).resolve().parents[1] / "experiments" / "README.md").read_text()
    listed = re.findall(r"^\*\*\d+\. `(\w+)`\*\*", text, flags=re.MULTILINE)
    missing = [n for n in STUDIES if n not in listed]
    assert not missing, f"registered but not listed in experiments/README.md: {missing}"
    assert sorted(listed) == sorted(STUDIES), f"listed but not registered (or listed twice): {listed}"
    for name in STUDIES:
        assert f"`python -m experiments run {name}`" in text, f"{name}: no full-run command"
        assert f"`python -m experiments run {name} --quick`" in text, f"{name}: no quick command"


@pytest.mark.parametrize("name", SMOKED)
def test_smoke_run_writes_promised_files(smoke_results, name):
    root, results, messages = smoke_results
    result = results[name]
    assert "error" not in result, f"{name} failed: {result.get('error')}\n" + "\n".join(messages)
    out = Path(result["out"])
    assert out.is_dir() and out.resolve().is_relative_to(root.resolve())
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("config", "seeds", "git_commit", "versions", "threads", "wall_seconds", "rerun", "mode"):
        assert key in manifest, key
    assert manifest["mode"] == "smoke" and manifest["mode_note"].startswith("smoke mode:")
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["threads"]["cpu_count"] >= 1 and manifest["wall_seconds"] > 0
    assert manifest["config"]["out"] == str(root)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics, "metrics.json is empty"
    pngs = sorted(out.glob("*.png"))
    assert pngs, "no figure"
    tables = [md for md in sorted(out.glob("*.md")) if md.read_text().startswith("|")]
    assert tables, "no table"
    for md in tables:
        csv_path = md.with_suffix(".csv")
        assert csv_path.exists(), f"{md.name} has no CSV twin"
        with open(csv_path) as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(md.read_text().strip().splitlines()) - 2
    assert (out / "log.txt").read_text().strip()
    # the figure names the smoke mode: a band was added under the saved plot
    import matplotlib.image as mpimg

    assert mpimg.imread(pngs[0]).shape[0] > 50


def test_study_protocol():
    """Every registered study has a Config with quick(), a run(), and a question."""
    for name in STUDIES:
        module = runner.load_study(name)
        cfg = module.Config()
        assert hasattr(cfg, "quick") and callable(module.run)
        assert runner.question(module)
        assert hasattr(cfg, "out")


def test_report_builds_from_smoke_outputs(smoke_results):
    from experiments.report import build_report

    root, results, _ = smoke_results
    md, pdf = build_report(root)
    text = md.read_text()
    for name in SMOKED:
        assert f". {name}" in text, name
    assert text.count("**Question.**") == len(SMOKED)
    assert text.count("**Setup.**") == len(SMOKED)
    assert "(no summary" not in text
    assert "![" in text and "](baseline/learning_curves.png)" in text
    assert (root / "run_all.md").exists() and "total" in (root / "run_all.md").read_text()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") + data.count(b"/Type /Page>")
    assert pages >= 2 * len(SMOKED)


def test_smoke_numbers_are_consistent(smoke_results):
    root, results, _ = smoke_results
    base = results["baseline"]["metrics"]
    # the torch twin starts from the numpy weights and sees the same batches: same errors
    numpy_final, torch_final = base["final"]["numpy"], base["final"]["torch"]
    mis = "test_misclassification_pct"
    assert numpy_final[mis] == pytest.approx(torch_final[mis], abs=0.5)
    assert numpy_final["test_error_mean_ce"] == pytest.approx(torch_final["test_error_mean_ce"], rel=1e-4)
    assert numpy_final["train_error_mean_ce"] == pytest.approx(torch_final["train_error_mean_ce"], rel=1e-4)
    seeds = results["seeds"]["metrics"]
    assert seeds["deterministic"] is True
    assert set(seeds["final_test_error_mean_ce"]) >= {"numpy, hidden 16", "torch, hidden 16"}
    assert set(seeds["final_test_misclassification_pct"]) == set(seeds["final_test_error_mean_ce"])
    val = results["validation"]["metrics"]
    for row in val["per_seed"]:
        assert 1 <= row["best_epoch"] <= 3
    init = {(r["initializer"], r["engine"]): r for r in results["initializers"]["metrics"]["summary"]}
    assert init[("zero", "numpy")]["distinct_first_layer_units"] == 1       # symmetry never broken
    assert init[("glorot", "numpy")]["distinct_first_layer_units"] == init[("glorot", "numpy")]["hidden_units"]
    assert init[("normal(0,1)", "numpy")]["saturated_at_init_pct"] > init[("glorot", "numpy")]["saturated_at_init_pct"]
    nvt = results["numpy_vs_torch"]["metrics"]
    assert nvt["max_final_weight_difference"] < 1e-4 and nvt["time_ratio_numpy_over_torch"] > 0
    errors = results["errors"]["metrics"]["engines"]["numpy"]
    assert sum(map(sum, errors["matrix"])) == results["errors"]["metrics"]["setup"]["n_test"]
    lab = results["digits_lab"]["metrics"]["final"]
    assert lab["numpy"]["test_accuracy"] == pytest.approx(lab["torch"]["test_accuracy"], abs=0.01)


# -- the assignment's error: the mean cross-entropy, the misclassification rate beside it ------
def _columns(path: Path):
    with open(path) as fh:
        return next(csv.reader(fh))


@pytest.mark.parametrize("study, table, error, misclassification", [
    ("baseline", "summary", "final test_error (mean CE)", "final test_misclassification_%"),
    ("baseline", "epochs", "train_error (mean CE)", "train_misclassification_%"),
    ("seeds", "seeds", "final test_error (mean CE)", "final test_misclassification_%"),
    ("seeds", "summary", "mean test_error (mean CE)", "mean test_misclassification_%"),
    ("validation", "best_epochs", "e_va* (mean CE)", "val_misclassification_% at best epoch"),
    ("validation", "summary", "mean e_te* (mean CE)", "mean test_misclassification_% at best epoch"),
    ("grid_search", "grid", "numpy e_te (mean CE) at e_va*", "numpy test_misclassification_% at e_va*"),
])
def test_error_tables_give_the_mean_cross_entropy_and_the_misclassification_rate(smoke_results, study, table, error,
                                                                                misclassification):
    _, results, _ = smoke_results
    columns = _columns(Path(results[study]["out"]) / f"{table}.csv")
    assert error in columns and misclassification in columns, columns


def test_smoke_errors_are_mean_cross_entropies(smoke_results):
    """An error column holds a loss (it can exceed 1 and differs from the misclassification)."""
    _, results, _ = smoke_results
    with open(Path(results["baseline"]["out"]) / "epochs.csv") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        ce, mis = float(row["test_error (mean CE)"]), float(row["test_misclassification_%"])
        assert 0 < ce < 5 and 0 <= mis <= 100
    # digits after 2 epochs: the loss is still near log(10), far from the rate as a fraction
    assert float(rows[0]["test_error (mean CE)"]) > 1.0
    grid = results["grid_search"]["metrics"]
    va = [r["numpy_e_va_star_mean_ce"] for r in grid["grid"]]
    assert grid["best"]["numpy_e_va_star_mean_ce"] == min(va)
    assert grid["best"] == grid["grid"][int(np.argmin(va))]
    md = (Path(results["grid_search"]["out"]) / "grid.md").read_text().splitlines()
    bold = [line for line in md if line.startswith("| **")]
    assert len(bold) == 1 and f"**{min(va):.4g}**" in bold[0]


def _history(val_loss, val_accuracy, test_loss, test_accuracy, train_loss=None, train_eval_loss=None):
    n = len(test_loss)
    return {"val_loss": val_loss, "val_accuracy": val_accuracy, "test_loss": test_loss,
            "test_accuracy": test_accuracy, "train_loss": train_loss or [9.0] * n,
            "train_accuracy": [0.5] * n, "train_eval_loss": train_eval_loss or [],
            "train_eval_accuracy": [0.6] * n if train_eval_loss else []}


def test_best_pair_picks_the_epoch_of_minimum_validation_loss():
    """e_va* is the minimum of the validation loss, even where the validation accuracy peaks elsewhere;
    e_te* is the test loss at that epoch; the earliest epoch wins a tie."""
    from experiments.studies.mlp.validation import best_pair

    h = _history(val_loss=[0.9, 0.4, 0.3, 0.3, 0.5], val_accuracy=[0.7, 0.80, 0.85, 0.86, 0.90],
                 test_loss=[1.0, 0.5, 0.35, 0.33, 0.6], test_accuracy=[0.6, 0.75, 0.84, 0.85, 0.88])
    best = best_pair(h)
    assert best["best_epoch"] == 3
    assert best["e_va_star_mean_ce"] == min(h["val_loss"]) == 0.3
    assert best["e_te_star_mean_ce"] == 0.35
    assert best["val_misclassification_pct_at_best"] == pytest.approx(15.0)
    assert best["test_misclassification_pct_at_best"] == pytest.approx(16.0)
    with pytest.raises(ValueError, match="no validation loss"):
        best_pair(_history([], [], [1.0], [0.5]))


def test_the_training_error_is_the_whole_set_pass_not_the_running_mean():
    from experiments.studies.mlp.baseline import error_curves

    h = _history([], [], test_loss=[0.5, 0.4], test_accuracy=[0.9, 0.95], train_loss=[0.9, 0.8],
                 train_eval_loss=[0.45, 0.35])
    errors, misclassification = error_curves(h, "train")
    assert errors == [0.45, 0.35] and misclassification == pytest.approx([40.0, 40.0])
    assert error_curves(h, "test") == ([0.5, 0.4], pytest.approx([10.0, 5.0]))
    with pytest.raises(ValueError, match="eval_train"):
        error_curves(_history([], [], [0.5], [0.9], train_loss=[0.9]), "train")


def test_seeds_robustness_compares_the_seed_spread_with_the_configurations():
    from experiments.studies.mlp.seeds import robustness

    spread_out = robustness({"a": [0.30, 0.31, 0.29], "b": [0.40, 0.41, 0.39]}, "a")
    assert spread_out["seed_std"] == pytest.approx(0.01) and spread_out["configuration_range"] == pytest.approx(0.10)
    assert spread_out["robust"] is True
    assert robustness({"a": [0.30, 0.40, 0.20], "b": [0.33, 0.34, 0.35]}, "a")["robust"] is False
    assert robustness({"a": [0.3, 0.4]}, "a")["robust"] is None


def test_hidden_features_are_the_trained_first_layer_of_the_engine():
    """z = σ(W⁽¹⁾ᵀx + b⁽¹⁾) from the trained weights equals the engine's own first hidden activation."""
    from experiments.studies.mlp.features import hidden_features
    from experiments.training import Run, train

    result = train(Run(hidden=(16,), epochs=1, batch_size=32, eval_train=False,
                       extras=("weights", "hidden_features")), TINY)
    _, _, test = load_splits(TINY, log=None)
    pixels = np.multiply(test.images.reshape(len(test), -1), 1 / 255, dtype=np.float32)
    z = hidden_features(result["weights"], pixels, "sigmoid", batch_size=37)
    assert z.shape == (len(test), 16) and z.dtype == np.float32
    np.testing.assert_allclose(z, result["hidden_features"], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        hidden_features(result["weights"], pixels, "gelu")
    with pytest.raises(ValueError, match="shape"):
        hidden_features(result["weights"], pixels[:, :10])


def test_separation_scores_a_seeded_subsample():
    from experiments.studies.mlp.features import subsample

    picked = subsample(1000, 100, seed=3)
    assert len(picked) == 100 == len(set(picked.tolist())) and np.all(np.diff(picked) > 0)
    np.testing.assert_array_equal(picked, subsample(1000, 100, seed=3))
    np.testing.assert_array_equal(subsample(50, 100, seed=3), np.arange(50))


def test_features_smoke_embeds_the_training_images_and_times_each_map(smoke_results):
    _, results, _ = smoke_results
    m = results["features"]["metrics"]
    assert m["setup"]["tsne_split"] == "train" and m["setup"]["points"] == 300
    assert m["setup"]["scored_points"] == 200
    assert set(m["tsne_seconds"]) == {"hidden layer", "raw pixels"} and min(m["tsne_seconds"].values()) > 0
    columns = _columns(Path(results["features"]["out"]) / "separation.csv")
    assert {"t-SNE seconds", "scored on", "silhouette by digit", "5-NN accuracy (leave-one-out)"} <= set(columns)


def test_features_names_the_missing_opentsne(monkeypatch):
    import builtins

    from experiments.studies.mlp.features import tsne

    real_import = builtins.__import__

    def no_opentsne(name, *args, **kwargs):
        if name.startswith("openTSNE"):
            raise ImportError("No module named 'openTSNE'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_opentsne)
    with pytest.raises(ImportError, match="pip install openTSNE"):
        tsne(np.zeros((20, 3)), perplexity=5.0, seed=0)


# -- the command line ------------------------------------------------------------------------
def test_unknown_experiment_lists_the_valid_ones(capsys):
    assert runner.main(["run", "no_such_study"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'no_such_study'" in err
    for name in STUDIES:
        assert name in err


def test_an_old_study_name_runs_the_renamed_study_with_a_note(capsys):
    from experiments.registry import ALIASES

    assert set(ALIASES.values()) <= set(STUDIES) and not set(ALIASES) & set(STUDIES)
    assert runner.load_study("regularisation") is runner.load_study("regularization")
    assert runner.load_study("regularization").NAME == "regularization"
    err = capsys.readouterr().err
    assert err == ("note: experiment name 'regularisation' is deprecated; it now means 'regularization' "
                   "(use that name)\n")
    assert runner.main(["run", "regularisation", "--help"]) == 0
    assert "python -m experiments run regularization" in capsys.readouterr().out


def test_unknown_flag_lists_the_valid_ones(capsys):
    assert runner.main(["run", "baseline", "--smoke", "--no-such-flag", "3"]) == 2
    err = capsys.readouterr().err
    assert "--no-such-flag" in err and "--batch-size" in err and "--epochs" in err


def test_run_all_rejects_a_flag_no_study_has(capsys):
    assert runner.main(["run", "all", "--smoke", "--bogus", "1"]) == 2
    assert "no experiment has the flag --bogus" in capsys.readouterr().err


def test_list_names_every_study(capsys):
    assert runner.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in STUDIES)


def test_flags_override_the_mode_and_keep_types():
    module = runner.load_study("seeds")
    cfg, mode = runner.build_config(module, ["--quick", "--epochs", "3", "--seeds", "4", "5", "--lr", "0.25"])
    assert mode == "quick"
    assert cfg.epochs == 3 and cfg.seeds == (4, 5) and cfg.lr == 0.25
    assert cfg.train_size == module.Config().quick().train_size       # the rest of quick mode stays
    full, mode = runner.build_config(module, [])
    assert mode == "full" and full == module.Config()


def test_rerun_command_rebuilds_the_same_config():
    module = runner.load_study("grid_search")
    cfg, _ = runner.build_config(module, ["--smoke", "--lrs", "0.3", "0.7"])
    from experiments.manifest import rerun_command

    argv = rerun_command("grid_search", cfg).split()[5:]
    again, _ = runner.build_config(module, argv)
    assert again == cfg


def test_mode_note_names_every_changed_field():
    module = runner.load_study("baseline")
    quick = module.Config().quick()
    note = mode_note(quick, module.Config())
    assert "train_size 5000 (full: 0 = all)" in note and "epochs 5 (full: 20)" in note
    assert mode_note(module.Config(), module.Config()) == ""


def test_stamp_png_adds_a_band_and_keeps_the_figure(tmp_path):
    import matplotlib.image as mpimg

    from tinygrad_mnist.plots import plot_lines

    path = plot_lines([("p", {"a": [1, 2, 3]})], tmp_path / "f.png", "x", "y")
    before = mpimg.imread(path)
    stamp_png(path, "quick mode: epochs 2 (full: 20)")
    after = mpimg.imread(path)
    assert after.shape[1] == before.shape[1] and after.shape[0] > before.shape[0]
    np.testing.assert_allclose(after[: before.shape[0], :, :3], before[..., :3], atol=1 / 255)


def test_learning_curve_titles_name_the_dataset_batch_lr_epochs_and_time():
    from experiments.recipes import training_time
    from experiments.studies.mlp.mlp_dropout_adam import Config as DropoutConfig
    from experiments.studies.mlp.mlp_dropout_adam import curve_title
    from tinygrad_mnist.history import History
    from tinygrad_mnist.plots import run_title

    assert (run_title("MNIST", 64, 0.001, 1, 2.04, prefix="CNN")
            == "CNN — MNIST, batch 64, lr 0.001, 1 epoch, 2.0 s training")
    assert run_title("digits 8×8", epochs=12) == "digits 8×8, 12 epochs"
    assert training_time([{"seconds": 3.21}]) == "training 3.2 s"
    assert training_time([{"seconds": 12.2}, {"seconds": 85.4}, {"seconds": 40.0}]) == "training 12–85 s per run"
    with pytest.raises(ValueError, match="no results"):
        training_time([])
    h = History()
    for loss in (1.0, 0.5):
        h.record_epoch([loss], [0.5], test=(loss, 0.9712))
        h.epoch_seconds.append(1.5)
    h.total_seconds = 3.0
    cfg = replace(DropoutConfig(), dataset="/data/some/dir/fashion", batch_size=32)
    title = " ".join(curve_title(cfg, "784-8-10", h).split())
    assert "97.12% test" in title and "784-8-10" in title and "dropout 0.3" in title
    assert title.endswith("— fashion, batch 32, lr 0.001, 2 epochs, 3.0 s training")
    assert "/data" not in title                                      # a directory's name, never its path


# -- data split and the two training losses ---------------------------------------------------
def test_train_size_applies_after_the_validation_split():
    train, val, test = load_splits(Data("digits", None, train_size=200, val_size=300, split_seed=0), log=None)
    full_train, _, _ = load_splits(Data("digits"), log=None)
    assert len(train) == 200 and len(val) == 300
    rest, val_again, _ = load_splits(Data("digits", None, val_size=300, split_seed=0), log=None)
    assert len(rest) == len(full_train) - 300
    np.testing.assert_array_equal(train.images, rest.images[:200])      # the first 200 of what is left
    np.testing.assert_array_equal(val.images, val_again.images)         # the same validation set
    rows = {img.tobytes() for img in val.images}
    assert not any(img.tobytes() in rows for img in train.images[:50] if img.any())
    with pytest.raises(ValueError, match="train_size"):
        load_splits(Data("digits", None, train_size=-1), log=None)


def test_history_records_the_training_loss_both_ways():
    from tinygrad_mnist import SGD, MLPSpec, SoftmaxCrossEntropy, build_mlp
    from tinygrad_mnist.train import History, evaluate, fit

    train, _, _ = load_splits(Data("digits", None, train_size=300), log=None)
    model = build_mlp(MLPSpec((64, 16, 10), "relu"), seed=0)
    history = fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1), train, epochs=2, batch_size=32,
                  eval_train=True, progress=False)
    assert len(history.train_loss) == len(history.train_eval_loss) == 2
    loss, acc = evaluate(model, SoftmaxCrossEntropy(), train)
    assert history.train_eval_loss[-1] == pytest.approx(loss, rel=1e-6)
    assert history.train_eval_accuracy[-1] == pytest.approx(acc)
    assert history.train_eval_loss[-1] != pytest.approx(history.train_loss[-1], rel=1e-3)  # two different things
    again = History.from_dict(json.loads(json.dumps(history.to_dict())))
    assert again.train_eval_loss == history.train_eval_loss
    plain = fit(build_mlp(MLPSpec((64, 16, 10), "relu"), seed=0), SoftmaxCrossEntropy(),
                SGD(build_mlp(MLPSpec((64, 16, 10), "relu"), seed=0).parameters(), lr=0.1), train, epochs=1,
                progress=False)
    assert plain.train_eval_loss == []


def test_run_rejects_unknown_engine_and_extras():
    from experiments.training import Run

    with pytest.raises(ValueError, match="engine"):
        Run(engine="jax")
    with pytest.raises(ValueError, match="extras"):
        Run(extras=("everything",))
    assert asdict(Run())["engine"] == "numpy"


# -- the one training loop: a plain Run and a Recipe ------------------------------------------
TINY = Data(dataset="digits", train_size=200, val_size=50, test_size=100)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_a_recipe_without_regularizers_trains_exactly_like_its_run(engine, one_torch_thread):
    """Recipe only overrides what train reads from the run; with its defaults nothing changes."""
    from experiments.recipes import Recipe
    from experiments.training import Run, train

    run = Run(engine=engine, hidden=(16,), activation="relu", init="he_uniform", lr=0.1, momentum=0.5, epochs=2,
              batch_size=32, extras=("weights", "test_outputs"))
    plain, rec = train(run, TINY), train(Recipe(**asdict(run)), TINY)
    assert set(plain) == set(rec) and "diverged" not in rec
    for key in ("architecture", "parameters", "n_train", "n_val", "n_test", "data"):
        assert plain[key] == rec[key]
    assert {k: v for k, v in plain["history"].items() if "seconds" not in k} == \
        {k: v for k, v in rec["history"].items() if "seconds" not in k}
    np.testing.assert_array_equal(plain["test_outputs"], rec["test_outputs"])
    for name, w in plain["weights"].items():
        np.testing.assert_array_equal(w, rec["weights"][name])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")    # the overflow that makes it diverge
def test_a_plain_run_that_diverges_raises():
    from experiments.training import Run, train
    from tinygrad_mnist.train import TrainingDivergedError

    with pytest.raises(TrainingDivergedError, match="loss became"):
        train(Run(hidden=(16,), activation="relu", init="he_uniform", lr=1e30, epochs=2, batch_size=32), TINY)


def test_train_lifts_its_thread_limit_afterwards():
    torch = pytest.importorskip("torch")
    from experiments.training import Run, train

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(Run(engine="torch", hidden=(8,), epochs=1, threads=1, eval_train=False), TINY)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_takes_images_looks_inside_residual_blocks():
    from experiments.training import takes_images
    from tinygrad_mnist.models import CourseCNNSpec, LayerDesc, MLPSpec

    linear = LayerDesc.make("linear", in_features=16, out_features=16)
    assert not takes_images(MLPSpec((64, 16, 10), "relu").layers())
    assert not takes_images([LayerDesc.make("residual", block=(linear,), projection=None)])
    assert takes_images(CourseCNNSpec(image_size=8).layers())
    assert takes_images([b for b in CourseCNNSpec(image_size=8, residual_depth=2).layers() if b.kind == "residual"])


def test_every_run_ends_with_its_answer_once(tmp_path):
    """A study whose log gives no ``Answer:`` line gets its describe paragraph as one; a
    study that answers itself is not answered twice."""
    for name in ("digits_lab", "baseline"):
        runner.run_study(name, ["--smoke", "--out", str(tmp_path)], echo=False)
        lines = (tmp_path / name / "log.txt").read_text().splitlines()
        answers = [line for line in lines if line.startswith("Answer:")]
        assert len(answers) == 1, (name, answers)
        assert len(answers[0]) > 40 and "no summary" not in answers[0]
