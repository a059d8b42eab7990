"""A step-error benchmark built from GSM8K gold solutions, with exact labels.

GSM8K solutions are one step per line, and their ``<<a*b=c>>`` calculator notes say exactly
which numbers each step computes, so a step's result can be corrupted and the change carried
consistently through the rest of the solution (``corruption``). The shown solution then has
exactly one step whose visible arithmetic is wrong, and every later step is arithmetically
right given what came before. Untouched solutions are kept as "no error" examples.

Labels follow ProcessBench's first-error convention: ``first_error`` is the corrupted step
(1-based). Later steps that merely carry the wrong value forward are NOT labelled wrong: their
own arithmetic holds. ``wrong_steps`` records the steps whose visible arithmetic is wrong,
which is just the corrupted one. (A critic that also flags the carried-forward steps loses
step precision but keeps its first-error accuracy.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from capo_ray.critics.calculator import strip_notes
from capo_ray.critic_eval.corruption import ERROR_KINDS, ErrorKind, corrupt
from capo_ray.data.datasets import DatasetError, read_rows


@dataclass(frozen=True)
class GoldSolution:
    uid: str
    question: str
    solution: str  # GSM8K form: one step per line with <<expr=result>> notes, then "#### N"


@dataclass(frozen=True)
class StepErrorExample:
    uid: str
    question: str
    # Steps as a critic sees them: calculator notes removed, since a note would give the
    # true value away next to a corrupted one (and real model responses carry no notes).
    steps: list[str]
    reference_answer: str | None  # the gold answer (what the critic is told by default); None: unknown
    first_error: int | None  # 1-based index of the first wrong step; None: no error
    wrong_steps: frozenset[int]  # 1-based steps whose own visible arithmetic is wrong
    response_answer: str  # the answer these steps reach (differs from the reference if corrupted)
    error_kind: ErrorKind | None = None
    # Steps 1..labelled_steps carry labels; None: all do. Files that mark only the first error
    # (ProcessBench) say nothing about the steps after it (critic_eval/step_labelled.py).
    labelled_steps: int | None = None


def load_gsm8k_solutions(path: str | Path) -> list[GoldSolution]:
    """Gold solutions of a GSM8K jsonl file; uid ``"<file>:<line>"``."""
    path = Path(path)
    solutions = []
    for line_no, row in read_rows(path):
        question, solution = row.get("question"), row.get("answer")
        if not isinstance(question, str) or not isinstance(solution, str) or "####" not in solution:
            raise DatasetError(f"{path} line {line_no}: expected string fields 'question' and 'answer' with '####'")
        solutions.append(GoldSolution(f"{path.name}:{line_no}", question, solution))
    return solutions


def split_solution(solution: str) -> tuple[list[str], str]:
    """(step lines with their notes, final answer without thousands commas)."""
    body, _, final = solution.rpartition("####")
    steps = [line.strip() for line in body.splitlines() if line.strip()]
    return steps, final.strip().replace(",", "")


def untouched_example(solution: GoldSolution) -> StepErrorExample:
    steps, final = split_solution(solution.solution)
    return StepErrorExample(
        uid=f"{solution.uid}:clean",
        question=solution.question,
        steps=[strip_notes(step) for step in steps],
        reference_answer=final,
        first_error=None,
        wrong_steps=frozenset(),
        response_answer=final,
    )


def corrupt_solution(
    solution: GoldSolution, rng: random.Random, kinds: Sequence[ErrorKind] = ERROR_KINDS
) -> StepErrorExample | None:
    """The solution with one step corrupted (see ``corruption``), or None when it cannot be."""
    steps, final = split_solution(solution.solution)
    result = corrupt(steps, final, solution.question, rng, kinds)
    if result is None:
        return None
    return StepErrorExample(
        uid=f"{solution.uid}:error",
        question=solution.question,
        steps=[strip_notes(step) for step in result.steps],
        reference_answer=final,
        first_error=result.index + 1,
        wrong_steps=frozenset({result.index + 1}),
        response_answer=result.answer,
        error_kind=result.kind,
    )


def _check_arguments(size: int, error_fraction: float, kinds: Sequence[ErrorKind]) -> None:
    if size < 1 or not 0.0 <= error_fraction <= 1.0:
        raise ValueError(
            f"build_step_error_benchmark: need size >= 1 and 0 <= error_fraction <= 1, got {size}, {error_fraction}"
        )
    unknown = set(kinds) - set(ERROR_KINDS)
    if unknown or not kinds:
        raise ValueError(
            f"build_step_error_benchmark: error kinds {sorted(unknown) or 'empty'}; valid: {list(ERROR_KINDS)}"
        )


def build_step_error_benchmark(
    solutions: Sequence[GoldSolution],
    size: int,
    error_fraction: float = 0.5,
    seed: int = 0,
    kinds: Sequence[ErrorKind] = ERROR_KINDS,
) -> list[StepErrorExample]:
    """``size`` examples, ``round(size * error_fraction)`` of them corrupted, deterministic in
    ``seed``. Each solution is used at most once. Both groups are drawn from the solutions that
    can be corrupted, so "has an error" is not given away by the kind of solution."""
    _check_arguments(size, error_fraction, kinds)
    n_errors = round(size * error_fraction)
    order = list(range(len(solutions)))
    random.Random(seed).shuffle(order)
    errors: list[StepErrorExample] = []
    clean: list[StepErrorExample] = []
    for position in order:
        if len(errors) + len(clean) == size:
            break
        solution = solutions[position]
        # One generator per solution: its corruption does not depend on which others were tried.
        corrupted = corrupt_solution(solution, random.Random(f"{seed}:{solution.uid}"), kinds)
        if corrupted is None:
            continue
        if len(errors) < n_errors:
            errors.append(corrupted)
        else:
            clean.append(untouched_example(solution))
    if len(errors) + len(clean) < size:
        raise ValueError(
            f"build_step_error_benchmark: only {len(errors) + len(clean)} of {len(solutions)} solutions "
            f"are usable, {size} requested"
        )
    examples = errors + clean
    random.Random(f"{seed}:order").shuffle(examples)
    return examples
