"""The ``arith`` critic: an exact checker of the arithmetic in each step.

It plays the GenPRM's role where no offline LLM can (SmolLM2 judges steps at chance): for each
step it checks every ``expression = value`` it contains, writes a short note per step and ends
with the same ``Wrong step list: [...]`` verdict an LLM critic would, so its output goes
through exactly the same parse -> vote -> credit path. With ``flip_noise`` each critique flips
each step's verdict with that probability, which exercises voting and lets one study how
critic noise hurts training.

Expressions are parsed by a small recursive-descent parser over integers and decimals with
+ - * / x and parentheses; nothing is ever passed to eval.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction

from capo_ray.core.critique import format_verdict
from capo_ray.records import CritiqueResult

_NUMBER = r"-?\d+(?:\.\d+)?"
# "expr = value": expr is numbers/operators/parentheses; the value is the number after '='.
_EQUATION = re.compile(r"((?:[\d.()]|\s|[-+*/×x·])+?)=\s*(" + _NUMBER + r")(?![\d.])")
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|[-+*/×x·()])")
_MAX_DIGITS = 40  # larger literals are not checked: they cannot come from these tasks


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0

    @staticmethod
    def _tokenize(text: str) -> list[str]:
        tokens, pos, text = [], 0, text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"cannot read {text[pos:]!r}")
            tokens.append({"×": "*", "x": "*", "·": "*"}.get(m.group(1), m.group(1)))
            pos = m.end()
        return tokens

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        tok = self._peek()
        if tok is None:
            raise ValueError("unexpected end")
        self.pos += 1
        return tok

    def parse(self) -> Fraction:
        value = self._sum()
        if self._peek() is not None:
            raise ValueError(f"trailing {self._peek()!r}")
        return value

    def _sum(self) -> Fraction:
        value = self._product()
        while self._peek() in ("+", "-"):
            op = self._take()
            rhs = self._product()
            value = value + rhs if op == "+" else value - rhs
        return value

    def _product(self) -> Fraction:
        value = self._atom()
        while self._peek() in ("*", "/"):
            op = self._take()
            rhs = self._atom()
            if op == "/" and rhs == 0:
                raise ValueError("division by zero")
            value = value * rhs if op == "*" else value / rhs
        return value

    def _atom(self) -> Fraction:
        tok = self._take()
        if tok == "-":
            return -self._atom()
        if tok == "(":
            value = self._sum()
            if self._take() != ")":
                raise ValueError("unbalanced parenthesis")
            return value
        if not tok[0].isdigit() or len(tok) > _MAX_DIGITS:
            raise ValueError(f"not a number: {tok!r}")
        return Fraction(tok)


def check_step(step: str) -> tuple[bool | None, str]:
    """(is_wrong, note): None when the step holds no checkable arithmetic."""
    checked, wrong_notes = 0, []
    for m in _EQUATION.finditer(step):
        expr, claimed = m.group(1), m.group(2)
        if not re.search(r"\d\s*[-+*/×x·]\s*\(?-?\d", expr):
            continue  # "x = 3" or "Step 1: 7" carries no operation to check
        try:
            actual = _Parser(expr).parse()
        except (ValueError, ZeroDivisionError):
            continue
        checked += 1
        if len(claimed) > _MAX_DIGITS or actual != Fraction(claimed):
            shown = actual.numerator if actual.denominator == 1 else float(actual)
            wrong_notes.append(f"{expr.strip()} = {shown}, not {claimed}")
    if wrong_notes:
        return True, "wrong: " + "; ".join(wrong_notes)
    if checked:
        return False, "correct."
    return None, "no arithmetic to check."


def critique_steps(steps: list[str], k: int, flip_noise: float, rng: random.Random) -> list[str]:
    """K critique texts for one response; each flips each step's verdict with ``flip_noise``."""
    verdicts = [check_step(step) for step in steps]
    texts = []
    for _ in range(k):
        lines, wrong = [], []
        for idx, (is_wrong, note) in enumerate(verdicts, start=1):
            flagged = bool(is_wrong)
            if flip_noise and rng.random() < flip_noise:
                flagged = not flagged
                note = f"{note} (judged {'wrong' if flagged else 'right'})"
            lines.append(f"Step {idx}: {note}")
            if flagged:
                wrong.append(idx)
        lines.append(format_verdict(wrong))
        texts.append("\n".join(lines))
    return texts


class ArithCritic:
    """Driver-side backend with the same ``critique`` call as the LLM critic pool. It reads
    the step texts directly (the chat messages are for LLM critics) and costs microseconds,
    so it runs in the driver process rather than in an actor."""

    def __init__(self, k: int, flip_noise: float, seed: int) -> None:
        self.k = k
        self.flip_noise = flip_noise
        self.rng = random.Random(seed)

    def critique(
        self, messages: list[list[dict[str, str]]] | None, step_texts: list[list[str]]
    ) -> list[CritiqueResult]:
        return [
            CritiqueResult(texts=list(critique_steps(steps, self.k, self.flip_noise, self.rng)))
            for steps in step_texts
        ]

    def shutdown(self) -> None:
        pass
