"""Step-labelled solutions from outside: ProcessBench-format files, and MR-GSM8K and
PRM800K-style files mapped onto the same records through a field map.

ProcessBench's row: ``problem`` (str), ``steps`` (list of str), ``label`` (0-based index of the
first wrong step, ``-1`` when every step is right). Each row becomes a ``StepErrorExample``
with ``first_error = label + 1`` (1-based, as the critic numbers steps). Such a file labels
only the first error: the steps before it are right, the steps after it are unknown, so the
step-level scores read only steps 1..first_error (``labelled_steps``), while first-error
accuracy and ProcessBench's F1 use the whole prediction.

A field map names where each part sits (``a.b`` reaches into nested objects):
``problem``, ``steps``, and either ``label`` (first-error index in ``label_base``, with
``no_error`` values meaning "all right") or ``step_ratings`` (one rating per step, PRM800K's
-1 / 0 / +1; -1 is wrong: then every step is labelled). ``answer`` (optional) is the reference
answer shown to the judge when ``use_reference_answer`` is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capo_ray.critic_eval.step_errors import StepErrorExample
from capo_ray.data.datasets import DatasetError, read_rows


@dataclass(frozen=True)
class FieldMap:
    problem: str
    steps: str
    label: str | None = None
    label_base: int = 0  # the label of the first step (0 in ProcessBench, 1 in MR-GSM8K)
    no_error: tuple[Any, ...] = (-1,)  # label values that mean "no wrong step"
    step_ratings: str | None = None
    answer: str | None = None


PRESETS = {
    "processbench": FieldMap(problem="problem", steps="steps", label="label", label_base=0, no_error=(-1,)),
    "mr_gsm8k": FieldMap(
        problem="question", steps="model_output_steps", label="model_output_solution_first_error_step",
        label_base=1, no_error=(-1, None, "N/A", "n/a", ""), answer="ground_truth_answer",
    ),  # fmt: skip
    "prm800k": FieldMap(problem="problem", steps="steps", step_ratings="ratings", answer="answer"),
}


def field_map(preset: str, overrides: dict[str, Any] | None = None) -> FieldMap:
    if preset not in PRESETS:
        raise ValueError(f"unknown step-data format {preset!r}; valid: {sorted(PRESETS)}")
    base = PRESETS[preset].__dict__ | dict(overrides or {})
    if "no_error" in (overrides or {}):
        base["no_error"] = tuple(base["no_error"]) if isinstance(base["no_error"], list) else (base["no_error"],)
    if (base.get("label") is None) == (base.get("step_ratings") is None):
        raise ValueError("the field map needs exactly one of label (first-error index) or step_ratings")
    return FieldMap(**base)


def _get(row: dict[str, Any], path: str, where: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            keys = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise DatasetError(f"{where}: missing field {path!r} (at {part!r}; found {keys})")
        value = value[part]
    return value


def _first_error(value: Any, fm: FieldMap, n_steps: int, where: str) -> int | None:
    if value in fm.no_error:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DatasetError(f"{where}: {fm.label!r} = {value!r} is not a step index or one of {list(fm.no_error)}")
    first = value - fm.label_base + 1
    if not 1 <= first <= n_steps:
        raise DatasetError(f"{where}: {fm.label!r} = {value} is outside the {n_steps} steps (label_base {fm.label_base})")
    return first


def _from_ratings(value: Any, fm: FieldMap, n_steps: int, where: str) -> frozenset[int]:
    if not isinstance(value, list) or len(value) != n_steps:
        raise DatasetError(f"{where}: {fm.step_ratings!r} must be a list with one rating per step ({n_steps})")
    if any(isinstance(r, bool) or r not in (-1, 0, 1) for r in value):
        raise DatasetError(f"{where}: {fm.step_ratings!r} ratings must be -1, 0 or 1, got {value}")
    return frozenset(i for i, r in enumerate(value, start=1) if r == -1)


def row_example(row: dict[str, Any], fm: FieldMap, uid: str, where: str) -> StepErrorExample:
    problem, steps = _get(row, fm.problem, where), _get(row, fm.steps, where)
    if not isinstance(problem, str) or not problem.strip():
        raise DatasetError(f"{where}: {fm.problem!r} must be a non-empty string")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise DatasetError(f"{where}: {fm.steps!r} must be a non-empty list of strings")
    answer = None if fm.answer is None else _get(row, fm.answer, where)
    answer = None if answer is None else str(answer)
    if fm.step_ratings is not None:
        wrong = _from_ratings(_get(row, fm.step_ratings, where), fm, len(steps), where)
        first, labelled = (min(wrong) if wrong else None), None  # every step labelled
    else:
        first = _first_error(_get(row, fm.label, where), fm, len(steps), where)
        wrong = frozenset() if first is None else frozenset({first})
        labelled = None if first is None else first  # after the first error: unknown
    return StepErrorExample(
        uid=uid, question=problem, steps=list(steps), reference_answer=answer, first_error=first,
        wrong_steps=wrong, response_answer="", labelled_steps=labelled,
    )  # fmt: skip


def load_step_labelled(path: str | Path, fm: FieldMap, limit: int = 0) -> list[StepErrorExample]:
    """Examples of a local .jsonl / .parquet file (first ``limit`` rows; 0: all); a bad row
    fails naming file and line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    out = []
    for line_no, row in read_rows(path):
        out.append(row_example(row, fm, f"{path.name}:{line_no}", f"{path} line {line_no}"))
        if limit and len(out) >= limit:
            break
    if not out:
        raise DatasetError(f"{path}: no rows")
    return out
