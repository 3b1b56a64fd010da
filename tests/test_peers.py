"""``bench --peers``: autograd and MyGrad train the same model as the numpy engine, from the
same weights, and the record and the printed table carry them.

Nothing here asserts a speed (speed goals live in the benchmark's output).
"""

import json

import numpy as np
import pytest

from benchmarks import harness
from benchmarks.models import MODELS, BenchModel, load_data
from benchmarks.peers import (
    PEER_NAMES,
    PeerBench,
    check_supported,
    make_peer_sides,
    peer_table_cells,
    peer_target_lines,
    sgd_momentum,
)
from benchmarks.steps import make_sides
from tinygrad_mnist import SGD
from tinygrad_mnist.data import DataLoader
from tinygrad_mnist.models import CourseCNNSpec
from tinygrad_mnist.nn import Parameter

#: float32 unit roundoff (half of machine epsilon 2⁻²³).
U32 = 2.0 ** -24
#: The loss is a log-sum-exp over 10 classes and a mean over the batch, in float32 on both
#: sides with the same inputs: a few roundings of u each, so ~16 u bounds the difference.
LOSS_RTOL = 16 * U32
#: A gradient entry is a sum over the batch (and, for a filter, over 28×28 positions) whose
#: terms both sides add in a different order; with ~16·784 terms the rounding grows like
#: √terms · u ≈ 112 · 6e-8 ≈ 7e-6 of the largest entry, so 1e-5 of it is the bound.
GRAD_RTOL = 1e-5

LR, MOMENTUM, BATCH = 0.05, 0.9, 16


def first_batch(bench_model):
    train, _ = load_data("synthetic", None, 64, 16, 0)
    return next(iter(DataLoader(train, BATCH, shuffle=True, seed=0, flatten=bench_model.flatten)))


@pytest.mark.parametrize("peer", PEER_NAMES)
@pytest.mark.parametrize("model_name", list(MODELS))
def test_a_peer_takes_the_same_first_step_as_the_numpy_engine(model_name, peer):
    bench_model = MODELS[model_name]
    numpy_side = make_sides(bench_model, 0, LR, MOMENTUM, which=("numpy",))["numpy"]
    sides, notes = make_peer_sides(bench_model, numpy_side.model, LR, MOMENTUM, names=(peer,))
    assert notes == {} and list(sides) == [peer]
    peer_side = sides[peer]
    start = [np.array(p.data, copy=True) for p in numpy_side.model.parameters()]
    for ours, theirs in zip(start, peer_side.weight_arrays(), strict=True):
        np.testing.assert_array_equal(theirs, ours)   # a copy of the same weights
    x, y = first_batch(bench_model)

    our_loss, their_loss = numpy_side.step(x, y), peer_side.step(x, y)
    assert their_loss == pytest.approx(our_loss, rel=LOSS_RTOL)

    # after one step the momentum buffer is the gradient (b = 0 + g)
    for p, their_grad in zip(numpy_side.model.parameters(), peer_side.velocity, strict=True):
        assert their_grad.dtype == p.grad.dtype == np.float32
        np.testing.assert_allclose(their_grad, p.grad, rtol=0, atol=GRAD_RTOL * np.abs(p.grad).max())
    # θ - lr·g: each side rounds once to float32 (≤ 2u|θ| apart), plus lr times the gradient gap
    for p, w0, theirs in zip(numpy_side.model.parameters(), start, peer_side.weight_arrays(), strict=True):
        assert not np.array_equal(theirs, w0)
        atol = 2 * U32 * np.abs(w0).max() + LR * GRAD_RTOL * np.abs(p.grad).max()
        np.testing.assert_allclose(theirs, p.data, rtol=0, atol=atol)


def test_the_peers_update_is_the_engines_sgd_with_momentum():
    rng = np.random.default_rng(0)
    start = rng.standard_normal((5, 3))
    grads = [rng.standard_normal((5, 3)) for _ in range(3)]
    ours = Parameter(start.copy())
    opt = SGD([ours], lr=0.1, momentum=0.9)
    theirs, velocity = start.copy(), np.zeros_like(start)
    for g in grads:
        ours.grad[...] = g
        opt.step()
        sgd_momentum([theirs], [g], [velocity], 0.1, 0.9)
        np.testing.assert_allclose(theirs, ours.data, rtol=1e-12, atol=0)


