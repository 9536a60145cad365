"""``bench/gpu_check.sh --quick`` runs on a CPU too, so the GPU check script is not dead code."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_quick_runs_and_prints_every_figure():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--quick"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    out = done.stdout
    for line in ("threshold tiny", "torch global_unstructured", "exact: OK", "mask upkeep:", "real-time factor",
                 "finetune throughput", "plain transformers loop", "ratio parp/plain", "goal >= 0.97",
                 "gpu_check: all masks exact"):
        assert line in out, out
