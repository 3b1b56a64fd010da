"""The package's shape: its public names, a numpy-only core, no private cross-imports,
files small enough to read."""

import ast
import subprocess
import sys

import pytest

import tinygrad_mnist

from .conftest import REPO

PUBLIC = {
    "__version__",
    "Module", "Parameter", "Sequential",
    "Linear", "Identity", "Flatten", "Conv2d", "MaxPool2d", "AvgPool2d",
    "Dropout", "BatchNorm1d", "BatchNorm2d", "Residual",
    "Sigmoid", "ReLU", "Tanh", "Softmax", "activation_by_name",
    "SoftmaxCrossEntropy", "CrossEntropy", "MSELoss", "loss_by_name",
    "initializer",
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Optimizer", "optimizer_by_name",
    "StepLR", "CosineAnnealingLR", "LinearWarmup", "schedule_by_name",
    "Penalty", "L1Penalty", "L2Penalty",
    "MLPSpec", "CLASSIC_MLP", "build_mlp", "mlp", "build", "build_course_cnn",
    "LayerDesc", "CourseCNNSpec", "num_parameters",
}
PROJECT_PACKAGES = ("tinygrad_mnist", "torch_baselines", "experiments", "benchmarks")
MAX_LINES = 450   # "about 400": a file past this holds two ideas or wants splitting


def _sources():
    for package in PROJECT_PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def test_import_tinygrad_mnist_keeps_its_public_names():
    assert set(tinygrad_mnist.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(tinygrad_mnist, name) is not None, name


def test_the_core_imports_numpy_only():
    code = ("import sys, tinygrad_mnist, tinygrad_mnist.nn, tinygrad_mnist.optim, tinygrad_mnist.data, "
            "tinygrad_mnist.check, tinygrad_mnist.models, tinygrad_mnist.train, tinygrad_mnist.cli; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'sklearn', 'tqdm', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level > 0
                                                     or (node.module or "").startswith(PROJECT_PACKAGES)):
                offenders += [f"{path.relative_to(REPO)}:{node.lineno} {alias.name}"
                              for alias in node.names if alias.name.startswith("_") and alias.name != "__version__"]
    assert offenders == []


def test_docs_architecture_lists_every_source_file():
    tree = (REPO / "docs" / "architecture.md").read_text()
    listed = set()
    folder = None
    for line in tree.split("<!-- tree -->")[1].split("<!-- /tree -->")[0].splitlines():
        if line.endswith("/") and not line.startswith(" "):
            folder = line
        elif line.startswith("  ") and line.split():
            listed.add(folder + line.split()[0])
    assert listed == {str(p.relative_to(REPO)) for p in _sources()}


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(REPO)))
def test_source_files_stay_readable_in_one_sitting(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
