"""Run docs/tutorial.ipynb top to bottom and save it with its outputs, so it reads on a repository page.

    make tutorial                      # or: .venv/bin/python docs/build_tutorial.py

The kernel is ipykernel under this interpreter, started from a kernel spec written into a
temporary folder (no ``python3`` spec of another environment can be picked up); the
notebook runs with ``docs/`` as its working folder, as a reader's Jupyter would run it.
``tests/test_tutorial.py`` executes it the same way and checks what it claims.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent / "tutorial.ipynb"
KERNEL = "tinygrad-mnist-tutorial"


def kernel_manager(folder: Path):
    """A kernel manager whose only kernel spec runs ipykernel under this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = Path(folder) / "kernels" / KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tinygrad_mnist tutorial", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(Path(folder) / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def execute(notebook=NOTEBOOK, folder=None, timeout: int = 600):
    """The notebook, executed in memory (a ``nbformat.NotebookNode``), and the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        client = NotebookClient(nb, km=kernel_manager(Path(folder or tmp)), kernel_name=KERNEL, timeout=timeout,
                                startup_timeout=120, resources={"metadata": {"path": str(Path(notebook).parent)}})
        t0 = time.perf_counter()
        client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
        return nb, time.perf_counter() - t0


def main() -> int:
    import nbformat

    nb, seconds = execute()
    nbformat.write(nb, NOTEBOOK)
    print(f"{NOTEBOOK}: executed in {seconds:.1f} s and saved with its outputs ({NOTEBOOK.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
