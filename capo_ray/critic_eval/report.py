"""Writers for a critic evaluation run directory:

- ``results.md``: the setup, one table with a row per (voting rule, k), how the numbers are
  derived, and what the judge returned (failed requests, unparseable critiques);
- ``results.json``: the same, machine-readable (NaN, a ratio over nothing, is written null);
- ``examples.jsonl``: one line per solution: its steps and labels, the K critique texts, their
  parsed verdicts, and the vote weights and flags of every (rule, k), for inspection.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from capo_ray.critic_eval.runner import (
    FLAG_THRESHOLD,
    CellScore,
    CriticEvalResult,
    JudgedExample,
    flagged_steps,
    vote_first_k,
)

RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"
EXAMPLES_JSONL = "examples.jsonl"

_COLUMNS = (
    "| rule | k | step P | step R | step F1 | 1st-err acc (erroneous) | 1st-err acc (correct) "
    "| 1st-err F1 | abstain | critic tokens / solution |"
)


def write_run(run_dir: Path, result: CriticEvalResult) -> dict[str, Path]:
    """Write results.md, results.json and examples.jsonl; returns their paths by kind."""
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": run_dir / RESULTS_MD, "json": run_dir / RESULTS_JSON, "examples": run_dir / EXAMPLES_JSONL}
    paths["markdown"].write_text(markdown_report(result))
    paths["json"].write_text(json.dumps(result_to_json(result), indent=2, allow_nan=False))
    with paths["examples"].open("w", encoding="utf-8") as handle:
        for judged in result.judged:
            record = example_record(judged, result.ks, result.rules, result.fixed_voters)
            handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    return paths


# -- markdown --------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def results_table(cells: list[CellScore]) -> list[str]:
    """One row per (rule, k); ratios in %, "-" where the denominator is empty (NaN)."""
    lines = [_COLUMNS, "|---|---:|" + "---:|" * 8]
    for c in cells:
        s = c.scores
        values = (s.step_precision, s.step_recall, s.step_f1, s.first_error_acc_erroneous,
                  s.first_error_acc_correct, s.first_error_f1, s.abstain_rate)  # fmt: skip
        cols = " | ".join(_pct(v) for v in values)
        lines.append(f"| {c.rule} | {c.k} | {cols} | {c.critic_tokens_per_solution:,.0f} |")
    return lines


def _notes(result: CriticEvalResult) -> list[str]:
    k_max = max(result.ks)
    return [
        f"- **k < {k_max}**: the first k of the {k_max} critiques sampled per solution in one request "
        f"(n = {k_max}). Samples of one request are independent given the prompt, so this is what "
        "sampling k critiques in one request gives (in distribution, not bit for bit).",
        f"- **average**: a step counts as flagged when its weight (the fraction of valid critiques "
        f"flagging it) is >= {FLAG_THRESHOLD:g}; unlike majority (strictly more than half), a tie counts. "
        "In training, average penalizes by the fraction itself.",
        "- **step P / R / F1**: wrong-step flags against the labelled wrong steps, micro-averaged over "
        "the steps of solutions that did not abstain.",
        "- **1st-err acc** (ProcessBench): the earliest flagged step equals the labelled first error "
        "(no flag = no error), on the erroneous and the correct solutions; 1st-err F1 is their harmonic "
        "mean. An abstention counts as a miss.",
        "- **abstain**: every one of the k critiques failed or had no readable verdict.",
        "- **critic tokens / solution**: prompt tokens once (the k samples share the prefill) + k x the "
        "mean completion tokens per critique (0 for the arith checker, which is no LLM).",
    ]


def _judge_lines(result: CriticEvalResult) -> list[str]:
    st = result.stats
    total = st.solutions * st.critiques_per_solution
    lines = [
        f"- {st.solutions} solutions x {st.critiques_per_solution} critiques = {total} critiques; "
        f"readable verdicts: {_pct(st.parse_rate)}%; unparseable: {st.unparseable_critiques}; "
        f"failed: {st.failed_critiques} (in {st.failed_requests} failed requests).",
        f"- judge tokens: {st.prompt_tokens:,} prompt + {st.completion_tokens:,} completion; "
        f"judge time: {st.seconds:.1f} s.",
    ]
    if st.example_error:
        lines.append(f"- **Failed requests abstain** (counted above); e.g.: `{st.example_error[:300]}`")
    return lines


def markdown_report(result: CriticEvalResult) -> str:
    s = result.setup
    n = len(result.judged)
    shown = f"reference answer shown to the judge: {'yes' if s.use_reference_answer else 'no'}"
    if s.dataset is None:
        header = (
            f"GSM8K {s.split} step-error benchmark: {n} solutions, {result.n_erroneous} with one corrupted "
            f"step (seed {s.seed}); {shown}."
        )
    else:
        header = f"{s.dataset}: {n} solutions, {result.n_erroneous} with a labelled first wrong step; {shown}."
    lines = [f"# Critic evaluation: {s.judge}", "", header, ""]
    lines += ["## Scores (%)", "", *results_table(result.cells), ""]
    lines += ["## How to read it", "", *_notes(result), ""]
    lines += ["## What the judge returned", "", *_judge_lines(result)]
    return "\n".join(lines) + "\n"


# -- json / jsonl ------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """NaN (a ratio over nothing) as null, so the file is standard JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def result_to_json(result: CriticEvalResult) -> dict[str, Any]:
    """Setup, judge statistics and every cell's scores (per-solution records go to the jsonl)."""
    cells = []
    for c in result.cells:
        tokens = c.critic_tokens_per_solution
        cells.append({"rule": c.rule, "k": c.k, **dataclasses.asdict(c.scores), "critic_tokens_per_solution": tokens})
    return _finite({
        "setup": dataclasses.asdict(result.setup),
        "solutions": len(result.judged),
        "erroneous": result.n_erroneous,
        "ks": result.ks,
        "rules": result.rules,
        "flag_threshold": FLAG_THRESHOLD,
        "judge": dataclasses.asdict(result.stats),
        "cells": cells,
    })  # fmt: skip


def example_record(judged: JudgedExample, ks: list[int], rules: list[str], fixed_voters: int = 0) -> dict[str, Any]:
    """One solution with its labels, critiques and, per rule and k, the vote and the flags."""
    e, c = judged.example, judged.critique
    votes: dict[str, dict[str, Any]] = {}
    for rule in rules:
        votes[rule] = {}
        for k in ks:
            weights = vote_first_k(judged.verdicts, len(e.steps), k, rule, fixed_voters)
            flags = flagged_steps(weights)
            votes[rule][str(k)] = {"weights": weights, "flagged": None if flags is None else sorted(flags)}
    return _finite({
        "uid": e.uid,
        "question": e.question,
        "steps": list(e.steps),
        "reference_answer": e.reference_answer,
        "response_answer": e.response_answer,
        "first_error": e.first_error,
        "wrong_steps": sorted(e.wrong_steps),
        "error_kind": e.error_kind,
        "critiques": list(c.texts),
        "verdicts": [None if v is None else sorted(v) for v in judged.verdicts],
        "request_error": c.error,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "votes": votes,
    })  # fmt: skip
