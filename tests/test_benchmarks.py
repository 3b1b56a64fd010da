"""The benchmark harness (``python -m benchmarks``): records, comparison, profile, scaling.

Smoke runs on tiny synthetic data; nothing here asserts a speed (speed goals live in the
benchmark's output, not in tests).
"""

import json
import statistics

import numpy as np
import pytest

pytest.importorskip("torch")

from benchmarks import harness  # noqa: E402
from benchmarks.memory import peak_rss_mb  # noqa: E402
from benchmarks.models import MODELS, gemm_flops_per_sample, model_by_name  # noqa: E402

#: The keys the issue asks every record to have.
ISSUE_KEYS = {"model", "batch_size", "threads", "numpy_epoch_s", "torch_epoch_s", "ratio", "gflops",
              "gemm_peak_gflops", "numpy_peak_rss_mb", "torch_peak_rss_mb", "numpy_accuracy",
              "torch_accuracy", "machine"}

TINY = ["--quick", "--data", "synthetic", "--train-size", "256", "--test-size", "128", "--threads", "1"]


@pytest.fixture(scope="module")
def quick_records(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    rc = harness.main(TINY + ["--models", "classic-mlp", "course-cnn", "--batch-sizes", "32",
                              "--profile", "--json", str(path)])
    return rc, json.loads(path.read_text())


def test_quick_run_writes_one_record_per_model_and_batch(quick_records):
    rc, records = quick_records
    assert rc == 0
    assert [(r["model"], r["batch_size"], r["threads"]) for r in records] == [
        ("classic-mlp", 32, 1), ("course-cnn", 32, 1)]
    for r in records:
        assert ISSUE_KEYS <= set(r)
        assert set(harness.RECORD_KEYS) == ISSUE_KEYS


def test_record_values_are_consistent(quick_records):
    for r in quick_records[1]:
        assert len(r["numpy_epochs_s"]) == len(r["torch_epochs_s"]) == 3
        assert r["numpy_epoch_s"] == statistics.median(r["numpy_epochs_s"])
        assert r["torch_epoch_s"] == statistics.median(r["torch_epochs_s"])
        pairs = [a / b for a, b in zip(r["numpy_epochs_s"], r["torch_epochs_s"], strict=True)]
        assert r["ratio"] == pytest.approx(statistics.median(pairs))
        assert r["ratio_min"] <= r["ratio"] <= r["ratio_max"]
        flops = model_by_name(r["model"]).gemm_flops_per_sample() * r["train_samples"]
        assert r["gflops"] == pytest.approx(flops / r["numpy_epoch_s"] / 1e9)
        assert r["gemm_peak_gflops"] > 0
        assert r["gemm_share"] == pytest.approx(r["gflops"] / r["gemm_peak_gflops"])
        assert 0.0 <= r["numpy_accuracy"] <= 1.0 and 0.0 <= r["torch_accuracy"] <= 1.0
        # the torch process loads torch on top of what numpy needs
        assert 0 < r["numpy_peak_rss_mb"] < r["torch_peak_rss_mb"]
        assert r["machine"]["cpu"] and r["machine"]["numpy"]
        assert r["start_logit_max_diff"] < 1e-4  # both sides start from the same weights


def test_the_sides_follow_the_same_trajectory(quick_records):
    for r in quick_records[1]:
        assert r["numpy_train_loss"] == pytest.approx(r["torch_train_loss"], rel=0.05)


def test_profile_names_every_layer_and_splits_the_step(quick_records):
    for r in quick_records[1]:
        prof = r["profile"]
        n_layers = len(model_by_name(r["model"]).build_numpy())
        assert len(prof["layers"]) == n_layers
        for row in prof["layers"]:
            assert row["numpy_forward_ms"] >= 0 and row["numpy_backward_ms"] >= 0
            assert row["torch_forward_ms"] >= 0 and row["torch_backward_ms"] >= 0
        s = prof["numpy_split"]
        assert s["gemm_ms"] > 0 and s["python_overhead_ms"] >= 0 and s["elementwise_ms"] >= 0
        assert s["gemm_ms"] == pytest.approx(sum(s["gemms"].values()))
        bw = prof["bandwidth"]
        assert bw["copy_gbs"] > 0 and bw["copy_array_bytes"] == 16 * 2**20  # --quick's size
        assert set(bw["gemms"]) == set(s["gemms"])
        assert {"loss", "optimiser", "data"} <= {p["phase"] for p in bw["phases"]}
    cnn_gemms = quick_records[1][1]["profile"]["numpy_split"]["gemms"]
    # the first convolution reads data: no input-gradient GEMM for it, one for the others
    assert not any(k.startswith("0 ") and "dcols" in k for k in cnn_gemms)
    assert any(k.startswith("3 ") and "dcols" in k for k in cnn_gemms)


def test_compare_prints_the_ratio_change(tmp_path, capsys):
    def rec(model, batch, ratio, seconds):
        return {"model": model, "batch_size": batch, "threads": 2, "ratio": ratio, "numpy_epoch_s": seconds}

    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps([rec("course-cnn", 64, 1.25, 10.0), rec("mlp-784-64-10", 64, 0.5, 1.0)]))  # old name
    new.write_text(json.dumps([rec("course-cnn", 64, 1.0, 8.0), rec("course-cnn", 256, 0.9, 5.0)]))
    assert harness.main(["--compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "| course-cnn | 64 | 2 | 1.250 | 1.000 | -20.0% | 10.000 | 8.000 |" in out
    assert "| classic-mlp | 64 | 2 | 0.500 | – | only in old |" in out
    assert "| course-cnn | 256 | 2 | – | 0.900 | only in new |" in out


def test_compare_rejects_a_file_that_is_not_a_record_list(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "x"}))
    with pytest.raises(ValueError, match="list of benchmark records"):
        harness.compare(bad, bad)


