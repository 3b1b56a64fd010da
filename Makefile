# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv and train the classic numpy MLP on MNIST
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MNIST_DIR ?= $(abspath ../shared/data/mnist)
# Point the project at the shared MNIST copy when it is there (else: cache dir / download).
ifneq ($(wildcard $(MNIST_DIR)/train-images-idx3-ubyte*),)
export TINYGRAD_MNIST_DATA ?= $(MNIST_DIR)
endif
PYTEST_ARGS ?=

.PHONY: demo test install clean tutorial

install: $(VENV)/.installed

# torch is installed first and pinned: a looser requirement resolves to a multi-GB CUDA build.
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev,torch,extras]"
	touch $@

demo: install
	$(BIN)/tinygrad-mnist train --out results/train

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Run docs/tutorial.ipynb top to bottom and save it with its outputs (commit the result).
tutorial: install
	$(BIN)/python docs/build_tutorial.py

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis build *.egg-info
