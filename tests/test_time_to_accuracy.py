"""Time to accuracy (benchmarks.time_to_accuracy, the speedrun study): the bookkeeping on a
fake clock, the recipes' parity between engines, the JSON records and the study's smoke run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks import time_to_accuracy as tta
from benchmarks.models import synthetic_split
from tinygrad_mnist.data import DataLoader


class FakeClock:
    """A clock that moves only when told: training and evaluation each advance it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_race(accuracies, train_s, eval_s, stop_at=None):
    clock = FakeClock()
    scores = iter(accuracies)

    def train_segment(_k):
        clock.now += train_s

    def evaluate():
        clock.now += eval_s  # evaluation time must not reach the curve
        return next(scores)

    return tta.race(train_segment, evaluate, len(accuracies), stop_at=stop_at, clock=clock)


def test_race_counts_training_time_only():
    curve = fake_race([0.5, 0.8, 0.9], train_s=2.0, eval_s=100.0)
    assert curve == [(2.0, 0.5), (4.0, 0.8), (6.0, 0.9)]


def test_race_stops_once_past_the_highest_threshold():
    curve = fake_race([0.5, 0.99, 0.98, 0.995], train_s=1.5, eval_s=7.0, stop_at=0.99)
    assert curve == [(1.5, 0.5), (3.0, 0.99)]


def test_first_crossing_is_the_first_point_at_or_above():
    curve = [(1.0, 0.97), (2.0, 0.991), (3.0, 0.985), (4.0, 0.996)]
    assert tta.first_crossing(curve, 0.99) == 2.0
    assert tta.first_crossing(curve, 0.991) == 2.0  # "reaches" includes equality
    assert tta.first_crossing(curve, 0.995) == 4.0
    assert tta.first_crossing(curve, 0.999) is None
    assert tta.first_crossing([], 0.5) is None


@pytest.mark.parametrize("seconds, met", [
    ([10.0, 20.0, 29.0, 30.0, 31.0], True),     # 4 of 5 within 30 s (the goal is inclusive)
    ([10.0, 20.0, 29.0, None, 31.0], False),    # a seed that never got there counts as missed
    ([10.0, 20.0, 29.0, 25.0, None], True),
    ([10.0], True), ([31.0], False), ([10.0, 40.0], False),
])
def test_goal_needs_four_of_five_seeds_within_the_time(seconds, met):
    assert tta.goal_met({"goal_s": 30.0, "seconds": seconds}) is met
    assert tta.goal_met({"goal_s": None, "seconds": seconds}) is None


def test_segments_cover_every_batch_once_in_the_loaders_order():
    train, _ = synthetic_split(100, 10)
    loader = DataLoader(train, 16, seed=3, flatten=False)
    segments = [list(s) for s in tta.segment_batches(loader, epochs=2, evals_per_epoch=3)]
    assert len(segments) == 6 and sum(len(s) for s in segments) == 2 * len(loader)
    for e in range(2):
        loader.set_epoch(e)
        want = np.concatenate([y for _, y in loader])
        got = np.concatenate([y for s in segments[3 * e:3 * e + 3] for _, y in s])
        np.testing.assert_array_equal(got, want)


def test_recipe_for_picks_the_threshold_recipe_and_rejects_beyond():
    assert tta.recipe_for(0.99) is tta.RECIPES[0.99]
    assert tta.recipe_for(0.98) is tta.RECIPES[0.99]
    assert tta.recipe_for(0.995) is tta.RECIPES[0.995]
    with pytest.raises(ValueError, match="no recipe reaches"):
        tta.recipe_for(0.999)
    with pytest.raises(ValueError, match="unknown recipe"):
        tta.plan(tta.TTAConfig(recipe="nope"))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        tta.plan(tta.TTAConfig(thresholds=(99.0,)))


