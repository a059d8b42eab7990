"""Writers for an evaluation run directory:

- ``results.md``: one table per metric in the shape of the paper's results table (rows =
  models, columns = benchmarks + Avg., values in %), then verdict counts per benchmark with
  verifier failures called out;
- ``results.json``: the same scores, machine-readable (``read_result`` loads it back, so
  earlier runs can be added as rows for comparison);
- ``samples/<benchmark>.jsonl``: one line per problem (question, reference, responses,
  extracted answers, verdict statuses) for inspection.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from capo_ray.evaluation.results import (
    STATUSES,
    BenchmarkScore,
    EvalResult,
    EvalSettings,
    ModeScore,
)

RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"
SAMPLES_DIR = "samples"


def write_run(run_dir: Path, result: EvalResult, compare: Sequence[EvalResult] = ()) -> dict[str, Path]:
    """Write results.md, results.json and samples/*.jsonl; returns their paths by kind."""
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": run_dir / RESULTS_MD, "json": run_dir / RESULTS_JSON, "samples": run_dir / SAMPLES_DIR}
    paths["markdown"].write_text(markdown_report(result, compare))
    paths["json"].write_text(json.dumps(result_to_json(result), indent=2))
    write_samples(paths["samples"], result)
    return paths


# -- markdown --------------------------------------------------------------------------------


def markdown_report(result: EvalResult, compare: Sequence[EvalResult] = ()) -> str:
    """The full results.md text: settings, one table per metric, verdict counts."""
    s = result.settings
    lines = [f"# Evaluation: {result.model}", "", _settings_line(s), ""]
    for name in result.metric_names():
        rows = [r for r in compare if name in r.metric_names()] + [result]
        lines += [f"## {name} (%)", "", *metric_table(rows, name), ""]
    lines += ["## Verdicts per benchmark", "", *status_table(result), ""]
    failures = {b: _failures(score) for b, score in result.scores.items()}
    failing = {b: n for b, n in failures.items() if n}
    if failing:
        detail = ", ".join(f"{b}: {n}" for b, n in failing.items())
        lines.append(
            f"**Verifier failures:** {sum(failing.values())} checks timed out or crashed and count as "
            f"incorrect in the tables above ({detail})."
        )
    else:
        lines.append("Verifier failures: none.")
    return "\n".join(lines) + "\n"


def _settings_line(s: EvalSettings) -> str:
    parts = ["pass@1: greedy (temperature 0)"] if s.greedy else []
    if s.k > 0:
        parts.append(f"avg@{s.k} / pass@{s.k}: {s.k} samples per problem at temperature {s.temperature:g}")
    return "; ".join(parts) + f"; at most {s.max_new_tokens} new tokens."


def metric_table(results: Sequence[EvalResult], name: str) -> list[str]:
    """Rows = models, columns = benchmarks (union, first-seen order) + Avg., in %. A model
    without some benchmark shows "-" there and no average (it would not be comparable)."""
    benches: list[str] = []
    for r in results:
        benches += [b for b in r.scores if b not in benches]
    lines = ["| Model | " + " | ".join(benches) + " | Avg. |", "|---|" + "---:|" * (len(benches) + 1)]
    for r in results:
        values = r.metric(name)
        cells = [f"{100 * values[b]:.1f}" if b in values else "-" for b in benches]
        avg = f"{100 * r.average(name):.1f}" if len(values) == len(benches) else "-"
        lines.append(f"| {r.model} | " + " | ".join(cells) + f" | {avg} |")
    return lines


def status_table(result: EvalResult) -> list[str]:
    """Samples per verdict status, per benchmark and mode (timeout/error: the verifier failed)."""
    lines = ["| benchmark | problems | mode | samples | " + " | ".join(STATUSES) + " |"]
    lines.append("|---|---:|---|---:|" + "---:|" * len(STATUSES))
    for bench, score in result.scores.items():
        for mode, ms in (("greedy", score.greedy), ("sampled", score.sampled)):
            if ms is None:
                continue
            counts = " | ".join(str(ms.status_counts[s]) for s in STATUSES)
            total = ms.num_problems * ms.samples_per_problem
            lines.append(f"| {bench} | {score.num_problems} | {mode} | {total} | {counts} |")
    return lines


def _failures(score: BenchmarkScore) -> int:
    return sum(m.verifier_failures for m in (score.greedy, score.sampled) if m is not None)


# -- json --------------------------------------------------------------------------------------


def result_to_json(result: EvalResult) -> dict[str, Any]:
    """Scores only (per-problem records go to the jsonl files)."""
    metrics: dict[str, dict[str, float]] = {}
    for name in result.metric_names():
        metrics[name] = {**result.metric(name), "avg": result.average(name)}
    return {
        "model": result.model,
        "settings": dataclasses.asdict(result.settings),
        "metrics": metrics,
        "verifier_failures": {b: _failures(s) for b, s in result.scores.items()},
        "benchmarks": {b: dataclasses.asdict(s) for b, s in result.scores.items()},
    }


def read_result(path: str | Path) -> EvalResult:
    """An ``EvalResult`` (scores only, no per-problem records) from a results.json."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    if not path.is_file():
        raise FileNotFoundError(f"no evaluation results at {str(path)!r}")
    data = json.loads(path.read_text())
    scores = {}
    for bench, s in data["benchmarks"].items():
        modes = {m: ModeScore(**s[m]) if s[m] is not None else None for m in ("greedy", "sampled")}
        scores[bench] = BenchmarkScore(benchmark=bench, num_problems=s["num_problems"], **modes)
    return EvalResult(model=data["model"], settings=EvalSettings(**data["settings"]), scores=scores)


# -- per-problem jsonl --------------------------------------------------------------------------


def write_samples(directory: Path, result: EvalResult) -> None:
    """One ``<benchmark>.jsonl`` per benchmark, one line per problem."""
    directory.mkdir(parents=True, exist_ok=True)
    for bench, records in result.problems.items():
        with (directory / f"{bench}.jsonl").open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(dataclasses.asdict(record), ensure_ascii=False) + "\n")
