"""Which responses of a step go to the judge: ``critic.critique_on`` and ``critic.token_budget``.

A 70B judge reads far more tokens than the policy writes (``critic/judge_tokens_per_policy_token``
is typically 5-20), so a run may judge only part of each step. What is left out keeps its
outcome credit (as a response with no steps does) and is counted, never silently penalized.

The budget is spent in a stated order:
  1. responses with a wrong final answer before those with a right one (a wrong answer has a
     wrong step somewhere; a right one seldom does, so its judging buys less credit signal);
  2. within each, round-robin over prompt groups, so that every group gets process credit
     before any group gets all of it (advantages are normalized per group);
  3. within a group, in batch order.
A response whose critique prompt repeats one already chosen this step, or one in the cache,
costs nothing (it is judged once). Selection stops at the first response that does not fit,
so the order above is exactly who is judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    judged: list[int]  # batch indices to judge, in batch order
    skipped_by_filter: int  # left out by critique_on
    skipped_by_budget: int  # left out because the token budget ran out
    estimated_tokens: float  # estimated judge tokens of the judged (repeats and cache hits free)


def estimate_tokens(prompt_chars: int, k: int, max_tokens: int, chars_per_token: float = 4.0) -> float:
    """Judge tokens of one k-critique request before any tokenizer saw it: the prompt (about
    ``chars_per_token`` characters per token) plus k full-length critiques (an upper bound)."""
    return prompt_chars / chars_per_token + k * max_tokens


def budget_order(correct: Sequence[bool], groups: Sequence[int]) -> list[int]:
    """Batch indices in the order the budget is spent (module docstring)."""
    order: list[int] = []
    for want in (False, True):  # incorrect first
        by_group: dict[int, list[int]] = {}
        for i, (ok, g) in enumerate(zip(correct, groups)):
            if ok == want:
                by_group.setdefault(g, []).append(i)
        queues = [by_group[g] for g in sorted(by_group)]
        depth = max((len(q) for q in queues), default=0)
        order.extend(q[d] for d in range(depth) for q in queues if d < len(q))
    return order


def select_for_judging(
    candidates: Sequence[int],
    correct: Sequence[bool],
    groups: Sequence[int],
    costs: Sequence[float],
    keys: Sequence[str],
    critique_on: str,
    token_budget: int,
) -> Selection:
    """Pick the responses to judge among ``candidates`` (batch indices that have steps).

    ``correct``, ``groups``, ``costs`` (estimated tokens, 0 for a cached prompt) and ``keys``
    (the critique prompt's identity) are indexed by batch index. ``token_budget`` 0: no limit.
    """
    if critique_on not in ("all", "incorrect", "correct"):
        raise ValueError(f"critique_on must be all, incorrect or correct, got {critique_on!r}")
    wanted = [i for i in candidates if critique_on == "all" or correct[i] == (critique_on == "correct")]
    skipped_filter = len(candidates) - len(wanted)
    wanted_set = set(wanted)
    order = [i for i in budget_order(correct, groups) if i in wanted_set]
    chosen: list[int] = []
    seen: set[str] = set()
    spent = 0.0
    for i in order:
        cost = 0.0 if keys[i] in seen else costs[i]
        if token_budget and spent + cost > token_budget:
            break
        chosen.append(i)
        seen.add(keys[i])
        spent += cost
    return Selection(sorted(chosen), skipped_filter, len(order) - len(chosen), spent)
