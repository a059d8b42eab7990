"""Fixtures for the pure evaluation tests: a scripted policy and verifier, and one scenario.

Each problem's prompt is one token, its index; the scripted texts are what the "policy"
answers in each mode. The verifier is the real exact-match one, except that two marker texts
simulate verifier failures (a check past its deadline, a crashed check).
"""

from __future__ import annotations

from typing import Sequence

import pytest

from capo_ray.evaluation.results import EvalSettings
from capo_ray.evaluation.runner import evaluate
from capo_ray.records import Problem
from capo_ray.rewards.exact import exact_verdict
from capo_ray.rewards.verdict import Verdict

TIMEOUT, CRASH = "TIMEOUT", "CRASH"


def box(x: object) -> str:
    return f"Step 1: think.\n\nThe answer is \\boxed{{{x}}}."


class ScriptedPolicy:
    """``generate_fn`` that answers from a script and records every call it gets."""

    def __init__(self, problems: Sequence[Problem], greedy: dict[str, str], sampled: dict[str, list[str]]):
        self.index = {p.uid: i for i, p in enumerate(problems)}
        self.uids = [p.uid for p in problems]
        self.greedy, self.sampled = greedy, sampled
        self.calls: list[tuple[int, int, float, int]] = []  # (num prompts, n, temperature, max_new)

    def encode(self, benchmark: str, problem: Problem) -> list[int]:
        return [self.index[problem.uid]]

    def __call__(self, prompts: list[list[int]], n: int, temperature: float, max_new_tokens: int) -> list[list[str]]:
        self.calls.append((len(prompts), n, temperature, max_new_tokens))
        uids = [self.uids[p[0]] for p in prompts]
        if temperature == 0:
            return [[self.greedy[uid]] * n for uid in uids]
        return [list(self.sampled[uid][:n]) for uid in uids]


class FlakyVerifier:
    """Exact match, but ``TIMEOUT`` / ``CRASH`` responses fail the way MathVerifier reports it."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def verify_batch(self, responses: Sequence[str], references: Sequence[str]) -> list[Verdict]:
        self.batches.append(len(responses))
        out = []
        for response, reference in zip(responses, references):
            if response == TIMEOUT:
                out.append(Verdict(False, "timeout", None))
            elif response == CRASH:
                out.append(Verdict(False, "error", "?"))
            else:
                out.append(exact_verdict(response, reference))
        return out

    def close(self) -> None:
        pass

    def __enter__(self) -> "FlakyVerifier":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


# -- the hand-computed scenario shared by the runner and report tests -------------------------
#
# gsm8k_test: A (answer 4), B (answer 10); aime24: C (answer 7). k = 4.
#   greedy:   A 4 (right), B 11 (wrong)              -> pass@1 = 1/2 = 0.5
#             C CRASH (verifier error, not correct)  -> pass@1 = 0/1 = 0.0
#   sampled:  A [4, 5, 4, TIMEOUT]      -> 2 right
#             B [no box, 11, 12, 10]    -> 1 right   -> avg@4 = 3/8 = 0.375, pass@4 = 2/2 = 1.0
#             C [1, 2, 3, 6]            -> 0 right   -> avg@4 = 0.0,         pass@4 = 0.0
#   averages over the two benchmarks: pass@1 0.25, avg@4 0.1875, pass@4 0.5.
#   statuses, gsm8k_test sampled: ok 6 (4,5,4 and 11,12,10), no_answer 1, timeout 1, error 0.

K = 4
SETTINGS = EvalSettings(greedy=True, k=K, temperature=0.7, max_new_tokens=32)


def _problems() -> dict[str, list[Problem]]:
    return {
        "gsm8k_test": [Problem("A", "2 + 2?", "4", "g:1"), Problem("B", "5 + 5?", "10", "g:2")],
        "aime24": [Problem("C", "3 + 4?", "7", "a:1")],
    }


GREEDY = {"A": box(4), "B": box(11), "C": CRASH}
SAMPLED = {
    "A": [box(4), box(5), box(4), TIMEOUT],
    "B": ["I do not know.", box(11), box(12), box(10)],
    "C": [box(1), box(2), box(3), box(6)],
}


class Scenario:
    def __init__(self, settings: EvalSettings = SETTINGS) -> None:
        self.problems = _problems()
        flat = [p for ps in self.problems.values() for p in ps]
        self.policy = ScriptedPolicy(flat, GREEDY, SAMPLED)
        self.verifier = FlakyVerifier()
        self.settings = settings

    def run(self, model: str = "fake"):
        return evaluate(self.problems, self.policy, self.verifier, self.policy.encode, self.settings, model)


@pytest.fixture
def scenario() -> Scenario:
    return Scenario()


@pytest.fixture
def result(scenario):
    return scenario.run()


@pytest.fixture
def make_scenario():
    """The scenario with other settings: ``make_scenario(EvalSettings(...))``."""
    return Scenario
