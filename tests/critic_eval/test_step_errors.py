"""The GSM8K step-error benchmark: exact, consistent, deterministic corruptions."""

import json
import random
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from capo_ray.critics.calculator import parse_number, visible_equations, wrong_equations
from capo_ray.critic_eval.step_errors import (
    GoldSolution,
    build_step_error_benchmark,
    corrupt_solution,
    load_gsm8k_solutions,
    split_solution,
    untouched_example,
)
from capo_ray.data.datasets import DatasetError

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA_DIR.is_dir(), reason="shared data directory not present")

TOY = GoldSolution(
    uid="toy:1",
    question="Tom has 40 apples and buys 35 more. He gives 17 away. How many are left?",
    solution=(
        "Tom has 40 + 35 = <<40+35=75>>75 apples.\n"
        "He gives away 17, so he has 75 - 17 = <<75-17=58>>58 apples.\n"
        "#### 58"
    ),
)


@pytest.mark.parametrize("seed", range(12))
def test_toy_corruption_is_exact(seed):
    example = corrupt_solution(TOY, random.Random(seed))
    assert example is not None and example.uid == "toy:1:error"
    assert example.wrong_steps == frozenset({example.first_error})
    first, second = example.steps
    if example.first_error == 1:
        # "40 + 35 = X": X is wrong; step 2 carries X forward with right arithmetic.
        x = parse_number(first.split("= ")[1].split()[0])
        assert x != 75
        assert second == f"He gives away 17, so he has {x} - 17 = {x - 17} apples."
        assert example.response_answer == str(x - 17)
    else:
        assert first == "Tom has 40 + 35 = 75 apples."
        y = parse_number(second.split("= ")[1].split()[0])
        assert y != 58 and example.response_answer == str(y)
    assert example.reference_answer == "58" and example.response_answer != "58"


def test_toy_untouched():
    example = untouched_example(TOY)
    assert example.steps == ["Tom has 40 + 35 = 75 apples.", "He gives away 17, so he has 75 - 17 = 58 apples."]
    assert (example.first_error, example.wrong_steps, example.response_answer) == (None, frozenset(), "58")


def test_uncorruptible_solutions():
    no_notes = GoldSolution("n:1", "q", "He has 40 + 35 = 75 apples.\n#### 75")
    # 75 and 58 also appear in the question: a later "75" could be either number.
    ambiguous = GoldSolution("n:2", "Tom has 75 pears and 58 plums.", TOY.solution)
    # The visible equation is already wrong in the gold solution: not clean.
    typo = GoldSolution("n:3", "q", "So 40 + 35 = <<40+35=75>>76 apples.\n#### 76")
    # From GSM8K train: the visible left side has an unclosed parenthesis (not arithmetic).
    unbalanced = GoldSolution(
        "n:4", "q", "So a total of $100+($100*(10/100) = $<<100+(100*(10/100))=110>>110 for it.\n#### 110"
    )
    for solution in (no_notes, ambiguous, typo, unbalanced):
        assert corrupt_solution(solution, random.Random(0)) is None


@pytest.fixture(scope="module")
def gsm8k_test():
    return load_gsm8k_solutions(DATA_DIR / "gsm8k_test.jsonl")


@pytest.fixture(scope="module")
def benchmark(gsm8k_test):
    return build_step_error_benchmark(gsm8k_test, size=120, error_fraction=0.25, seed=7)


@needs_data
def test_size_fraction_and_unique_sources(benchmark):
    assert len(benchmark) == 120
    assert sum(e.first_error is not None for e in benchmark) == 30
    sources = [e.uid.rsplit(":", 1)[0] for e in benchmark]
    assert len(set(sources)) == 120  # each gold solution used once
    assert {e.error_kind for e in benchmark if e.first_error} == {"off_by_delta", "wrong_operator"}


@needs_data
def test_deterministic_in_seed(gsm8k_test, benchmark):
    again = build_step_error_benchmark(gsm8k_test, size=120, error_fraction=0.25, seed=7)
    other = build_step_error_benchmark(gsm8k_test, size=120, error_fraction=0.25, seed=8)
    assert again == benchmark
    assert other != benchmark


@needs_data
def test_corruptions_are_exact_and_consistent(gsm8k_test, benchmark):
    gold = {s.uid: s for s in gsm8k_test}
    for example in benchmark:
        source = gold[example.uid.rsplit(":", 1)[0]]
        original = untouched_example(source)
        assert not any("<<" in step for step in example.steps)  # notes never shown
        assert example.reference_answer == split_solution(source.solution)[1]
        if example.first_error is None:
            assert example == replace(original, uid=example.uid)
            continue
        k = example.first_error
        assert example.wrong_steps == frozenset({k})
        # Steps before the error are untouched; the error step's visible arithmetic is wrong.
        assert example.steps[: k - 1] == original.steps[: k - 1]
        assert example.steps[k - 1] != original.steps[k - 1]
        assert wrong_equations(example.steps[k - 1]) >= 1
        # Every other step's visible arithmetic holds, and the answer moved.
        assert all(wrong_equations(step) == 0 for i, step in enumerate(example.steps) if i != k - 1)
        assert Fraction(example.response_answer) != Fraction(example.reference_answer)
        assert len(example.steps) == len(original.steps)


@needs_data
def test_corrupted_step_changes_only_the_result(gsm8k_test, benchmark):
    # The error is in a result, not in the operands: the first character that differs from
    # the gold step belongs to the number right after an "=".
    gold = {s.uid: s for s in gsm8k_test}
    for example in (e for e in benchmark if e.first_error):
        original = untouched_example(gold[example.uid.rsplit(":", 1)[0]]).steps[example.first_error - 1]
        corrupted = example.steps[example.first_error - 1]
        first_diff = next(i for i, (a, b) in enumerate(zip(original, corrupted)) if a != b)
        before_number = original[:first_diff].rstrip("0123456789.,").rstrip(" $")
        assert before_number.endswith("="), (original, corrupted)


@needs_data
def test_reference_matches_the_dataset_loader(gsm8k_test):
    from capo_ray.data.datasets import load_problems

    problems = load_problems("gsm8k_test", data_dir=str(DATA_DIR))
    assert [split_solution(s.solution)[1] for s in gsm8k_test] == [p.answer for p in problems]


def test_bad_arguments_and_too_few_solutions():
    with pytest.raises(ValueError, match="error_fraction"):
        build_step_error_benchmark([TOY], size=1, error_fraction=1.5)
    with pytest.raises(ValueError, match="error kinds"):
        build_step_error_benchmark([TOY], size=1, kinds=("typo",))
    with pytest.raises(ValueError, match="only 1 of 1 solutions are usable, 2 requested"):
        build_step_error_benchmark([TOY], size=2)


def test_malformed_file(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(DatasetError, match="line 1"):
        load_gsm8k_solutions(path)


def test_pure_python_no_distributed_stack():
    probe = (
        "import sys, capo_ray.critic_eval.step_errors, capo_ray.critic_eval.metrics;"
        "print(sorted({'ray', 'vllm', 'deepspeed', 'transformers'} & {m.split('.')[0] for m in sys.modules}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