def test_a_model_the_peers_cannot_express_gets_a_reason_not_a_time():
    with_bn = BenchModel("bn-cnn", CourseCNNSpec(batch_norm=True))
    numpy_model = with_bn.build_numpy(seed=0)
    sides, notes = make_peer_sides(with_bn, numpy_model, LR, MOMENTUM)
    assert sides == {}
    assert set(notes) == set(PEER_NAMES) and all("batchnorm2d" in why for why in notes.values())
    bench = PeerBench(with_bn, numpy_model, LR, MOMENTUM, epochs=1)
    _, test = load_data("synthetic", None, 16, 8, 0)
    rec = bench.record([0.5], test, 8)
    assert rec["peers"] == {name: None for name in PEER_NAMES} and rec["numpy_vs_fastest_peer"] is None
    rec.update(model="bn-cnn", batch_size=8, threads=1)
    assert peer_table_cells(rec, 1) == " – | – | – |"
    assert peer_target_lines([rec]) == ["| bn-cnn | 8 | 1 | numpy ≥ 2× faster than the fastest numpy peer "
                                        "| no peer ran | – |"]


def test_unknown_peer_and_bad_peer_epochs_are_refused():
    with pytest.raises(ValueError, match="unknown peer"):
        make_peer_sides(MODELS["classic-mlp"], MODELS["classic-mlp"].build_numpy(0), LR, MOMENTUM, names=("jax",))
    with pytest.raises(ValueError, match="peer-epochs"):
        harness.main(["--quick", "--data", "synthetic", "--peers", "--peer-epochs", "-1"])
    check_supported(MODELS["course-cnn"].layers())   # the bench models are all expressible


@pytest.fixture(scope="module")
def peer_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("peers") / "bench.json"
    rc = harness.main(["--quick", "--data", "synthetic", "--train-size", "128", "--test-size", "64",
                       "--threads", "1", "--no-memory", "--models", "classic-mlp", "course-cnn",
                       "--batch-sizes", "32", "--epochs", "2", "--peers", "--peer-epochs", "1",
                       "--json", str(path)])
    return rc, json.loads(path.read_text())


def test_peers_json_record_has_the_documented_keys(peer_run):
    rc, records = peer_run
    assert rc == 0 and [r["model"] for r in records] == ["classic-mlp", "course-cnn"]
    for r in records:
        assert {"model", "batch_size", "numpy_epoch_s", "ratio", "numpy_peak_rss_mb", "peers", "peer_notes",
                "peer_epochs", "peer_epochs_s", "peer_speedups", "peer_accuracy", "fastest_peer",
                "numpy_vs_fastest_peer"} <= set(r)
        assert set(r["peers"]) == set(PEER_NAMES) and r["peer_notes"] == {}
        assert all(s > 0 for s in r["peers"].values())
        assert r["peer_epochs"] == {name: 1 for name in PEER_NAMES} and r["epochs"] == 2
        fastest = min(r["peers"], key=r["peers"].get)
        assert r["fastest_peer"] == fastest
        assert r["numpy_vs_fastest_peer"] == pytest.approx(r["peers"][fastest] / r["numpy_epoch_s"])


def test_peers_follow_the_numpy_trajectory_over_an_epoch(peer_run):
    for r in peer_run[1]:
        for name in PEER_NAMES:
            # an epoch of 4 steps from the same start on the same batches: the mean losses
            # agree to float32 rounding grown over a few steps
            assert r["peer_train_loss"][name][0] == pytest.approx(r["numpy_train_loss"][0], rel=1e-4)
            # (accuracy is not compared: here the peers train 1 epoch, numpy 2)
            assert 0.0 <= r["peer_accuracy"][name] <= 1.0


def test_the_table_and_targets_show_the_peers(peer_run):
    records = peer_run[1]
    table = harness.format_table(records)
    head, rule, *rows = table.splitlines()
    assert head.endswith("| autograd s/epoch | mygrad s/epoch | numpy vs fastest peer |")
    assert rule.count("---") == head.count("|") - 1
    for r, row in zip(records, rows, strict=True):
        assert row.count("(1 epoch)") == 2            # fewer peer epochs than numpy's, said so
        assert f"{r['numpy_vs_fastest_peer']:.2f}× ({r['fastest_peer']})" in row
    targets = harness.format_targets(records)
    for r in records:
        verdict = "met" if r["numpy_vs_fastest_peer"] >= 2 else "missed"
        assert (f"| {r['model']} | 32 | 1 | numpy ≥ 2× faster than the fastest numpy peer "
                f"| {r['numpy_vs_fastest_peer']:.2f}× ({r['fastest_peer']}) | {verdict} |") in targets
