#!/usr/bin/env bash
# The GPU check for a lent device (see benchmarks/gpu_check.py): ttc's transformers backend on CUDA in bfloat16
# on a random SmolLM2-135M-shaped model, against plain model.generate; vLLM's benchmark too where importable.
# No network: nothing is downloaded. Under 10 minutes (the whole check is stopped at 590 s).
#
#   benchmarks/gpu_check.sh                     # on a GPU machine: the full check
#   benchmarks/gpu_check.sh --device cpu --tiny # anywhere: the same steps on a 2-layer model, in a minute or two
#   PYTHON=.venv/bin/python benchmarks/gpu_check.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY="${PYTHON:-python3}"
missing=$("$PY" - <<'PY'
import importlib.util
need = ["torch", "transformers", "tokenizers", "pandas", "pyarrow", "numpy", "scipy", "matplotlib", "tqdm",
        "datasets", "reasoning_gym", "math_verify", "gguf", "safetensors"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
  echo "error: $PY lacks $missing: install ttc's dependencies first (pip install -e . on a machine with a package" \
       "index, or from a wheelhouse: pip install --no-index --find-links WHEELS -e .)" >&2
  exit 2
fi
exec timeout --signal=TERM --kill-after=10 590 "$PY" benchmarks/gpu_check.py "$@"
