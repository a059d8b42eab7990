"""bench/gpu_check.py in its CPU mode: the kit a GPU machine will run must at least run here,
through the same project code (forward with chunked log-probs, loss, a ZeRO-2 step, weight
sender, bounded waits, vLLM pin), and a missing optional package is a SKIP line, not a crash."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = str(REPO / "bench" / "gpu_check.py")
ENV = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}  # what a bare machine has: no HOME, no DS_*


def _run(*args: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    out = subprocess.run([sys.executable, SCRIPT, "--device", "cpu", *args], capture_output=True, text=True,
                         timeout=240, env=ENV)  # fmt: skip
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:] if line.strip() and line[0] != "["}
    return out, lines


def test_gpu_check_runs_its_checks_on_cpu():
    out, lines = _run("--checks", "learner", "learner_full", "sync", "sync_timeout", "vllm")
    assert out.returncode == 0, out.stdout + out.stderr
    assert set(lines) == {"learner", "learner_full", "sync", "sync_timeout", "vllm"}, out.stdout
    assert " ok " in lines["learner"] and "float32 2x64 tokens, chunks of 32" in lines["learner"]
    assert " ok " in lines["learner_full"] and "full logits" in lines["learner_full"]
    assert " ok " in lines["sync"] and "gloo world 1" in lines["sync"] and "for 3 syncs" in lines["sync"]
    assert "raised WeightSyncError" in lines["sync_timeout"]
    assert " ok " in lines["vllm"] or " SKIP " in lines["vllm"]


@pytest.mark.slow  # starts DeepSpeed (~15 s)
def test_gpu_check_zero2_step_runs_on_cpu():
    pytest.importorskip("deepspeed")
    out, lines = _run("--checks", "zero2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert " ok " in lines["zero2"] and "one ZeRO-2 step through the learner's code" in lines["zero2"], out.stdout
    assert "chunks of 32" in lines["zero2"] and "grad norm" in lines["zero2"]


def test_a_missing_optional_package_is_a_skip_line(tmp_path):
    # A shadowing package that fails to import as deepspeed would on a machine without it.
    blocker = tmp_path / "deepspeed"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'deepspeed'\", name='deepspeed')\n")
    out = subprocess.run([sys.executable, SCRIPT, "--device", "cpu", "--checks", "zero2", "sync_timeout"],
                         capture_output=True, text=True, timeout=120,
                         env={**ENV, "PYTHONPATH": f"{tmp_path}:{REPO}"})  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "zero2         SKIP needs deepspeed, which is not installed" in out.stdout, out.stdout
    assert "sync_timeout  ok" in out.stdout
