"""The ``hybrid`` critic: the exact arithmetic checker and an LLM critic judging together.

An exact tool catches the arithmetic slips an LLM judge misses ("4 * 5 = 21" read as fine),
the LLM the logic errors no checker can see (a wrong equation set up correctly computed).
Both speak the GenPRM text format, so they meet in the existing parse -> vote path:

- ``mode=voter``: the checker's critique (``capo_ray.critics.arith``: steps with a false
  equation are wrong, all others right) is appended ``checker_votes`` times to the LLM's K
  critiques, and the vote runs over all of them. Under ``intersection`` the checker can only
  remove flags; under ``union`` only add them; ``majority`` / ``average`` weigh it as one
  (or ``checker_votes``) voter among K + 1.
- ``mode=veto``: on every step whose arithmetic the checker can check, its verdict replaces
  each LLM critique's verdict; other steps keep the LLM's. Each readable LLM critique gets a
  line naming the overruled steps and a corrected ``Wrong step list`` (the parser reads the
  last verdict line), so samples.jsonl shows both. An unreadable or failed LLM critique stays
  as it is and abstains: the checker alone knows nothing about the other steps.

The checker costs microseconds and runs in the driver; the LLM part is any other backend.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from capo_ray.core.critique import format_verdict, parse_critique
from capo_ray.critics.arith import check_step, critique_steps
from capo_ray.records import CritiqueResult


def checker_verdicts(steps: Sequence[str]) -> list[bool | None]:
    """Per step: True (a false equation), False (all its equations hold), None (nothing to check)."""
    return [check_step(step)[0] for step in steps]


def veto(wrong: frozenset[int], checked: Sequence[bool | None]) -> frozenset[int]:
    """``wrong`` (1-based) with every checkable step set to the checker's verdict."""
    kept = {s for s in wrong if checked[s - 1] is None}
    return frozenset(kept | {i for i, v in enumerate(checked, start=1) if v})


def veto_text(text: str | None, checked: Sequence[bool | None]) -> str | None:
    """An LLM critique with the checker's veto appended as the final verdict (None stays None;
    an unreadable critique is returned unchanged, so it still abstains)."""
    wrong = parse_critique(text, len(checked)) if text is not None else None
    if wrong is None:
        return text
    final = veto(wrong, checked)
    changed = sorted(wrong ^ final)
    note = f"Arithmetic checker overrules step(s) {', '.join(map(str, changed))}." if changed else "Arithmetic checker agrees."
    return f"{text}\n\n{note}\n{format_verdict(sorted(final))}"


def checker_texts(steps: Sequence[str], votes: int) -> list[str]:
    """The checker's own critique, ``votes`` times (noise-free: identical each time)."""
    return critique_steps(list(steps), votes, 0.0, random.Random(0))  # no noise: the rng is unused


def combine(result: CritiqueResult, steps: Sequence[str], mode: str, checker_votes: int) -> CritiqueResult:
    """One response's LLM result joined with the checker under ``mode`` (see module doc)."""
    if mode == "voter":
        texts = list(result.texts) + checker_texts(steps, checker_votes)
    elif mode == "veto":
        checked = checker_verdicts(steps)
        texts = [veto_text(t, checked) for t in result.texts]
    else:
        raise ValueError(f"hybrid mode must be voter or veto, got {mode!r}")
    return CritiqueResult(
        texts=texts, prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
        error=result.error, seconds=result.seconds, failures=dict(result.failures), retries=result.retries,
        cached=result.cached,
    )  # fmt: skip


class HybridCritic:
    """Backend contract of capo_ray.critics.factory over an LLM backend ``llm``."""

    def __init__(self, llm: Any, c: Any) -> None:
        self.llm, self.mode, self.checker_votes = llm, c.hybrid.mode, c.hybrid.checker_votes

    def critique(self, messages: list[list[dict[str, str]]], step_texts: list[list[str]]) -> list[CritiqueResult]:
        results = self.llm.critique(messages, step_texts)
        return [combine(r, steps, self.mode, self.checker_votes) for r, steps in zip(results, step_texts)]

    def shutdown(self) -> None:
        self.llm.shutdown()
