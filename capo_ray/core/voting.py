"""Combining K critiques of one response into per-step penalty weights.

CAPO (arXiv 2508.02298, method step 5) samples the critic K times per response and votes.
The paper reports intersection best for 1-1.5B policies (precision matters when the policy
is weak) and majority/union for 7B. Each rule maps (c_i, m) to a weight, where m is the
number of valid critiques and c_i how many of them flag step i.

Legend: K critiques, S steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def _intersection(count: int, valid: int) -> float:
    return 1.0 if count == valid else 0.0


def _union(count: int, valid: int) -> float:
    return 1.0 if count >= 1 else 0.0


def _majority(count: int, valid: int) -> float:
    # Strictly more than half: with K = 4, two flags out of four is a tie and does not count.
    return 1.0 if 2 * count > valid else 0.0


def _average(count: int, valid: int) -> float:
    return count / valid


VotingRule = Callable[[int, int], float]

VOTING_RULES: dict[str, VotingRule] = {
    "intersection": _intersection,
    "union": _union,
    "majority": _majority,
    "average": _average,
}


def voting_rule(rule: str) -> VotingRule:
    """The rule function registered as ``rule``; ValueError listing the valid names if none."""
    try:
        return VOTING_RULES[rule]
    except (KeyError, TypeError):
        raise ValueError(f"unknown voting rule {rule!r}; valid rules: {sorted(VOTING_RULES)}") from None


def vote(critiques: Sequence[frozenset[int] | None], num_steps: int, rule: str) -> list[float] | None:
    """Per-step penalty weights from K critiques: element i is the weight of step i + 1.

    ``critiques[j]`` is the set of 1-based steps critique j judged wrong (``parse_critique``),
    or None when it gave no readable verdict: None abstains. With m valid critiques and c_i
    of them flagging step i, the weight is 1.0 or 0.0 by the rule (intersection: c_i == m;
    union: c_i >= 1; majority: c_i > m / 2), or c_i / m for "average". Returns None when
    every critique abstains (or there is none): the caller then falls back to outcome-only
    credit, never to "no step is wrong".

    Shapes: critiques [K] sets within 1..S -> [S] floats in [0, 1], or None.
    """
    decide = voting_rule(rule)
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps!r}")
    counts = [0] * num_steps
    valid = 0
    for j, wrong in enumerate(critiques):
        if wrong is None:
            continue
        valid += 1
        for step in wrong:
            if not 1 <= step <= num_steps:
                raise ValueError(f"critique {j} flags step {step}, outside 1..{num_steps}")
            counts[step - 1] += 1
    if valid == 0:
        return None
    return [decide(count, valid) for count in counts]
