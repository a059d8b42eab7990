"""The learning study in its smoke mode: 1 seed, 2 steps, CAPO and GRPO through the real
trainer from the small organism; every output it promises is written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_smoke_study_runs_both_algorithms_and_writes_its_results(tmp_path):
    out = tmp_path / "study"
    proc = subprocess.run([sys.executable, "bench/learning.py", "--smoke", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("CAPO/GRPO steps to target: ") and "1 seed)" in last
    result = json.loads((out / "curves.json").read_text())
    assert {r["cell"] for r in result["runs"]} == {"capo", "grpo"} and all(r["ok"] for r in result["runs"])
    for run in result["runs"]:
        curves = run["curves"]
        # the starting weights (trainer.eval_before_train), then an eval after every step
        assert curves["step"] == [1, 2] and curves["eval_step"] == [0, 1, 2] and len(curves["heldout_accuracy"]) == 3
        assert all(0 <= a <= 1 for a in curves["heldout_accuracy"])
    assert result["runs"][0]["curves"]["heldout_accuracy"][0] == result["runs"][1]["curves"]["heldout_accuracy"][0]
    capo = next(r for r in result["runs"] if r["cell"] == "capo")
    grpo = next(r for r in result["runs"] if r["cell"] == "grpo")
    assert capo["curves"]["train_flagged_rate"] != [] and max(grpo["curves"]["train_flagged_rate"]) == 0
    for name in ("table.md", "accuracy_vs_steps.png", "accuracy_vs_time.png", "wrong_steps_among_correct.png"):
        assert (out / name).stat().st_size > 0
    assert "| capo | 1 |" in (out / "table.md").read_text()
