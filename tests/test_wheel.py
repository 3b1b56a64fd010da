"""The package builds: ``python -m build`` makes a wheel and an sdist, the wheel holds every
module and package-data file, and installed into a clean virtual environment (numpy only,
no torch, no matplotlib) it runs ``tinygrad-mnist info`` and a one-epoch ``train``.

A module or package-data file missing from the distribution fails here, not on a user's
machine: the other tests import the package from the checkout and would never notice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile

import pytest

from .conftest import REPO, mnist_dir

pytestmark = pytest.mark.slow

PACKAGES = ("tinygrad_mnist", "torch_baselines", "experiments", "benchmarks")
PACKAGE_DATA = [f"tinygrad_mnist/explore/{name}" for name in ("template.html", "explorer.css", "explorer.js")]


def _source_files():
    """Every file that must ship: the packages' modules and the explorer's page."""
    modules = {str(p.relative_to(REPO)) for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    return modules | set(PACKAGE_DATA)


def _run(cmd, **kwargs):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} exited {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``(wheel, sdist)`` built by ``python -m build``: the sdist from the checkout, then the wheel
    from the unpacked sdist (so a file the sdist lacks is missing from the wheel too), each in an
    isolated build environment, as a user's build gets."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", out, REPO], cwd=REPO)
    (wheel,) = out.glob("tinygrad_mnist-*.whl")
    (sdist,) = out.glob("tinygrad_mnist-*.tar.gz")
    return wheel, sdist


def test_the_wheel_holds_every_module_and_package_data_file(dist):
    wheel, _ = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    assert sorted(_source_files() - names) == []
    assert not [n for n in names if n.startswith(("tests/", "docs/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tinygrad-mnist = tinygrad_mnist.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_sdist_holds_the_sources_readme_and_build_config(dist):
    _, sdist = dist
    with tarfile.open(sdist) as tar:
        root = tar.getnames()[0].split("/")[0]
        names = {n.partition("/")[2] for n in tar.getnames()}
    assert root == sdist.name.removesuffix(".tar.gz")
    assert sorted(({"README.md", "setup.cfg", "pyproject.toml", "PKG-INFO"} | _source_files()) - names) == []


def test_the_wheel_installed_in_a_clean_venv_runs_info_and_trains(dist, tmp_path):
    data = mnist_dir()
    if data is None:
        pytest.skip("real MNIST not found (set TINYGRAD_MNIST_DATA)")
    wheel, _ = dist
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)   # no system site packages: only what the wheel asks for
    bin_dir = env_dir / "bin"
    # numpy, the one requirement, at the lock's version (the wheel itself is not in the lock)
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "-c", REPO / "requirements.lock", wheel])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TINYGRAD_MNIST_DATA=str(data), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cwd = tmp_path / "elsewhere"   # not the checkout: the installed package must stand alone
    cwd.mkdir()

    info = _run([bin_dir / "tinygrad-mnist", "info"], env=env, cwd=cwd).stdout
    assert str(env_dir) in _run([bin_dir / "python", "-c", "import tinygrad_mnist; print(tinygrad_mnist.__file__)"],
                                env=env, cwd=cwd).stdout
    assert "torch:          not installed" in info and "MD5 verified" in info
    assert "no lock file found (installed from a wheel?)" in info

    out = tmp_path / "out"
    run = _run([bin_dir / "tinygrad-mnist", "train", "--train-size", "2000", "--epochs", "1", "--out", out],
               env=env, cwd=cwd)
    assert "matplotlib is not installed: no figure" in run.stderr
    assert {"history.json", "model.npz", "checkpoint.npz", "config.json"} <= {p.name for p in out.iterdir()}
    evaluate = _run([bin_dir / "tinygrad-mnist", "evaluate", out / "model.npz", "--quiet"], env=env, cwd=cwd)
    assert evaluate.stdout.strip()