def test_gemm_flops_count_forward_weight_and_input_gradients():
    # 784-64-10: first layer forward + dW only (4·784·64), second also dx (6·64·10)
    assert MODELS["classic-mlp"].gemm_flops_per_sample() == 4 * 784 * 64 + 6 * 64 * 10
    # course CNN: 3×3 convs 1→8 @28², 8→16 @14², 16→32 @7², then linear 1568→10
    macs = [8 * 9 * 28 * 28, 16 * 8 * 9 * 14 * 14, 32 * 16 * 9 * 7 * 7, 1568 * 10]
    assert MODELS["course-cnn"].gemm_flops_per_sample() == 4 * macs[0] + 6 * sum(macs[1:])
    assert gemm_flops_per_sample(model_by_name("mlp-784-32-32-10").layers()) == (
        4 * 784 * 32 + 6 * 32 * 32 + 6 * 32 * 10)


def test_unknown_model_is_refused_before_any_timing():
    with pytest.raises(ValueError, match="unknown model"):
        harness.main(TINY + ["--models", "resnet-50"])


def test_memory_child_measures_one_side_without_the_other():
    res = peak_rss_mb("numpy", "classic-mlp", 32, threads=1, batches=2, data="synthetic",
                      data_dir=None, train_size=128, test_size=64)
    assert res["torch_loaded"] is False
    assert res["peak_rss_mb"] >= res["interpreter_rss_mb"] > 0
    assert 0.0 <= res["accuracy"] <= 1.0


