"""Cheap outcome verifier: numbers compared as exact rationals, anything else by spelling.

For answers that are numbers (the arithmetic task, GSM8K, AIME) it agrees with the math
verifier at a fraction of the cost and needs no worker processes. It knows no algebra:
"2x+2" and "2(x+1)" differ here.
"""

from __future__ import annotations

from types import TracebackType
from typing import Sequence

from collections import Counter

from capo_ray.rewards.extract import canonical, clean_answer, extract_pair, top_level_parts
from capo_ray.rewards.numeric import as_number, compare_base_numbers
from capo_ray.rewards.verdict import Verdict, check_lengths


def _part_key(part: str) -> tuple[str, str]:
    value = as_number(part)
    return ("number", str(value)) if value is not None else ("text", canonical(part))


def same_parts(answer: str, gold: str) -> bool | None:
    """For multi-part answers ("1, -2"): the same parts in any order, each compared as a number
    when it is one, else by spelling. None when either side is a single part."""
    answer_parts, gold_parts = top_level_parts(clean_answer(answer)), top_level_parts(clean_answer(gold))
    if len(answer_parts) < 2 or len(gold_parts) < 2:
        return None
    return Counter(map(_part_key, answer_parts)) == Counter(map(_part_key, gold_parts))


def exact_verdict(response: str, reference: str) -> Verdict:
    pair = extract_pair(response, reference)
    if isinstance(pair, Verdict):
        return pair
    answer, gold = pair
    for same in (same_parts(answer, gold), _same_number(answer, gold), compare_base_numbers(answer, gold)):
        if same is not None:
            return Verdict(same, "ok", answer)
    return Verdict(canonical(answer) == canonical(gold), "ok", answer)


def _same_number(answer: str, gold: str) -> bool | None:
    answer_value, gold_value = as_number(answer), as_number(gold)
    return None if answer_value is None or gold_value is None else answer_value == gold_value


class ExactMatchVerifier:
    """Same API as ``MathVerifier``; runs in the calling thread (no deadline needed: the
    work is a few linear-time regexes per pair)."""

    def verify_batch(self, responses: Sequence[str], references: Sequence[str]) -> list[Verdict]:
        check_lengths(responses, references)
        return [exact_verdict(response, reference) for response, reference in zip(responses, references)]

    def close(self) -> None:
        """Nothing to release; present so both verifiers are used the same way."""

    def __enter__(self) -> "ExactMatchVerifier":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
