"""End to end: ``python -m capo_ray.critic_eval`` with an LLM judge on CPU (vLLM), 3 solutions,
k up to 2. SmolLM2 judges at chance and rarely writes a verdict in few tokens (docs/cpu-notes.md),
so this checks the mechanics, not the scores: files written, every critique counted as readable,
unparseable or failed, abstentions consistent with them, judge tokens measured.

The first test runs the default in-process engine with SmolLM2; the second runs the Ray launch
(a local Ray, one CriticWorker actor behind a CriticPool, shut down at the end) with the tiny
random model, which starts faster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from capo_ray.data.datasets import find_data_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_data_dir() is None, reason="shared math datasets not found (set CAPO_DATA_DIR)"),
]

REPO = Path(__file__).resolve().parents[2]
RULES = ["intersection", "union", "majority", "average"]
KS = [1, 2]


def _run(out: Path, name: str, *overrides: str) -> Path:
    command = [
        sys.executable, "-m", "capo_ray.critic_eval", "judge.backend=llm", "size=3", "ks=[1,2]",
        "judge.max_tokens=32", "judge.engine.max_model_len=1024", f"output_dir={out}", f"run_name={name}", *overrides,
    ]  # fmt: skip
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| majority | 2 |" in done.stdout  # the table is printed too
    return out / name


def _check_mechanics(run_dir: Path) -> dict:
    data = json.loads((run_dir / "results.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "examples.jsonl").read_text().splitlines()]
    assert data["solutions"] == len(rows) == 3 and [(c["rule"], c["k"]) for c in data["cells"]] == [
        (r, k) for r in RULES for k in KS
    ]
    judge = data["judge"]
    readable = sum(v is not None for r in rows for v in r["verdicts"])
    # Every critique is exactly one of: readable, unparseable text, failed (None).
    assert judge["failed_critiques"] + judge["unparseable_critiques"] + readable == 3 * 2
    assert judge["parse_rate"] == readable / 6
    for cell in data["cells"]:  # abstained at k: none of the first k critiques was readable
        abstained = sum(all(v is None for v in r["verdicts"][: cell["k"]]) for r in rows)
        assert cell["n_abstained"] == abstained and cell["abstain_rate"] == pytest.approx(abstained / 3)
    for r in rows:
        assert len(r["critiques"]) == 2 and r["request_error"] is None and r["prompt_tokens"] > 100
        assert 0 < r["completion_tokens"] <= 2 * 32 and r["steps"] and r["reference_answer"]
        assert r["votes"]["majority"]["1"]["flagged"] is None or r["verdicts"][0] is not None
    tokens = {c["k"]: c["critic_tokens_per_solution"] for c in data["cells"] if c["rule"] == "union"}
    assert 100 < tokens[1] < tokens[2]  # the prompt once, plus more completions for k = 2
    assert judge["seconds"] > 0 and judge["prompt_tokens"] == sum(r["prompt_tokens"] for r in rows)
    md = (run_dir / "results.md").read_text()
    assert md.startswith("# Critic evaluation: llm ") and md.count("\n| ") == 1 + len(RULES) * len(KS)
    return data


def test_llm_judge_in_process_smollm2(tmp_path):
    data = _check_mechanics(_run(tmp_path, "smollm2"))
    assert data["setup"]["judge"] == "llm smollm2 (temperature 0.7, max_tokens 32)"


def test_llm_judge_on_ray_actors(tmp_path):
    _check_mechanics(_run(tmp_path, "ray", "judge.launch=ray", "judge.model_path=tiny"))
