"""Cheap outcome verifier: numbers compared as exact rationals, anything else by spelling.

For answers that are numbers (the arithmetic task, GSM8K, AIME) it agrees with the math
verifier at a fraction of the cost and needs no worker processes. It knows no algebra:
"2x+2" and "2(x+1)" differ here.
"""

from __future__ import annotations

from types import TracebackType
from typing import Sequence

from capo_ray.rewards.extract import canonical, extract_answer, extract_reference
from capo_ray.rewards.numeric import as_base_number, as_number
from capo_ray.rewards.verdict import Verdict, check_lengths


def exact_verdict(response: str, reference: str) -> Verdict:
    answer = extract_answer(response)
    if answer is None or not canonical(answer):
        return Verdict(False, "no_answer", answer)
    gold = extract_reference(reference)
    if gold is None or not canonical(gold):
        return Verdict(False, "error", answer)
    answer_value, gold_value = as_number(answer), as_number(gold)
    if answer_value is not None and gold_value is not None:
        return Verdict(answer_value == gold_value, "ok", answer)
    answer_base, gold_base = as_base_number(answer), as_base_number(gold)
    if answer_base is not None and gold_base is not None:
        return Verdict(answer_base == gold_base, "ok", answer)
    return Verdict(canonical(answer) == canonical(gold), "ok", answer)


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
