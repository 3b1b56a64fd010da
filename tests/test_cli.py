"""The main job, ``tinygrad-mnist train``, end to end on a small budget."""

import json
import subprocess
import sys

import pytest

from tinygrad_mnist.cli import main
from tinygrad_mnist.train import History

from .conftest import REPO, mnist_dir

EXPECTED_LISTS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
                  "epoch_seconds")


def test_train_on_mnist_writes_history_figure_model_and_config(tmp_path, capsys):
    if mnist_dir() is None:
        pytest.skip("real MNIST not found (set TINYGRAD_MNIST_DATA)")
    out = tmp_path / "run"
    code = main(["train", "--epochs", "2", "--train-size", "3000", "--val-size", "500",
                 "--data-dir", str(mnist_dir()), "--out", str(out), "--no-progress", "--no-download"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "dataset: mnist  train 2500  val 500  test 10000" in printed
    assert "final test accuracy" in printed
    raw = json.loads((out / "history.json").read_text())
    for name in EXPECTED_LISTS:
        assert len(raw[name]) == 2, name
    assert all(0 <= a <= 1 for a in raw["test_accuracy"])
    assert raw["config"]["lr"] == 0.001 and raw["config"]["spec"]["sizes"] == [784, 64, 10]
    assert (out / "learning_curves.png").stat().st_size > 10_000
    assert (out / "model.npz").exists() and (out / "config.json").exists()
    assert History.load(out / "history.json").test_accuracy[-1] > 0.5


def test_missing_mnist_falls_back_to_digits_loudly(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    monkeypatch.setenv("TINYGRAD_MNIST_DATA", str(empty))
    monkeypatch.setenv("TINYGRAD_MNIST_CACHE", str(empty))
    out = tmp_path / "run"
    code = main(["train", "--epochs", "1", "--lr", "0.01", "--out", str(out), "--no-progress", "--no-download"])
    assert code == 0
    captured = capsys.readouterr()
    assert "MNIST IS NOT AVAILABLE" in captured.err
    assert "train-images-idx3-ubyte" in captured.err and str(empty) in captured.err
    assert "dataset: digits" in captured.out
    assert json.loads((out / "history.json").read_text())["config"]["spec"]["sizes"] == [64, 64, 10]


def test_bad_flags_exit_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--activation", "softsign"])
    assert "invalid choice: 'softsign'" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 1
    assert "tinygrad-mnist: error:" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "tinygrad_mnist", "train", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--batch-size" in result.stdout and "--init-std" in result.stdout


def test_adam_dropout_and_schedule_flags_reach_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--hidden", "32", "--activation", "relu", "--output", "logits",
                 "--reduction", "mean", "--optimizer", "adam", "--lr", "0.01", "--weight-decay", "1e-4",
                 "--dropout", "0.2", "--schedule", "cosine", "--warmup-epochs", "1", "--epochs", "3",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Dropout(p=0.2)" in printed and "Adam(lr=0.005" in printed  # warm-up starts at lr/2
    h = History.load(out / "history.json")
    assert h.epochs == 3 and h.test_accuracy[-1] > 0.8


def test_gradcheck_subcommand_passes_on_a_correct_model(capsys):
    assert main(["gradcheck", "--hidden", "6", "--activation", "sigmoid", "--batch", "2"]) == 0
    assert "PASSED" in capsys.readouterr().out
