"""Outcome verifier by mathematical equivalence (math-verify), bounded in time.

Each pair goes through a cheap triage in the calling process first:
- no final answer in the response -> ``no_answer``; no answer in the reference -> ``error``;
- the same canonical spelling ("\\dfrac{1}{2}" and "\\frac{1}{2}", "\\left(1,2\\right)" and
  "(1, 2)"; but not "0.5" and "\\frac12") -> correct, no subprocess;
- both plain numbers (integer, decimal, fraction; "x = 5" too) -> compared as exact
  rationals when the outcome is beyond doubt (most GSM8K/AIME answers, "3.0" vs "3");
- both numbers in a base ("4210_{5}") -> compared digit by digit (math-verify drops the base);
- anything else -> math-verify in a ``DeadlinePool`` worker, with a per-check deadline.

Model text is never evaluated: extraction is string work, and math-verify parses LaTeX with its
own grammar into sympy objects.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Sequence

from capo_ray.rewards.extract import canonical, clean_answer, extract_pair
from capo_ray.rewards.numeric import compare_base_numbers, compare_numbers
from capo_ray.rewards.pool import DeadlinePool, TaskOutcome
from capo_ray.rewards.verdict import Verdict, check_lengths

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0  # per check; math-verify's own default
_CHECK_TARGET = "capo_ray.rewards.math_check:equivalent"
_WARMUP = ("\\frac{1}{2}", "0.5")  # builds math-verify's LaTeX parser before the first deadline


@dataclass(frozen=True)
class PendingCheck:
    """A pair the triage could not decide: both answers cleaned, for the worker."""

    answer: str  # as extracted from the response (what the Verdict reports)
    task: tuple[str, str]  # (cleaned answer, cleaned reference)


def triage(response: str, reference: str) -> Verdict | PendingCheck:
    """Decide a pair without math-verify when that is safe, else say what to check."""
    pair = extract_pair(response, reference)
    if isinstance(pair, Verdict):
        return pair
    answer, gold = pair
    if canonical(answer) == canonical(gold):
        return Verdict(True, "ok", answer)
    for same in (compare_numbers(answer, gold), compare_base_numbers(answer, gold)):
        if same is not None:
            return Verdict(same, "ok", answer)
    return PendingCheck(answer=answer, task=(clean_answer(answer), clean_answer(gold)))


def _verdict_from(outcome: TaskOutcome, answer: str) -> Verdict:
    if outcome.status == "ok":
        return Verdict(bool(outcome.value), "ok", answer)
    if outcome.status == "error":
        log.debug("math-verify check failed for answer %.200r: %s", answer, outcome.error)
    return Verdict(False, outcome.status, answer)


class MathVerifier:
    """Outcome verifier by mathematical equivalence, safe in threads and Ray actors.

    Starting it launches ``num_workers`` worker processes in the background (each imports
    sympy and math-verify: ~1-2 s, overlapped with the caller's work; ``wait_ready`` blocks on
    it). A check that passes ``timeout_s`` is a ``timeout`` verdict and its worker is replaced.
    """

    def __init__(
        self,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        num_workers: int = 2,
        *,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self._pool = DeadlinePool(
            _CHECK_TARGET,
            num_workers,
            timeout_s,
            warmup=_WARMUP,
            startup_timeout_s=startup_timeout_s,
        )

    def verify_batch(self, responses: Sequence[str], references: Sequence[str]) -> list[Verdict]:
        """One verdict per (response, reference) pair, in order."""
        check_lengths(responses, references)
        triaged = [triage(response, reference) for response, reference in zip(responses, references)]
        pending = [(i, item) for i, item in enumerate(triaged) if isinstance(item, PendingCheck)]
        outcomes = self._pool.map([item.task for _, item in pending]) if pending else []
        for (i, item), outcome in zip(pending, outcomes, strict=True):
            triaged[i] = _verdict_from(outcome, item.answer)
        verdicts = [item for item in triaged if isinstance(item, Verdict)]
        assert len(verdicts) == len(triaged), "MathVerifier: a pair was left without a verdict"
        return verdicts

    def wait_ready(self) -> None:
        """Block until every worker process has started (for benchmarks and tests)."""
        self._pool.wait_ready()

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> "MathVerifier":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_shared: MathVerifier | None = None
_shared_lock = threading.Lock()


def _shared_verifier() -> MathVerifier:
    global _shared
    with _shared_lock:
        if _shared is None:
            # One worker: is_correct serves occasional checks (evaluation scripts, tests); a
            # reward worker builds its own MathVerifier sized for its batches. The pool's
            # finalizer stops the worker at interpreter exit.
            _shared = MathVerifier(DEFAULT_TIMEOUT_S, num_workers=1)
        return _shared


def is_correct(response: str, reference: str) -> bool:
    """Whether the response's final answer equals the reference's, mathematically.

    Thread-safe. Pairs the triage cannot decide go to a lazily started one-worker
    ``MathVerifier`` shared by the process (deadline ``DEFAULT_TIMEOUT_S``); a check that
    times out or crashes is False.
    """
    item = triage(response, reference)
    if isinstance(item, Verdict):
        return item.correct
    return _shared_verifier().verify_batch([response], [reference])[0].correct
