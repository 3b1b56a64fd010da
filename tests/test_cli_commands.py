"""The command line as a user meets it: train any model, evaluate, predict, info, bench, a
TOML config, --json and --quiet, exit codes 0/1/2, Ctrl-C, and resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_mnist.checkpoint import load
from tinygrad_mnist.cli import main
from tinygrad_mnist.data import write_idx
from tinygrad_mnist.data.mnist import MNIST_FILES
from tinygrad_mnist.train import History

from .conftest import REPO, ctrl_c_enabled
from .test_checkpoint import blobs, child_env, strip


@pytest.fixture(scope="module")
def blob_dir(tmp_path_factory):
    """A tiny IDX dataset (not MNIST) in a folder called ``blobs``: 12x12 images, 4 classes."""
    root = tmp_path_factory.mktemp("data") / "blobs"
    root.mkdir()
    for split, n, seed in (("train", 320, 0), ("test", 64, 1)):
        ds = blobs(n, size=12, seed=seed)
        write_idx(root / MNIST_FILES[f"{split}_images"], ds.images)
        write_idx(root / MNIST_FILES[f"{split}_labels"], ds.labels.astype(np.uint8))
    return root


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cnn_run(blob_dir, tmp_path_factory):
    """``train --model course-cnn`` once, with --json; the output folder and the events."""
    out = tmp_path_factory.mktemp("runs") / "cnn"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["train", "--model", "course-cnn", "--channels", "4", "8", "--dataset", str(blob_dir),
                     "--epochs", "2", "--batch-size", "32", "--lr", "0.01", "--out", str(out), "--json",
                     "--no-figure"])
    assert code == 0
    return out, json_lines(buf.getvalue())


def test_train_course_cnn_json_events_and_files(cnn_run):
    out, events = cnn_run
    kinds = [e["event"] for e in events]
    assert kinds == ["start", "epoch", "epoch", "done"]
    assert events[0]["dataset"] == "blobs" and events[0]["model"] == "course-cnn"  # named by its folder
    assert events[-1]["test_accuracy"] > 0.9
    for name in ("checkpoint.npz", "model.npz", "history.json", "config.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 0 and config["dataset_used"] == "blobs"
    assert config["environment"]["numpy"] == np.__version__ and "blas" in config["environment"]
    assert config["command"].startswith("tinygrad-mnist train --model course-cnn")
    ck = load(out / "model.npz")
    assert ck.extra["model"] == "course-cnn" and ck.extra["flatten"] is False and ck.epoch == 2


def test_evaluate_reports_accuracy_loss_and_confusion(cnn_run, capsys):
    out, events = cnn_run
    assert main(["evaluate", str(out / "model.npz"), "--json"]) == 0
    (result,) = json_lines(capsys.readouterr().out)
    h = History.load(out / "history.json")
    assert result["accuracy"] == pytest.approx(h.test_accuracy[-1], abs=1e-12)
    assert result["loss"] == pytest.approx(h.test_loss[-1], rel=1e-6)
    cm = np.array(result["confusion_matrix"])
    assert cm.sum() == result["n"] == 64 and np.trace(cm) / 64 == pytest.approx(result["accuracy"])
    assert main(["evaluate", str(out / "checkpoint.npz"), "--split", "train"]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "confusion matrix (rows: true class, columns: predicted)" in text
    assert "(320 images)" in text


def test_predict_png_idx_and_folder(cnn_run, blob_dir, tmp_path, capsys):
    from PIL import Image

    out, _ = cnn_run
    test = blobs(64, size=12, seed=1)
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for i in range(3):
        Image.fromarray(test.images[i]).save(pngs / f"digit{i}.png")
    # a dark-on-light, larger picture of the same image: resized and inverted automatically
    Image.fromarray(255 - np.kron(test.images[0], np.ones((3, 3), np.uint8))).save(tmp_path / "big.png")
    assert main(["predict", str(out / "model.npz"), str(pngs / "digit0.png"), str(tmp_path / "big.png"),
                 "--json"]) == 0
    rows = json_lines(capsys.readouterr().out)
    assert [r["label"] for r in rows] == [int(test.labels[0])] * 2
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-9 and len(r["top"]) == 3 for r in rows)
    assert main(["predict", str(out / "model.npz"), str(pngs), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split("\t")[1]) for line in lines] == [int(v) for v in test.labels[:3]]
    assert main(["predict", str(out / "model.npz"), str(blob_dir / MNIST_FILES["test_images"])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["input", "label", "probability"] and len(table) == 65
    assert main(["predict", str(out / "model.npz"), str(tmp_path / "nothing.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_data_dir_holding_another_idx_dataset_is_named_by_its_folder(blob_dir, tmp_path, capsys):
    out = tmp_path / "named"
    assert main(["train", "--data-dir", str(blob_dir), "--hidden", "8", "--epochs", "1", "--out", str(out),
                 "--no-download", "--allow-divergence"]) == 0
    assert "dataset: blobs  train 320" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["dataset_used"] == "blobs" and History.load(out / "history.json").config["dataset_used"] == "blobs"


def test_lenet_trains_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "mnistlike"
    root.mkdir()
    for split, n in (("train", 48), ("test", 16)):
        write_idx(root / MNIST_FILES[f"{split}_images"], rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / MNIST_FILES[f"{split}_labels"], rng.integers(0, 10, n).astype(np.uint8))
    assert main(["train", "--model", "lenet", "--dataset", str(root), "--epochs", "1", "--batch-size", "16",
                 "--out", str(tmp_path / "lenet"), "--no-figure", "--allow-divergence"]) == 0
    printed = capsys.readouterr().out
    assert "model: lenet, 44,426 parameters" in printed and "dataset: mnistlike" in printed


def test_cnn_options_reach_the_model(blob_dir, tmp_path, capsys):
    assert main(["train", "--model", "course-cnn", "--channels", "2", "4", "--residual-depth", "2",
                 "--batch-norm", "--dropout", "0.25", "--pool-first", "--augment-shift", "2",
                 "--activation", "tanh", "--dataset", str(blob_dir), "--epochs", "1", "--train-size", "64",
                 "--out", str(tmp_path / "r"), "--no-figure", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.strip().startswith("final test accuracy")  # --quiet: the result only
    model = load(tmp_path / "r" / "model.npz").model
    text = repr(model)
    assert "Residual" in text and "Dropout(p=0.25)" in text and "Tanh" in text
    assert "BatchNorm2d" not in text  # inside residual blocks the plain-conv batch norm does not apply
    assert main(["train", "--model", "course-cnn", "--channels", "2", "4", "--batch-norm", "--dataset",
                 str(blob_dir), "--epochs", "1", "--train-size", "64", "--out", str(tmp_path / "bn"),
                 "--no-figure", "--quiet"]) == 0
    assert repr(load(tmp_path / "bn" / "model.npz").model).count("BatchNorm2d") == 2


def test_config_file_with_flags_winning(blob_dir, tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[train]\nmodel = "mlp"\nhidden = [8]\nepochs = 1\nlr = 0.01\nbatch-size = 64\n'
                   f'dataset = "{blob_dir}"\nactivation = "relu"\nno_figure = true\n')
    out = tmp_path / "c"
    assert main(["train", "--config", str(cfg), "--lr", "0.02", "--out", str(out)]) == 0
    h = History.load(out / "history.json")
    assert h.config["lr"] == 0.02 and h.config["hidden"] == [8] and h.config["batch_size"] == 64
    assert h.config["activation"] == "relu" and h.epochs == 1
    capsys.readouterr()
    cfg.write_text("epochs = 1\nlearning_rate = 0.1\n")
    with pytest.raises(SystemExit) as err:
        main(["train", "--config", str(cfg)])
    assert err.value.code == 2
    assert "unknown key 'learning_rate'; valid keys:" in capsys.readouterr().err
    cfg.write_text("momentum = 2\n")
    with pytest.raises(SystemExit) as err:
        main(["train", "--config", str(cfg)])
    assert err.value.code == 2 and "momentum: must lie in [0, 1), got 2" in capsys.readouterr().err
    cfg.write_text("activation = 'softsign'\n")
    with pytest.raises(SystemExit):
        main(["train", "--config", str(cfg)])
    assert "'softsign' is not one of" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--momentum", "2"], "argument --momentum: must lie in [0, 1), got 2"),
    (["--train-size", "0"], "argument --train-size: must be a positive integer, got 0"),
    (["--lr", "0"], "argument --lr: must be positive and finite, got 0"),
    (["--lr", "inf"], "argument --lr: must be positive and finite, got inf"),
    (["--dropout", "1"], "argument --dropout: must lie in [0, 1), got 1"),
    (["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["--batch-size", "x"], "argument --batch-size: expected an integer, got 'x'"),
    (["--model", "resnet"], "argument --model: invalid choice: 'resnet' (choose from"),
    (["--optimizer", "adamax"], "argument --optimizer: invalid choice: 'adamax'"),
    (["--init", "xavier_normal_"], "argument --init: invalid choice"),
])
def test_bad_flags_are_usage_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as err:
        main(["train", *flags])
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_failures_exit_1_with_a_message(blob_dir, tmp_path, capsys):
    base = ["--dataset", str(blob_dir), "--no-figure", "--out", str(tmp_path / "f")]
    assert main(["train", *base, "--val-size", "320"]) == 1
    assert "--val-size 320.0 with 320 training images leaves a split empty" in capsys.readouterr().err
    assert main(["train", *base, "--train-size", "5000"]) == 1
    assert "--train-size 5000 is larger than the 320 training images of blobs" in capsys.readouterr().err
    assert main(["train", "--data-dir", str(tmp_path / "nowhere"), "--no-download", "--out", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err
    assert "nowhere (data_dir argument): does not exist" in err and "digits" not in err  # no silent fallback
    assert main(["train", *base, "--lr", "1e4", "--hidden", "16", "--epochs", "3"]) == 1
    err = capsys.readouterr().err
    assert "diverging: the training loss grew over epoch 1" in err and "lower the learning rate (now 10000.0)" in err
    assert main(["evaluate", str(tmp_path / "none.npz")]) == 1
    assert "checkpoint" in capsys.readouterr().err and "does not exist"


def test_resume_continues_and_refuses_other_options(blob_dir, tmp_path, capsys):
    base = ["train", "--dataset", str(blob_dir), "--hidden", "16", "--activation", "relu", "--lr", "0.01",
            "--no-figure", "--quiet", "--dropout", "0.1"]
    assert main([*base, "--epochs", "3", "--out", str(tmp_path / "full")]) == 0
    assert main([*base, "--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    assert main([*base, "--epochs", "3", "--out", str(tmp_path / "part"), "--resume"]) == 0
    a, b = History.load(tmp_path / "full" / "history.json"), History.load(tmp_path / "part" / "history.json")
    a.config.pop("out"), b.config.pop("out")
    a.config.pop("epochs"), b.config.pop("epochs")
    assert strip(a) == strip(b) and b.epochs == 3
    capsys.readouterr()
    assert main([*base, "--epochs", "4", "--lr", "0.02", "--out", str(tmp_path / "part"), "--resume"]) == 1
    assert "--resume: --lr is 0.02 but the run in" in capsys.readouterr().err


def test_help_shows_defaults_for_every_subcommand(capsys):
    for command, expected in (("train", ["(default: 256)", "default: sigmoid for classic-mlp; tanh for deep-mlp; "
                                         "relu for wide-mlp, course-cnn, small-cnn, lenet",
                                         "--resume", "--config", "--json", "--quiet"]),
                              ("evaluate", ["(default: test)", "--batch-size"]),
                              ("predict", ["(default: 3)", "(default: auto)"]),
                              ("info", ["--no-verify", "--json"]),
                              ("gradcheck", ["(default: 4)"])):
        with pytest.raises(SystemExit) as err:
            main([command, "--help"])
        assert err.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for e in expected:
            assert " ".join(e.split()) in text, (command, e)


def test_info_reports_versions_threads_and_data(blob_dir, capsys):
    assert main(["info", "--data-dir", str(blob_dir), "--json"]) == 0
    (info,) = json_lines(capsys.readouterr().out)
    assert info["environment"]["numpy"] == np.__version__ and info["environment"]["cpu_count"] >= 1
    assert info["data"]["found"] and info["data"]["name"] == "blobs" and info["data"]["verified"] is False
    assert main(["info", "--data-dir", str(blob_dir.parent / "nowhere")]) == 0
    text = capsys.readouterr().out
    assert "numpy:" in text and "MNIST not found" in text


def test_bench_delegates_to_the_benchmarks_package(monkeypatch, capsys):
    import benchmarks

    seen = {}
    monkeypatch.setattr(benchmarks, "run", lambda args: seen.setdefault("args", args) and 0)
    assert main(["bench", "--quick", "--models", "mlp"]) == 0
    assert seen["args"].quick and seen["args"].models == ["mlp"]
    with pytest.raises(SystemExit) as err:
        main(["bench", "--help"])
    assert err.value.code == 0 and "--batch-sizes" in capsys.readouterr().out


def test_ctrl_c_saves_the_last_epoch_and_says_how_to_resume(blob_dir, tmp_path):
    cmd = [sys.executable, "-m", "tinygrad_mnist", "train", "--dataset", str(blob_dir), "--model", "course-cnn",
           "--channels", "4", "8", "--batch-size", "8", "--epochs", "50", "--out", str(tmp_path / "c"), "--json",
           "--no-figure"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_enabled)
    for line in proc.stdout:
        if json.loads(line)["event"] == "epoch":
            break
    deadline = time.monotonic() + 30
    while not (tmp_path / "c" / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # epoch 1's checkpoint is written just after its event
    proc.send_signal(signal.SIGINT)  # during epoch 2
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "interrupted at epoch" in err and "the checkpoint of epoch" in err
    assert "resume with: tinygrad-mnist train --dataset" in err and err.rstrip().endswith("--resume")
    event = json_lines(rest)[-1]
    assert event["event"] == "interrupted" and event["resume"].endswith("--resume")
    assert load(tmp_path / "c" / "checkpoint.npz").epoch == event["epoch"] >= 1
