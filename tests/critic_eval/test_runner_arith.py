"""The arith critic end to end on a 40-solution GSM8K step-error benchmark.

What the exact checker can see: GSM8K's ``<<a*b=c>>`` notes are stripped from the steps the
critic reads (they would give the true value away), so it checks the *visible* equations.
It reads them with the same calculator that builds and labels the benchmark
(``capo_ray.critics.calculator``: money, thousands separators, chains, sentence periods), so:

- with flip_noise = 0 it flags exactly the corrupted steps: precision = recall = 1 and perfect
  first-error accuracy on the whole benchmark;
- with flip_noise = 0.2, majority over k = 8 critiques beats one critique in F1, and the
  nested first-k sets make union flags grow and intersection flags shrink with k.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capo_ray.critic_eval.runner import EvalSetup, evaluate_critic
from capo_ray.critic_eval.step_errors import build_step_error_benchmark, load_gsm8k_solutions
from capo_ray.critics.arith import ArithCritic

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "gsm8k_test.jsonl"
pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="shared GSM8K data not present")

RULES = ["intersection", "union", "majority", "average"]
KS = [1, 2, 4, 8]


@pytest.fixture(scope="module")
def benchmark():
    return build_step_error_benchmark(load_gsm8k_solutions(DATA), size=40, error_fraction=0.5, seed=0)


def _evaluate(examples, flip_noise: float):
    setup = EvalSetup(f"arith (flip_noise={flip_noise})", "test", 0, 0.5, use_reference_answer=True)
    critic = ArithCritic(k=max(KS), flip_noise=flip_noise, seed=0)
    return evaluate_critic(examples, critic.critique, KS, RULES, setup, batch_size=16)


def test_exact_without_noise(benchmark):
    erroneous = sum(e.first_error is not None for e in benchmark)
    assert erroneous >= 10 and len(benchmark) - erroneous >= 10  # both kinds, enough to mean something
    result = _evaluate(benchmark, flip_noise=0.0)
    for cell in result.cells:  # noise-free critiques agree, so every rule and k scores the same
        s = cell.scores
        assert (s.true_positives, s.false_positives, s.false_negatives) == (erroneous, 0, 0), (cell.rule, cell.k)
        assert (s.step_precision, s.step_recall, s.first_error_f1, s.abstain_rate) == (1.0, 1.0, 1.0, 0.0)


def test_noise_voting_over_eight_critiques_beats_one(benchmark):
    result = _evaluate(benchmark, flip_noise=0.2)
    f1 = {(c.rule, c.k): c.scores.step_f1 for c in result.cells}
    # One critique flips each of ~3-4 steps with p = 0.2: false alarms swamp the one wrong step.
    # Majority of 8 flips a step only if >= 5 of 8 flip: P(Binom(8, 0.2) >= 5) ~ 1%.
    assert f1["majority", 8] > f1["majority", 1] + 0.2
    assert f1["average", 8] > f1["average", 1]


def test_first_k_sets_are_nested(benchmark):
    result = _evaluate(benchmark, flip_noise=0.2)
    flagged = {(c.rule, c.k): c.scores.true_positives + c.scores.false_positives for c in result.cells}
    # The first k critiques are a prefix of the first 2k: union can only add, intersection only drop.
    assert [flagged["union", k] for k in KS] == sorted(flagged["union", k] for k in KS)
    assert [flagged["intersection", k] for k in KS] == sorted((flagged["intersection", k] for k in KS), reverse=True)
    assert flagged["union", 8] > flagged["union", 1] > flagged["intersection", 8]
