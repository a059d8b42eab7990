"""results.md / results.json / samples/*.jsonl from the hand-computed scenario (conftest.py)."""

from __future__ import annotations

import json

import pytest

from capo_ray.evaluation.report import markdown_report, metric_table, read_result, write_run
from capo_ray.evaluation.results import BenchmarkScore, EvalResult, EvalSettings, ModeScore


def test_markdown_has_one_paper_shaped_table_per_metric(result):
    md = markdown_report(result)
    # rows = models, columns = benchmarks in the order given + Avg., values in %.
    assert "## pass@1 (%)\n\n| Model | gsm8k_test | aime24 | Avg. |\n|---|---:|---:|---:|\n| fake | 50.0 | 0.0 | 25.0 |" in md
    assert "## avg@4 (%)\n\n| Model | gsm8k_test | aime24 | Avg. |\n|---|---:|---:|---:|\n| fake | 37.5 | 0.0 | 18.8 |" in md
    assert "| fake | 100.0 | 0.0 | 50.0 |" in md  # pass@4
    assert "4 samples per problem at temperature 0.7" in md


def test_markdown_reports_verdict_counts_and_calls_out_verifier_failures(result):
    md = markdown_report(result)
    assert "| benchmark | problems | mode | samples | ok | no_answer | timeout | error |" in md
    assert "| gsm8k_test | 2 | sampled | 8 | 6 | 1 | 1 | 0 |" in md
    assert "| aime24 | 1 | greedy | 1 | 0 | 0 | 0 | 1 |" in md
    assert "**Verifier failures:** 2 checks timed out or crashed" in md and "(gsm8k_test: 1, aime24: 1)" in md


def test_no_failures_says_so(make_scenario):
    s = make_scenario(EvalSettings(greedy=False, k=3, temperature=1.0, max_new_tokens=8))  # no TIMEOUT, no CRASH
    assert "Verifier failures: none." in markdown_report(s.run())


def _row(model: str, values: dict[str, float]) -> EvalResult:
    counts = {"ok": 1, "no_answer": 0, "timeout": 0, "error": 0}
    scores = {b: BenchmarkScore(b, 1, ModeScore(1, 1, v, v, counts), None) for b, v in values.items()}
    return EvalResult(model, EvalSettings(True, 0, 1.0, 8), scores)


def test_compared_models_are_extra_rows_and_missing_benchmarks_get_no_average():
    rows = [_row("base", {"math500": 0.25, "aime24": 0.0}), _row("capo", {"math500": 0.5})]
    table = metric_table(rows, "pass@1")
    assert table[0] == "| Model | math500 | aime24 | Avg. |"
    assert table[2:] == ["| base | 25.0 | 0.0 | 12.5 |", "| capo | 50.0 | - | - |"]


def test_write_run_round_trips_scores_and_writes_one_jsonl_line_per_problem(tmp_path, result):
    base = _row("base", {"gsm8k_test": 0.0, "aime24": 0.0})
    paths = write_run(tmp_path, result, compare=[base])
    data = json.loads(paths["json"].read_text())
    assert data["metrics"]["avg@4"] == {"gsm8k_test": 0.375, "aime24": 0.0, "avg": 0.1875}
    assert data["verifier_failures"] == {"gsm8k_test": 1, "aime24": 1}
    back = read_result(tmp_path)  # a directory means its results.json
    assert back.scores == result.scores and back.settings == result.settings and back.problems == {}
    assert "| base | 0.0 | 0.0 | 0.0 |" in paths["markdown"].read_text()
    lines = (paths["samples"] / "gsm8k_test.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert (first["benchmark"], first["uid"], first["question"], first["reference"]) == ("gsm8k_test", "A", "2 + 2?", "4")
    assert first["sampled"]["statuses"] == ["ok", "ok", "ok", "timeout"]
    assert first["sampled"]["extracted"] == ["4", "5", "4", None] and len(first["sampled"]["responses"]) == 4
    assert first["greedy"]["correct"] == [True]


def test_read_result_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no evaluation results at"):
        read_result(tmp_path / "nope")
