"""End to end: `python -m capo_ray.eval` with SmolLM2 on CPU (vLLM engine, math verifier) on two
problems of three benchmarks. Checks the shape of what it writes, not the (near-zero) scores."""

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
BENCHMARKS = ["gsm8k_test", "math500", "amc23"]
K = 2
STATUSES = {"ok", "no_answer", "timeout", "error"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval")
    command = [
        sys.executable, "-m", "capo_ray.eval",
        f"benchmarks=[{','.join(BENCHMARKS)}]", "limit=2", f"k={K}", "max_new_tokens=32",
        "policy=smollm2", "verifier=math", "engine.max_model_len=1024", "engine.kv_cache_gib=0.25",
        f"output_dir={out}", "run_name=smoke",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| Model | gsm8k_test | math500 | amc23 | Avg. |" in done.stdout  # the table is printed too
    return out / "smoke"


def test_markdown_has_a_row_per_model_and_a_column_per_benchmark_plus_average(run_dir):
    md = (run_dir / "results.md").read_text()
    for metric in ("pass@1", f"avg@{K}", f"pass@{K}"):
        table = md.split(f"## {metric} (%)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert table[0] == "| Model | " + " | ".join(BENCHMARKS) + " | Avg. |"
        assert len(table) == 3 and table[2].startswith("| smollm2 | ")
        cells = [c.strip() for c in table[2].strip("|").split("|")][1:]
        assert len(cells) == len(BENCHMARKS) + 1 and all(0 <= float(c) <= 100 for c in cells)
    assert "## Verdicts per benchmark" in md and "Verifier failures" in md


def test_json_has_every_metric_per_benchmark_and_the_average(run_dir):
    data = json.loads((run_dir / "results.json").read_text())
    assert data["model"] == "smollm2" and data["settings"]["k"] == K
    assert set(data["metrics"]) == {"pass@1", f"avg@{K}", f"pass@{K}"}
    for values in data["metrics"].values():
        assert list(values) == BENCHMARKS + ["avg"] and all(0 <= v <= 1 for v in values.values())
    assert set(data["verifier_failures"]) == set(BENCHMARKS)
    for bench in BENCHMARKS:
        score = data["benchmarks"][bench]
        assert score["num_problems"] == 2
        assert sum(score["greedy"]["status_counts"].values()) == 2
        assert sum(score["sampled"]["status_counts"].values()) == 2 * K
    assert json.loads((run_dir / "config.json").read_text())["limit"] == 2


def test_per_problem_outputs_are_written_and_agree_with_the_scores(run_dir):
    data = json.loads((run_dir / "results.json").read_text())
    for bench in BENCHMARKS:
        rows = [json.loads(line) for line in (run_dir / "samples" / f"{bench}.jsonl").read_text().splitlines()]
        assert len(rows) == 2
        for row in rows:
            assert row["benchmark"] == bench and row["question"] and row["reference"]
            assert len(row["greedy"]["responses"]) == 1 and len(row["sampled"]["responses"]) == K
            for mode in ("greedy", "sampled"):
                s = row[mode]
                assert len(s["extracted"]) == len(s["statuses"]) == len(s["correct"]) == len(s["responses"])
                assert set(s["statuses"]) <= STATUSES
            assert any(text.strip() for text in row["greedy"]["responses"] + row["sampled"]["responses"])
        greedy_correct = sum(row["greedy"]["correct"][0] for row in rows)
        assert data["metrics"]["pass@1"][bench] == greedy_correct / 2
