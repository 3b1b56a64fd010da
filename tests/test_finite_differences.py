"""The finite-difference experiment in quick mode (on the bundled 8x8 digits): files and the V."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from experiments.studies.mlp.finite_differences import Config, run


def test_quick_mode_writes_its_files_and_float64_errors_form_a_v(tmp_path):
    pytest.importorskip("sklearn")
    cfg = Config().quick()
    cfg.dataset, cfg.out = "digits", str(tmp_path)
    metrics = run(cfg, log=lambda *a: None)
    out = tmp_path / "finite_differences"
    for name in ("config.json", "metrics.json", "errors.md", "errors.csv", "gradients.md", "gradients.csv",
                 "errors.png"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "config.json").read_text())["ns"] == list(cfg.ns)
    with open(out / "errors.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["N"]) for r in rows] == list(cfg.ns)

    e64 = np.array([float(r["max_abs_error_float64"]) for r in rows])
    k = int(np.argmin(e64))
    assert metrics["float64"]["N"] == cfg.ns[k] and metrics["float64"]["min_error"] == e64[k]
    # the V: the minimum is interior, and both arms rise well above it
    assert 0 < k < len(e64) - 1
    assert e64[0] > 1e3 * e64[k] and e64[-1] > 1e2 * e64[k]
    # left arm: truncation error ∝ ε², a factor ~100 per decade of N
    assert 30 < e64[1] / e64[2] < 300
    # right arm: rounding error ∝ 1/ε, a factor ~10 per decade of N
    assert 3 < e64[-1] / e64[-2] < 30
    # float32 rounds 2^29 times more coarsely: its best is far worse, at a larger ε
    assert metrics["float32"]["min_error"] > 1e3 * metrics["float64"]["min_error"]
    assert metrics["float32"]["N"] < metrics["float64"]["N"]
