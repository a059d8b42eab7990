"""Throughput of the outcome verifiers on answers drawn from GSM8K test and MATH-500.

Builds N (response, reference) pairs, seeded: the gold answer boxed as is, the gold answer in
an equivalent spelling (4.0 for 4, 1,000 for 1000, \\dfrac, extra spaces, "x = "), a perturbed
answer (integer +- delta, or one digit changed), and a few responses with no final answer.
Then times ``verify_batch`` on all of them and prints pairs/s, wall time, the verdict statuses
and how often the verdict matched the label the pair was built with.

    python bench/verifier.py --pairs 4096 --workers 2 --verifier math
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass

from capo_ray.data.datasets import load_problems
from capo_ray.records import Problem
from capo_ray.rewards import make_verifier
from capo_ray.rewards.math import MathVerifier, PendingCheck, triage

_REASONING = (
    "Let me work through this carefully.\n\nFirst, I write down what the problem gives us and "
    "what it asks for.\n\nThen I combine the quantities step by step, checking each result.\n\n"
)


@dataclass(frozen=True)
class Pair:
    response: str
    reference: str
    kind: str  # gold | equivalent | perturbed | no_answer
    expected: bool


def _equivalent(answer: str, rng: random.Random) -> str:
    """The same answer, spelled differently."""
    if re.fullmatch(r"-?\d+", answer):
        value = int(answer)
        return rng.choice([f"{value}.0", f"{value:,}", f"x = {value}", f"\\${value}"])
    if "\\frac" in answer:
        return answer.replace("\\frac", "\\dfrac")
    if "=" in answer or "\\text" in answer:  # "x = y = 2x" or "x = Evelyn" would change the answer
        return f" {answer} "
    return rng.choice([f"x = {answer}", answer.replace(",", ", "), f" {answer} "])


def _perturbed(answer: str, rng: random.Random, other: str) -> str:
    """A different answer: an integer moved by a nonzero delta, else one digit changed."""
    if re.fullmatch(r"-?\d+", answer):
        return str(int(answer) + rng.choice([-3, -2, -1, 1, 2, 3, 10]))
    digits = [i for i, char in enumerate(answer) if char.isdigit()]
    if not digits:
        return other
    i = rng.choice(digits)
    new_digit = rng.choice([d for d in "0123456789" if d != answer[i]])
    return answer[:i] + new_digit + answer[i + 1 :]


def build_pairs(problems: list[Problem], n: int, seed: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        problem, other = rng.choice(problems), rng.choice(problems)
        roll = rng.random()
        if roll < 0.40:
            kind, shown, expected = "gold", problem.answer, True
        elif roll < 0.60:
            kind, shown, expected = "equivalent", _equivalent(problem.answer, rng), True
        elif roll < 0.95:
            kind, shown, expected = "perturbed", _perturbed(problem.answer, rng, other.answer), False
        else:
            pairs.append(Pair(_REASONING + "I am not sure how to finish.", problem.answer, "no_answer", False))
            continue
        response = f"{_REASONING}So the final answer is $\\boxed{{{shown}}}$."
        pairs.append(Pair(response, problem.answer, kind, expected))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per check")
    parser.add_argument("--verifier", default="math", choices=["math", "exact"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    problems = load_problems("gsm8k_test", data_dir=args.data_dir) + load_problems("math500", data_dir=args.data_dir)
    pairs = build_pairs(problems, args.pairs, args.seed)
    slow = sum(isinstance(triage(p.response, p.reference), PendingCheck) for p in pairs)

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    verifier = make_verifier(args.verifier, args.timeout, args.workers)
    if isinstance(verifier, MathVerifier):
        verifier.wait_ready()
    startup_s = time.perf_counter() - start
    with verifier:
        start = time.perf_counter()
        verdicts = verifier.verify_batch([p.response for p in pairs], [p.reference for p in pairs])
        wall_s = time.perf_counter() - start

    statuses = Counter(v.status for v in verdicts)
    agree = Counter(p.kind for p, v in zip(pairs, verdicts) if v.correct == p.expected)
    kinds = Counter(p.kind for p in pairs)
    print(f"verifier={args.verifier} workers={args.workers} pairs={len(pairs)} sent to workers={slow}")
    # Other jobs on the machine stretch the wall time; the load average tells how much.
    print(f"load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"pool start-up: {startup_s:.2f} s (not in the figure below)")
    print(f"wall time: {wall_s:.2f} s  ->  {len(pairs) / wall_s:.0f} pairs/s")
    if slow and args.verifier == "math":
        print(f"about {1000 * wall_s * args.workers / slow:.1f} ms of worker time per math-verify check")
    print(f"statuses: {dict(statuses)}")
    print("verdict matches the built label: " + ", ".join(f"{k} {agree[k]}/{kinds[k]}" for k in sorted(kinds)))


if __name__ == "__main__":
    main()
