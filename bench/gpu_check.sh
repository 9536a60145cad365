#!/usr/bin/env bash
# One command for a GPU machine (<= 5 min on one H100/H200): the cuda tests, then every GPU figure next to its
# reference (bench/gpu_check.py). `bench/gpu_check.sh --quick` runs a reduced version anywhere (tests use it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [[ "${1:-}" == "--quick" ]]; then
    "$PYTHON" bench/gpu_check.py --quick --repeats 1
    exit 0
fi
"$PYTHON" - <<'PY'
import torch
print("GPU:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none visible (the cuda tests skip)")
PY
"$PYTHON" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py -rs
"$PYTHON" bench/gpu_check.py "$@"
