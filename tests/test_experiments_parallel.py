"""Independent trainings give identical results serially, in joblib processes and on a real
two-worker dask.distributed LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.parallel import run_tasks
from experiments.training import Data, Run, train


def _write_idx(path, array):
    """The IDX format by hand: magic (0, 0, 0x08 = uint8, ndim), big-endian sizes, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny IDX dataset on disk (workers read it themselves; no scikit-learn import there)."""
    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for split, n in (("train", 240), ("t10k", 60)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 8, 8)) + (labels[:, None, None] == np.arange(8)[None, :, None]) * 200
        _write_idx(root / f"{split}-images-idx3-ubyte", images)
        _write_idx(root / f"{split}-labels-idx1-ubyte", labels)
    return Data(str(root), None, train_size=180, val_size=40)


def _tasks(data):
    return [(Run(hidden=(8,), epochs=2, batch_size=32, seed=s, activation="relu", init="glorot_uniform", lr=0.1), data)
            for s in (0, 1)]


def _numbers(result: dict) -> dict:
    """Everything a run measured except the wall-clock times."""
    h = result["history"]
    keys = ("train_loss", "train_accuracy", "train_eval_loss", "val_loss", "val_accuracy", "test_loss",
            "test_accuracy", "batch_loss")
    return {k: h[k] for k in keys}


@pytest.fixture(scope="module")
def serial(data):
    return [_numbers(r) for r in run_tasks(train, _tasks(data))]


def test_serial_runs_differ_by_seed(serial):
    assert serial[0] != serial[1]
    assert serial[0]["val_accuracy"][-1] > 0.2          # the synthetic digits are learnable


def test_joblib_processes_match_serial(serial, data):
    parallel = run_tasks(train, _tasks(data), jobs=2)
    assert [_numbers(r) for r in parallel] == serial


def test_dask_local_cluster_matches_serial(serial, data):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert len(cluster.workers) == 2
        results = run_tasks(train, _tasks(data), scheduler=cluster.scheduler_address)
    assert [_numbers(r) for r in results] == serial


def test_jobs_must_be_positive_or_minus_one(data):
    with pytest.raises(ValueError, match="jobs"):
        run_tasks(train, _tasks(data), jobs=0)
