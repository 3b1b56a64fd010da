"""One vocabulary of models (``tinygrad_mnist.presets``) across every command; train's output
folder is never overwritten silently; every flag of every command says what it means, once."""

import argparse
import json
import re

import numpy as np
import pytest

from tinygrad_mnist.cli.main import build_parser, main
from tinygrad_mnist.models import num_parameters
from tinygrad_mnist.presets import ALIASES, NAMES, PRESETS, canonical, get

SUBCOMMANDS = ("train", "evaluate", "predict", "info", "gradcheck", "explore", "models", "bench")


def _help(capsys, argv) -> str:
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 0
    return capsys.readouterr().out


def _option_blocks(text: str) -> list:
    """The help of each option: its line(s) from ``  -x, --flag ...`` to the next option."""
    blocks, current = [], None
    for line in text.splitlines():
        if re.match(r"^  -", line):
            current = [line]
            blocks.append(current)
        elif current is not None and line.startswith("    "):
            current.append(line)
        else:
            current = None
    return [" ".join(" ".join(b).split()) for b in blocks]


def _model_action(parser: argparse.ArgumentParser) -> argparse.Action:
    return next(a for a in parser._actions if "--model" in a.option_strings)


def test_every_command_names_the_registry_models():
    sub = {a.dest: a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)}["command"]
    for command in ("train", "explore", "gradcheck"):
        assert tuple(_model_action(sub.choices[command]).choices) == NAMES, command
    pytest.importorskip("torch")
    from benchmarks.models import model_by_name
    from experiments.studies.cnn.torch_models import ARCHS

    for name in NAMES:
        bench = model_by_name(name)
        assert bench.name == name
        # the benchmark folds a final Softmax into its loss; every other layer is the preset's
        assert [d for d in bench.layers()] == [d for d in get(name).layers() if d.kwargs.get("name") != "softmax"]
    assert set(NAMES) <= set(ARCHS)


def test_help_of_each_command_lists_the_names(capsys):
    for argv in (["train", "--help"], ["explore", "--help"], ["gradcheck", "--help"], ["bench", "--help"]):
        text = " ".join(_help(capsys, argv).split())
        for name in NAMES:
            assert name in text, (argv, name)


def test_old_spellings_map_to_the_registry_with_a_note(capsys):
    assert canonical("mlp") == "classic-mlp" and canonical("course_cnn") == "course-cnn"
    assert "deprecated" in capsys.readouterr().err
    assert all(new in PRESETS for new in ALIASES.values())
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        canonical("resnet")
    args = build_parser().parse_args(["gradcheck", "--arch", "cnn"])
    assert args.model == "course-cnn"
    assert build_parser().parse_args(["train", "--model", "mlp"]).model == "classic-mlp"


def test_models_lists_every_preset_with_its_parameter_count(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for name, preset in PRESETS.items():
        counted = preset.build(seed=0).num_parameters()  # build the model and count
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert f"{counted:,} parameters" in line
    assert main(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == list(NAMES)
    for row in rows:
        preset = PRESETS[row["name"]]
        assert row["parameters"] == preset.build().num_parameters() == num_parameters(preset.layers())
    assert {r["name"]: r["parameters"] for r in rows}["classic-mlp"] == 784 * 64 + 64 + 64 * 10 + 10
    assert {r["name"]: r["parameters"] for r in rows}["course-cnn"] == 21578
    assert {r["name"]: r["parameters"] for r in rows}["lenet"] == 44426


def test_presets_adapt_to_other_images_and_reject_foreign_options():
    spec = get("classic-mlp").spec_for((8, 8), 10, hidden=(5,))
    assert spec.sizes == (64, 5, 10) and spec.output == "softmax"
    assert get("small-cnn").spec_for((8, 8), 3).channels == (4, 8)
    with pytest.raises(ValueError, match="no option channels"):
        get("classic-mlp").spec_for(channels=(2,))
    with pytest.raises(ValueError, match="square images"):
        get("lenet").spec_for((28, 20))


TINY = ["--dataset", "digits", "--train-size", "200", "--hidden", "8", "--no-figure", "--quiet"]


def test_train_refuses_to_overwrite_another_run(tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")]
    assert main(["train", *TINY, *out, "--epochs", "1"]) == 0
    first = np.load(tmp_path / "run" / "model.npz")["0.weight"].copy()
    capsys.readouterr()
    assert main(["train", *TINY, *out, "--epochs", "1", "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "already holds model.npz and checkpoint.npz" in err and "--overwrite" in err and "--resume" in err
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "model.npz")["0.weight"], first)  # untouched
    assert main(["train", *TINY, *out, "--epochs", "1", "--seed", "1", "--overwrite"]) == 0
    assert not np.array_equal(np.load(tmp_path / "run" / "model.npz")["0.weight"], first)
    assert main(["train", *TINY, *out, "--epochs", "2", "--seed", "1", "--resume"]) == 0


def test_train_writes_each_model_into_its_own_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--epochs", "1"]) == 0
    assert main(["train", "--model", "small-cnn", "--channels", "2", "2", "--dataset", "digits", "--train-size",
                 "200", "--epochs", "1", "--no-figure", "--quiet"]) == 0
    for name in ("classic-mlp", "small-cnn"):
        assert (tmp_path / "results" / "train" / name / "model.npz").is_file()
    config = json.loads((tmp_path / "results" / "train" / "classic-mlp" / "config.json").read_text())
    assert config["out"] == "results/train/classic-mlp" and config["spec"]["preset"] == "classic-mlp"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_option_has_help_and_its_default_once(command, capsys):
    text = _help(capsys, [command, "--help"])
    assert "(default: None)" not in text
    blocks = _option_blocks(text.split("options:", 1)[1])
    assert blocks, command
    for block in blocks:
        if block.startswith("-h, --help"):
            continue
        signature = re.match(r"^((?:-[-\w]+(?: [A-Z_{][^ ,]*(?: \[[^]]*\])?)?(?:, )?)+)", block).group(1)
        assert len(block) > len(signature) + 3, (command, block)  # a meaning after the flag
        assert block.count("default:") + block.count("default ") <= 1, (command, block)


def test_study_flags_say_what_zero_means(capsys):
    from experiments.runner import build_config, load_study
    from experiments.runner import main as experiments_main

    try:  # python -m experiments run baseline --help
        code = experiments_main(["run", "baseline", "--help"])
    except SystemExit as err:
        code = err.code
    assert code == 0
    blocks = {b.split()[0]: b for b in _option_blocks(capsys.readouterr().out)}
    assert "training images to use (0: all) (default: 0)" in blocks["--train-size"]
    assert "(0: none)" in blocks["--val-size"] and "(0: all)" in blocks["--test-size"]
    assert "learning rate" in blocks["--lr"] and "(default: 0.5)" in blocks["--lr"]
    assert all(b.count("default:") == 1 for k, b in blocks.items() if k not in ("-h,", "--quick", "--smoke"))
    assert build_config(load_study("baseline"), ["--train-size", "5"])[0].train_size == 5
