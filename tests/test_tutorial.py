"""docs/tutorial.ipynb runs top to bottom in a real Jupyter kernel and shows what it says.

The notebook is executed by ``docs/build_tutorial.py`` (nbclient, a kernel started from
this interpreter), the script that also saves it with its outputs (``make tutorial``).
Its last cell prints ``TUTORIAL_SUMMARY {json}``; the test reads that line and checks the
numbers independently of the notebook's own assertions.
"""

from __future__ import annotations

import importlib.util
import json

import nbformat
import pytest

from .conftest import REPO, mnist_dir

NOTEBOOK = REPO / "docs" / "tutorial.ipynb"
MARKER = "TUTORIAL_SUMMARY "
_spec = importlib.util.spec_from_file_location("build_tutorial", REPO / "docs" / "build_tutorial.py")
build_tutorial = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_tutorial)


def test_committed_notebook_is_small_and_shows_its_outputs():
    """Committed with the outputs of a full run (``make tutorial``), so it reads on a repository page."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert [c.source[:40] for c in code if not c.outputs or c.execution_count is None] == []
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run top to bottom, once"
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), "the learning curves figure"
    assert NOTEBOOK.stat().st_size < 400_000
    assert summary(nb)["test_accuracy"] > 0.9


def summary(nb) -> dict:
    """The JSON the last cell printed after ``TUTORIAL_SUMMARY``."""
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith(MARKER):
                    return json.loads(line[len(MARKER):])
    raise AssertionError("the notebook printed no TUTORIAL_SUMMARY line")


@pytest.mark.slow
def test_tutorial_runs_and_shows_its_claims(tmp_path, monkeypatch, record_property):
    data = mnist_dir()
    if data is None:
        pytest.skip("real MNIST not found (set TINYGRAD_MNIST_DATA)")
    monkeypatch.setenv("TINYGRAD_MNIST_DATA", str(data))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no history written to $HOME
    nb, seconds = build_tutorial.execute(NOTEBOOK, tmp_path)
    record_property("tutorial_seconds", round(seconds, 1))
    print(f"\ndocs/tutorial.ipynb ran top to bottom in {seconds:.1f} s (kernel start included)")

    s = summary(nb)
    # 1. Linear.jacobian is the hand-derived formula; backward is g^T J.
    assert s["linear_jacobian_max_diff"] == 0.0
    assert s["linear_vjp_max_diff"] <= 1e-15
    # 2. The literal chain rule equals backward (float64 rounding only).
    assert s["chain_input_max_diff"] <= 1e-15
    assert s["chain_vs_backward_max_rel"] <= 1e-13
    # The text says the literal chain rule takes "hundreds of times as long" as backward.
    assert s["literal_over_vjp_time"] > 100
    # 3. Central differences agree with backward in float64.
    assert s["gradcheck_passed"] is True
    assert s["gradcheck_max_rel_error"] <= 1e-6
    # 4. The broken tanh fails, exactly behind the broken layer, and torch disagrees there.
    assert s["broken_gradcheck_passed"] is False
    assert sorted(s["broken_gradcheck_failures"]) == ["0.bias", "0.weight", "input"]
    assert s["broken_vs_torch"]["0.weight"] > 0.1 and s["broken_vs_torch"]["0.bias"] > 0.1
    assert max(s["broken_vs_torch"][k] for k in ("logits", "2.weight", "2.bias")) <= 1e-13
    # 5. The 784-64-10 network learned on 5,000 images.
    assert s["test_accuracy"] > 0.9 and s["val_accuracy"] > 0.9
    assert s["train_accuracy"] > s["val_accuracy"]
    # 6. Torch with the same weights: exact in float64, within the rounding bound in float32.
    assert max(s["model_vs_torch_float64"].values()) <= 1e-13
    assert max(s["trained_vs_torch_float64"].values()) <= 1e-13
    assert s["float32_logits_over_bound"] <= 1.0
    assert set(s["trained_vs_torch_float32"]) == {"logits", "0.weight", "0.bias", "2.weight", "2.bias"}