@pytest.mark.parametrize("threshold", sorted(tta.RECIPES))
def test_both_engines_take_the_same_first_steps(threshold, one_torch_thread):
    """Same initial weights and batch: equal first-step loss; equal learning rate at every step."""
    torch = pytest.importorskip("torch")
    recipe = tta.RECIPES[threshold]
    train, _ = synthetic_split(3 * recipe.batch_size, 10, seed=1)
    total = recipe.total_steps(len(train))
    numpy_run = tta._NumpyRun(recipe, seed=4, total_steps=total)
    torch_run = tta._TorchRun(recipe, numpy_run)
    loader = tta.make_loader(recipe, train, seed=4)
    for k, (x, y) in enumerate(loader):
        want = numpy_run.loss.forward(numpy_run.model.forward(x), y)
        got = torch_run.loss(torch_run.model(torch.from_numpy(x)), torch.from_numpy(y)).item()
        if k == 0:  # later steps drift apart by float32 rounding through Adam's normalisation
            assert got == pytest.approx(want, rel=1e-5)
        numpy_run.step(x, y)
        torch_run.step(x, y)
        assert torch_run.opt.param_groups[0]["lr"] == pytest.approx(numpy_run.lr(), rel=1e-12)
    assert numpy_run.lr() > 0


def test_the_schedule_warms_up_then_anneals_to_zero():
    recipe = replace(tta.RECIPES[0.99], lr=0.01, warmup=0.25)
    run = tta._NumpyRun(recipe, seed=0, total_steps=8)
    rates = [run.lr()]
    for _ in range(8):
        run.schedule.step()
        rates.append(run.lr())
    assert rates[0] == pytest.approx(0.01 / 3)          # (t + 1)/(W + 1) with W = 2
    assert max(rates) == pytest.approx(0.01) and rates.index(max(rates)) == 2
    assert rates[-1] == pytest.approx(0.0, abs=1e-15)
    assert all(a >= b for a, b in zip(rates[2:], rates[3:], strict=False))


def test_bench_writes_one_record_per_engine_and_threshold(tmp_path, one_torch_thread):
    pytest.importorskip("torch")
    from benchmarks import harness

    path = tmp_path / "tta.json"
    parser = harness.add_arguments(__import__("argparse").ArgumentParser())
    args = parser.parse_args(["--time-to-accuracy", "--threshold", "0.3", "0.4", "--seeds", "2", "--threads", "1",
                              "--data", "synthetic", "--train-size", "128", "--test-size", "64",
                              "--json", str(path), "--no-stop-early"])
    lines = []
    assert harness.run(args, log=lines.append) == 0
    records = json.loads(path.read_text())
    assert [(r["engine"], r["threshold"]) for r in records] == [
        ("numpy", 0.3), ("numpy", 0.4), ("torch", 0.3), ("torch", 0.4)]
    for r in records:
        assert {"engine", "threshold", "seconds", "recipe", "seeds", "curves", "threads", "machine"} <= set(r)
        assert r["recipe"] == "fast-99.0" and r["seeds"] == [0, 1] and r["threads"] == 1
        assert len(r["seconds"]) == len(r["curves"]) == 2
        for s, c in zip(r["seconds"], r["curves"], strict=True):
            assert s == tta.first_crossing(c, r["threshold"])
            assert len(c) == tta.RECIPES[0.99].epochs * tta.RECIPES[0.99].evals_per_epoch  # no early stop
    assert any("| numpy | 30.00% |" in line for line in lines)
    assert any("evaluations are excluded" in line for line in lines)


def test_speedrun_smoke_writes_its_files(tmp_path, one_torch_thread):
    pytest.importorskip("torch")
    from experiments import runner

    result = runner.run_study("speedrun", ["--smoke", "--out", str(tmp_path)], echo=False)
    out = Path(result["out"])
    for name in ("time_to_accuracy.md", "time_to_accuracy.csv", "curves.png", "records.json", "metrics.json",
                 "manifest.json"):
        assert (out / name).is_file(), name
    runs = result["metrics"]["runs"]
    assert [(r["engine"], r["threshold_pct"]) for r in runs] == [("numpy", 99.0), ("torch", 99.0)]
    assert "Training seconds" in (out / "log.txt").read_text()
