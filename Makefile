# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv and train the classic numpy MLP on MNIST
#   make test   set up .venv, run `make check`, then the whole test suite
# and one more:
#   make check  lint (ruff) and type-check (mypy) the code, as CI does before the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MNIST_DIR ?= $(abspath ../shared/data/mnist)
# Point the project at the shared MNIST copy when it is there (else: cache dir / download).
ifneq ($(wildcard $(MNIST_DIR)/train-images-idx3-ubyte*),)
export TINYGRAD_MNIST_DATA ?= $(MNIST_DIR)
endif
PYTEST_ARGS ?=
# The exact versions the suite passed with (pip-compile; the command that regenerates it is at its top).
LOCK := requirements.lock

.PHONY: demo test check install clean tutorial

install: $(VENV)/.installed

# Every install is constrained by the lock (-c): setup.cfg keeps the open ranges, the lock fixes
# the versions. torch is installed first and pinned: a looser requirement resolves to a multi-GB
# CUDA build. The lock leaves torch out (--unsafe-package torch; it resolves to 2.13.0+cpu here and
# to plain 2.13.0 on PyPI): setup.cfg's torch extra and the line below pin it as torch==2.13.0.
$(VENV)/.installed: setup.cfg pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -c $(LOCK) torch==2.13.0
	$(BIN)/pip install -c $(LOCK) -e ".[dev,torch,extras,peers]"
	touch $@

demo: install
	$(BIN)/tinygrad-mnist train --overwrite   # classic-mlp into results/train/classic-mlp/, replacing the last demo

# A lint or type finding fails `make test` (and so CI) before any test runs.
check: install
	$(BIN)/ruff check .
	$(BIN)/mypy tinygrad_mnist
	$(BIN)/mypy torch_baselines benchmarks experiments

test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Run docs/tutorial.ipynb top to bottom and save it with its outputs (commit the result).
tutorial: install
	$(BIN)/python docs/build_tutorial.py

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis .mypy_cache .ruff_cache build dist *.egg-info