def test_scaling_writes_tables_and_plots(tmp_path):
    out = tmp_path / "scaling"
    rc = harness.main(TINY + ["--models", "classic-mlp", "--batch-sizes", "32", "--no-memory",
                              "--scaling", "--scaling-size", "128", "--out", str(out)])
    assert rc == 0
    data = json.loads((out / "scaling.json").read_text())
    assert [p["width"] for p in data["width"]] == [16, 64, 256]
    assert [p["batch_size"] for p in data["batch"]] == [16, 64, 256]
    for p in data["width"] + data["batch"]:
        assert p["numpy_epoch_s"] > 0 and p["torch_epoch_s"] > 0
        assert p["ratio"] > 0
    for name in ("width_scaling.png", "batch_scaling.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| width | mlp-784-16-16-10 | 256 | 1 |" in (out / "scaling.md").read_text()


def test_targets_are_marked_met_or_missed():
    def rec(model, batch, ratio, share=0.5, rss=150.0):
        return {"model": model, "batch_size": batch, "threads": 2, "ratio": ratio, "gemm_share": share,
                "gflops": 100 * share, "gemm_peak_gflops": 100.0, "numpy_peak_rss_mb": rss}

    out = harness.format_targets([rec("classic-mlp", 64, 0.45), rec("wide-mlp", 256, 1.07, 0.7, 450.0),
                                  rec("course-cnn", 256, 1.15)])
    assert "| classic-mlp | 64 | 2 | R ≤ 0.60 | R = 0.45 | met |" in out
    assert "| wide-mlp | 256 | 2 | R ≤ 1.00 | R = 1.07 | missed |" in out
    assert "| course-cnn | 256 | 2 | R ≤ 1.15 | R = 1.15 | met |" in out
    assert "| wide-mlp | 256 | 2 | numpy peak RSS ≤ 400 MB | 450 MB | missed |" in out


def test_step_levers_time_every_variant_on_both_mlps():
    from concurrent.futures import ThreadPoolExecutor

    from benchmarks.bench_levers import step_lever

    rows = step_lever(np.random.default_rng(0), ThreadPoolExecutor(1), rounds=1, steps=2)
    assert [name for name, _ in rows] == [f"step {m} batch {n}" for m in ("784-512-512-10", "784-64-10")
                                          for n in (64, 256)]
    for _, times in rows:
        assert list(times) == ["engine (used)", "eager zero fill", "grad = None (fresh arrays)",
                               "momentum on 2 threads", "(W xᵀ)ᵀ forward"]
        assert all(0 < t < 1e4 for t in times.values())


def test_adaptive_lever_times_the_in_place_and_the_paper_form():
    from benchmarks.bench_levers import adaptive_lever

    rows = adaptive_lever(np.random.default_rng(0), rounds=1, steps=2)
    assert [name for name, _ in rows] == [
        "adam step 784-512-512-10 batch 64", "rmsprop step 784-512-512-10 batch 64",
        "adagrad step 784-512-512-10 batch 64", "adam step 784-512-512-10 batch 256", "adam step course-cnn batch 64"]
    for _, times in rows:
        assert list(times) == ["in place (used)", "paper's lines"]
        assert all(0 < t < 1e4 for t in times.values())


def test_flush_lever_seeds_subnormal_first_moments_and_times_four_variants():
    from benchmarks.bench_levers import _first_moments, flush_lever
    from tinygrad_mnist.models import MLPSpec, build_mlp
    from tinygrad_mnist.optim import Adam

    rows = flush_lever(np.random.default_rng(0), rounds=1, steps=2)
    assert [name for name, _ in rows] == ["flush 32 of 784 columns batch 64", "flush 32 of 784 columns batch 256"]
    for _, times in rows:
        assert len(times) == 4 and all(0 < t < 1e4 for t in times.values())
    model = build_mlp(MLPSpec(sizes=(784, 8, 10)), seed=0)
    opt = Adam(model.parameters())
    for p in opt.params:
        p.grad[...] = 1.0
    opt.step()
    _first_moments(opt, 3, True, 2)()
    m = opt.state[0]["exp_avg"]
    tiny = np.finfo(np.float32).tiny
    assert opt.flush_every == 2 and np.all((m[:, :3] > 0) & (m[:, :3] < tiny)) and np.all(m[:, 3:] >= tiny)
    for p in opt.params:
        p.grad[...] = 0.0
    opt.step()  # step 2: m ← 0.9 m, still subnormal, then flushed
    assert np.all(opt.state[0]["exp_avg"][:, :3] == 0) and np.all(opt.state[0]["exp_avg"][:, 3:] >= tiny)


def test_each_measured_epoch_starts_after_an_untimed_pause(monkeypatch):
    """The pause that lets the other side's threads stop spinning is taken before the
    clock starts, and the command line sets it (0 in a quick run)."""
    import argparse

    from benchmarks import steps
    from benchmarks.models import load_data

    clock, pauses = [0.0], []
    monkeypatch.setattr(steps.time, "sleep", lambda s: (pauses.append(s), clock.__setitem__(0, clock[0] + s)))
    monkeypatch.setattr(steps.time, "perf_counter", lambda: clock[0])
    train, _ = load_data("synthetic", None, 64, 16, 0)
    side = steps.make_sides(model_by_name("classic-mlp"), 0, 0.05, 0.9, which=("numpy",))["numpy"]
    seconds, loss = side.timed_epoch(steps.DataLoader(train, 32), 1, 0.3)
    assert pauses == [0.3] and seconds == 0.0 and np.isfinite(loss)
    parse = harness.add_arguments(argparse.ArgumentParser()).parse_args
    assert harness.config_from_args(parse(["--settle", "0.7"])).settle_s == 0.7
    assert harness.BenchConfig().settle_s == 0.3 and harness.BenchConfig().apply_quick().settle_s == 0.0
