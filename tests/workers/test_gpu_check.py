"""bench/gpu_check.py in its CPU mode: the kit a GPU machine will run must at least run here,
through the same project code (forward, loss, weight sender, bounded waits, vLLM pin)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_its_cpu_capable_checks():
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--device", "cpu"],
        capture_output=True, text=True, timeout=240, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:] if line.strip()}
    assert out.returncode == 0, out.stdout + out.stderr
    assert set(lines) == {"learner", "sync", "sync_timeout", "vllm"}
    assert " ok " in lines["learner"] and "float32 2x64 tokens" in lines["learner"]
    assert " ok " in lines["sync"] and "gloo world 1" in lines["sync"] and "for 3 syncs" in lines["sync"]
    assert "raised WeightSyncError" in lines["sync_timeout"]
    assert " ok " in lines["vllm"] or " SKIP " in lines["vllm"]
