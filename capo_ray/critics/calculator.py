"""Arithmetic in text, read without eval: GSM8K calculator notes and visible equations.

Shared by the ``arith`` critic (checking a policy's steps) and the critic-eval benchmark
(building and labelling corrupted GSM8K solutions), so both read equations the same way.


GSM8K gold solutions annotate each computation as ``48/2 = <<48/2=24>>24``: the note holds the
expression and its result, the visible text repeats them. This module parses the notes,
evaluates arithmetic exactly (``Fraction``) with a small recursive-descent parser (numbers,
+ - * / and parentheses only: never ``eval``), and finds the equations a reader sees once
the notes are removed (``4 * 60 / 5 = 4 * 12 = 48``) so their correctness can be checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

NOTE = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
# A number as written in text: 7, 1,200, 3.5, .75. Not a digit run inside a word ("5th", "x2").
NUMBER = re.compile(r"(?<![\w.])(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?![\w])")
_TOKEN = re.compile(r"\s*(?:(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)|([-+*/x×()]))")

# A number not glued to a word ("240g" is a quantity with a unit, not an operand).
# Every run of spaces has exactly one sub-pattern that may take it (no "\s*\$?\s*"): with two
# candidates per gap, a long chain that fails to match at its end ("... + 4 + 4 + 117Step")
# backtracks through every split of every gap, exponentially (a response of 30 "+ 4" hung a run).
_OPERAND = r"(?:\(\s*)*(?:\$\s*)?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?![A-Za-z_])(?:\s*\))*"
_EXPR = rf"{_OPERAND}(?:\s*[-+*/x×]\s*{_OPERAND})*"
# A chain must not start or end inside a larger expression the text interrupts ("60g * 4/5",
# the mixed number "3 1/2", "$350 000"): checking such a fragment would report a false error.
# A side after "=" may be negative ("3 - 5 = -2"); the first side never starts with a sign,
# so "10 - 3 = 7" is not misread as "-3 = 7".
_CHAIN = re.compile(
    rf"(?<![\w.])(?<![-+*/×])(?<![-+*/×x]\s)(?<!\d\s){_EXPR}(?:\s*=\s*(?:-\s*)?{_EXPR})+(?!\s*\.?\d)"
)
_TRAILING_EQUATION = re.compile(rf"({_EXPR})\s*=\s*(?:\$\s*)?$")
_HAS_OPERATOR = re.compile(r"\d\s*\)*\s*[-+*/x×]\s*\(*\s*\$?\s*\.?\d")


class NotArithmetic(ValueError):
    """Text that is not plain arithmetic (or divides by zero)."""


def parse_number(text: str) -> Fraction:
    return Fraction(text.replace(",", "").replace("$", "").strip())


def format_number(value: Fraction, like: str = "") -> str:
    """``value`` as a terminating decimal ("24", "3.5"), written the way ``like`` (the number it
    replaces) was: thousands commas, and as many decimal places ("$15.00" -> "$14.00") when
    they suffice. Raises for values with no short decimal form."""
    like_places = len(like.partition(".")[2]) if "." in like else 0
    for places in (like_places, *range(0, 5)):
        scaled = value * 10**places
        if scaled.denominator == 1:
            break
    else:
        raise NotArithmetic(f"{value} has no short decimal form")
    digits = f"{abs(int(scaled)):0{places + 1}d}"
    whole, fraction = digits[: len(digits) - places], digits[len(digits) - places :]
    if "," in like:
        whole = f"{int(whole):,}"
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{fraction}" if places else f"{sign}{whole}"


def is_short_decimal(value: Fraction) -> bool:
    try:
        format_number(value)
    except NotArithmetic:
        return False
    return True


def evaluate(expression: str) -> Fraction:
    """Exact value of ``expression`` (numbers, + - * / x ×, parentheses, $ signs ignored)."""
    tokens = _tokenize(expression.replace("$", ""))
    value, pos = _sum(tokens, 0)
    if pos != len(tokens):
        raise NotArithmetic(f"unexpected {tokens[pos]!r} in {expression!r}")
    return value


def try_evaluate(expression: str) -> Fraction | None:
    """``evaluate``, or None when ``expression`` is not plain arithmetic."""
    try:
        return evaluate(expression)
    except (NotArithmetic, ValueError, ZeroDivisionError):
        return None


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise NotArithmetic(f"not arithmetic: {text!r}")
        tokens.append(match.group(1) or match.group(2))
        pos = match.end()
    if not tokens:
        raise NotArithmetic("empty expression")
    return tokens


def _sum(tokens: list[str], pos: int) -> tuple[Fraction, int]:
    value, pos = _product(tokens, pos)
    while pos < len(tokens) and tokens[pos] in "+-":
        operator = tokens[pos]
        right, pos = _product(tokens, pos + 1)
        value = value + right if operator == "+" else value - right
    return value, pos


def _product(tokens: list[str], pos: int) -> tuple[Fraction, int]:
    value, pos = _factor(tokens, pos)
    while pos < len(tokens) and tokens[pos] in ("*", "/", "x", "×"):
        operator = tokens[pos]
        right, pos = _factor(tokens, pos + 1)
        if operator == "/":
            if right == 0:
                raise NotArithmetic("division by zero")
            value = value / right
        else:
            value = value * right
    return value, pos


def _factor(tokens: list[str], pos: int) -> tuple[Fraction, int]:
    if pos >= len(tokens):
        raise NotArithmetic("expression ends early")
    token = tokens[pos]
    if token == "-":
        value, pos = _factor(tokens, pos + 1)
        return -value, pos
    if token == "(":
        value, pos = _sum(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos] != ")":
            raise NotArithmetic("unbalanced parentheses")
        return value, pos + 1
    if token[0].isdigit() or token[0] == ".":
        return parse_number(token), pos + 1
    raise NotArithmetic(f"unexpected {token!r}")


@dataclass(frozen=True)
class Note:
    """One ``<<expression=result>>`` note and where it sits in its line."""

    expression: str
    result: str
    start: int
    end: int


def notes_in(text: str) -> list[Note]:
    return [Note(m.group(1), m.group(2), m.start(), m.end()) for m in NOTE.finditer(text)]


def strip_notes(text: str) -> str:
    """The text a reader (and the critic) sees: the notes removed, the visible result kept."""
    return NOTE.sub("", text)


def visible_equations(text: str) -> list[list[str]]:
    """Equation chains in plain text, each as its sides: "4 * 60 / 5 = 4 * 12 = 48" ->
    ["4 * 60 / 5", "4 * 12", "48"]. Only chains with an operator somewhere count."""
    chains = []
    for match in _CHAIN.finditer(text):
        if _HAS_OPERATOR.search(match.group(0)):
            chains.append([side.strip() for side in match.group(0).split("=")])
    return chains


def equation_holds(sides: list[str]) -> bool | None:
    """Whether every side of a chain has the same value; None if a side is not arithmetic."""
    values = [try_evaluate(side) for side in sides]
    if any(value is None for value in values):
        return None
    return all(value == values[0] for value in values)


def wrong_equations(text: str) -> int:
    """How many visible equation chains in ``text`` are false."""
    return sum(equation_holds(sides) is False for sides in visible_equations(text))


def trailing_equation(text: str) -> str | None:
    """The left side of an equation that ``text`` ends with ("... so 2 * 54 = " -> "2 * 54")."""
    match = _TRAILING_EQUATION.search(text)
    if match is None or not _HAS_OPERATOR.search(match.group(1)):
        return None
    return match.group(1).strip()
