"""docs/tutorial.ipynb runs top to bottom in a real Jupyter kernel and shows what it says.

The notebook is executed by nbclient in a kernel started from this interpreter
(``sys.executable -m ipykernel_launcher``, through a kernel spec written into a temporary
directory, so no installed ``python3`` spec of another environment can be picked up).
Its last cell prints ``TUTORIAL_SUMMARY {json}``; the test reads that line and checks the
numbers independently of the notebook's own assertions.
"""

from __future__ import annotations

import json
import sys
import time

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from .conftest import REPO, mnist_dir

NOTEBOOK = REPO / "docs" / "tutorial.ipynb"
KERNEL = "tinygrad-mnist-tutorial"
MARKER = "TUTORIAL_SUMMARY "


def test_committed_notebook_is_small_and_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert [c for c in code if c.outputs or c.execution_count is not None] == []
    assert NOTEBOOK.stat().st_size < 100_000


def kernel_manager(tmp_path) -> KernelManager:
    """A kernel manager whose only kernel spec runs ipykernel under this interpreter."""
    spec_dir = tmp_path / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tinygrad_mnist tutorial test",
        "language": "python",
    }))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


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
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, km=kernel_manager(tmp_path), kernel_name=KERNEL, timeout=600,
                            startup_timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    seconds = time.perf_counter() - t0
    record_property("tutorial_seconds", round(seconds, 1))
    print(f"\ndocs/tutorial.ipynb ran top to bottom in {seconds:.1f} s (kernel start included)")

    s = summary(nb)
    # 1. Linear.jacobian is the hand-derived formula; backward is g^T J.
    assert s["linear_jacobian_max_diff"] == 0.0
    assert s["linear_vjp_max_diff"] <= 1e-15
    # 2. The literal chain rule equals backward (float64 rounding only).
    assert s["chain_input_max_diff"] <= 1e-15
    assert s["chain_vs_backward_max_rel"] <= 1e-13
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
