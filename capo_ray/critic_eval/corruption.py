"""Corrupting one step of a GSM8K gold solution and carrying the change forward exactly.

Works on the raw solution lines (with their ``<<expr=result>>`` notes). A corruption picks a
note whose result the reader sees as the right side of a visible equation ("48/2 = 24"),
replaces that result with a plausible wrong one, then, in reading order, recomputes every
later note whose expression uses a changed value (adding its own new result to the changes),
rewrites the numbers in the text that repeat a changed value, and moves the final answer.

A corruption is refused rather than guessed whenever its effect could be ambiguous: a changed
value that also appears in the question, earlier in the solution, or is a common constant
(2, 12, 60, 100 ...) might be an unrelated number with the same digits.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Sequence

from capo_ray.critics.calculator import (
    NOTE,
    NUMBER,
    Note,
    NotArithmetic,
    evaluate,
    format_number,
    is_short_decimal,
    notes_in,
    parse_number,
    strip_notes,
    trailing_equation,
    try_evaluate,
    wrong_equations,
)

ErrorKind = Literal["off_by_delta", "wrong_operator"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("off_by_delta", "wrong_operator")
# Numbers too likely to appear as unrelated constants (halves, dozens, minutes, percent) to
# be told apart from a computed value by their digits alone.
_AMBIGUOUS = frozenset(Fraction(n) for n in (*range(0, 11), 12, 24, 30, 52, 60, 100, 365, 1000))
_BINARY = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([-+*/])\s*(\d+(?:\.\d+)?|\.\d+)\s*")


@dataclass(frozen=True)
class Corruption:
    steps: list[str]  # all step lines, notes included, after the change
    index: int  # 0-based index of the corrupted step
    answer: str  # the final answer the corrupted steps reach
    kind: ErrorKind


def is_clean(steps: list[str], final: str) -> bool:
    """Every note evaluates to its result, every visible equation holds, the answer is a number."""
    try:
        parse_number(final)
        notes_exact = all(evaluate(n.expression) == parse_number(n.result) for s in steps for n in notes_in(s))
    except (NotArithmetic, ValueError, ZeroDivisionError):
        return False
    return notes_exact and all(wrong_equations(strip_notes(step)) == 0 for step in steps)


def corrupt(
    steps: list[str], final: str, question: str, rng: random.Random, kinds: Sequence[ErrorKind] = ERROR_KINDS
) -> Corruption | None:
    """One step's result corrupted and carried forward, or None when no step of this clean
    solution can be corrupted unambiguously (or the solution is not clean)."""
    if not is_clean(steps, final):
        return None
    candidates = _candidates(steps, question)
    rng.shuffle(candidates)
    for index, note in candidates:
        kind = rng.choice(list(kinds))
        for wrong in _wrong_results(note, kind, rng)[:3]:
            result = _corrupt_at(steps, final, question, index, note, wrong)
            if result is not None:
                new_steps, answer = result
                return Corruption(new_steps, index, answer, kind)
    return None


def _numbers(text: str) -> set[Fraction]:
    return {parse_number(m.group(0)) for m in NUMBER.finditer(strip_notes(text))}


def _visible_result(tail: str) -> Fraction | None:
    """The number the text shows right after a note ("<<2*54=108>>108 lines" -> 108)."""
    match = NUMBER.match(tail)
    return parse_number(match.group(0)) if match else None


def _candidates(steps: list[str], question: str) -> list[tuple[int, Note]]:
    """Notes whose result the reader sees as the right side of a visible equation, and whose
    value appears nowhere before (so every later occurrence is a use of it)."""
    found = []
    seen = _numbers(question)
    for index, step in enumerate(steps):
        for note in notes_in(step):
            value = parse_number(note.result)
            lhs = trailing_equation(strip_notes(step[: note.start]))
            if (
                lhs is not None
                and _visible_result(step[note.end :]) == value
                and value not in seen | _numbers(step[: note.start]) | _AMBIGUOUS
                and try_evaluate(lhs) == value
            ):
                found.append((index, note))
        seen |= _numbers(step)
    return found


def _plausible(new: Fraction, old: Fraction) -> bool:
    """A wrong value that does not give itself away: positive, whole when the true value is
    (3.5 oranges would), and a short decimal otherwise."""
    if new <= 0:
        return False
    return new.denominator == 1 if old.denominator == 1 else is_short_decimal(new)


def _wrong_results(note: Note, kind: ErrorKind, rng: random.Random) -> list[Fraction]:
    """Plausible wrong results for a note, in random order."""
    value = parse_number(note.result)
    if kind == "off_by_delta":
        # A slip in the last digits: +-1..3 for small numbers, +-10..30 for hundreds, ...
        scale = 10 ** max(0, len(str(abs(int(value)))) - 2)
        options = [value + sign * step * scale for step in (1, 2, 3) for sign in (1, -1)]
    else:
        # The right operands under another operator ("48/2 = 50": added instead of divided).
        binary = _BINARY.fullmatch(note.expression)
        if binary is None:
            return []
        left, operator, right = binary.groups()
        results = [try_evaluate(f"{left}{other}{right}") for other in "+-*/" if other != operator]
        options = [r for r in results if r is not None]
    options = [o for o in options if o != value and _plausible(o, value)]
    rng.shuffle(options)
    return options


def _corrupt_at(
    steps: list[str], final: str, question: str, index: int, note: Note, wrong: Fraction
) -> tuple[list[str], str] | None:
    """(new step lines, new final answer) with ``note`` given the result ``wrong``, or None."""
    step = steps[index]
    forbidden = _numbers(question) | _numbers(step[: note.start])
    for earlier in steps[:index]:
        forbidden |= _numbers(earlier)
    changed = {parse_number(note.result): wrong}
    # The corrupted step keeps its (true) operands; the note and everything after it change.
    rewritten = _rewrite_notes([step[note.end :], *steps[index + 1 :]], changed, forbidden)
    final_value = parse_number(final)
    if rewritten is None or final_value not in changed:
        return None  # ambiguous, or the error never reaches the answer
    rewritten = [_substitute_visible(text, changed) for text in rewritten]
    corrupted_step = f"{step[: note.start]}<<{note.expression}={format_number(wrong)}>>{rewritten[0]}"
    new_steps = [*steps[:index], corrupted_step, *rewritten[1:]]
    # Exactly the corrupted step must read as wrong; every other step's arithmetic must hold.
    shown = [strip_notes(s) for s in new_steps]
    if wrong_equations(shown[index]) == 0 or any(wrong_equations(s) for j, s in enumerate(shown) if j != index):
        return None
    return new_steps, format_number(changed[final_value])


def _rewrite_notes(
    texts: list[str], changed: dict[Fraction, Fraction], forbidden: set[Fraction]
) -> list[str] | None:
    """Recompute, in reading order, every note whose expression uses a changed value, adding
    its own result to ``changed``. None when the effect is ambiguous (the old result also
    stands for something else: ``forbidden`` or a common constant), or the new result would
    look implausible (see ``_plausible``)."""
    out = []
    for text in texts:
        pieces, last = [], 0
        for note in notes_in(text):
            expression = _substitute(note.expression, changed)
            old, new = parse_number(note.result), try_evaluate(expression)
            if new is None:
                return None
            if new != old:
                ambiguous = old in _AMBIGUOUS or old in forbidden or changed.get(old, new) != new
                if ambiguous or not _plausible(new, old):
                    return None
                changed[old] = new
            pieces += [text[last : note.start], f"<<{expression}={format_number(new)}>>"]
            last = note.end
        out.append("".join(pieces) + text[last:])
    return out


def _substitute(text: str, changed: dict[Fraction, Fraction]) -> str:
    """Replace every number in ``text`` whose value was changed (keeping its spelling style)."""

    def swap(match: re.Match[str]) -> str:
        value = parse_number(match.group(0))
        return format_number(changed[value], like=match.group(0)) if value in changed else match.group(0)

    return NUMBER.sub(swap, text)


def _substitute_visible(text: str, changed: dict[Fraction, Fraction]) -> str:
    """``_substitute`` on the text outside the notes (the notes were rewritten already).

    One pass over the original numbers, so a chain old A -> B, old B -> C maps each number
    by what it meant in the gold solution."""
    pieces, last = [], 0
    for match in NOTE.finditer(text):
        pieces += [_substitute(text[last : match.start()], changed), match.group(0)]
        last = match.end()
    return "".join(pieces) + _substitute(text[last:], changed)
