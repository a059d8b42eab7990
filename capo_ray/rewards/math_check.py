"""The math-verify equivalence check, run only inside ``DeadlinePool`` worker processes.

Importing this module imports sympy and math-verify (about a second), which is why the parent
process refers to it by name ("capo_ray.rewards.math_check:equivalent") and never imports it.

math-verify's own timeouts are switched off (``parsing_timeout=None``, ``timeout_seconds=None``):
they rely on ``signal.alarm``; the pool's per-task deadline bounds the time instead.
math-verify parses LaTeX with its own grammar into sympy objects; it does not eval the text.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from math_verify import parse, verify

# math-verify warns on every call that its timeout is disabled: we know, the pool bounds it.
logging.getLogger("math_verify").setLevel(logging.ERROR)

WARMUP = ("\\frac{1}{2}", "0.5")  # builds math-verify's LaTeX parser before the first deadline


@lru_cache(maxsize=4096)
def _parsed(answer: str) -> list:
    # Answers arrive as bare LaTeX (already extracted and cleaned); math mode makes
    # math-verify read them as one expression, and it is what keeps "50\%" a number.
    return parse(f"${answer}$", parsing_timeout=None)


def equivalent(pair: tuple[str, str]) -> bool:
    """Whether ``pair = (answer, reference)`` are mathematically the same answer."""
    answer, reference = pair
    gold = _parsed(reference)
    if not gold:
        return False
    return bool(verify(gold, _parsed(answer), timeout_seconds=None))
