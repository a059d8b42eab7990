"""Answers read as numbers, so that common cases are decided exactly without math-verify."""

from __future__ import annotations

import re
from fractions import Fraction

from capo_ray.rewards.extract import canonical

# Python refuses int() of strings over 4300 digits; no real answer is anywhere near this.
MAX_NUMBER_CHARS = 1000
_DECIMAL = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_SLASH_FRACTION = re.compile(r"([-+]?\d+)/(\d+)")
# After canonical(): no spaces, \dfrac/\tfrac spelled \frac. "\frac12" is valid LaTeX for 1/2.
_LATEX_FRACTION = re.compile(r"([-+]?)\\frac(?:\{([-+]?\d+)\}|(\d))(?:\{(\d+)\}|(\d))")
_ASSIGNMENT = re.compile(r"[A-Za-z]=([^=]+)")  # "x=5" after canonical() removed the spaces
_BASE_NUMBER = re.compile(r"([0-9A-Za-z]+)_\{?(\d+)\}?")
# Two numbers further apart than this (relative) are different answers under any checker;
# closer ones (0.333 vs 1/3) are left to math-verify's own rounding rules.
_CLEARLY_APART = Fraction(1, 1000)


def as_number(answer: str) -> Fraction | None:
    """The exact value of an answer written as an integer, decimal or fraction, else None."""
    text = canonical(answer)
    if len(text) > MAX_NUMBER_CHARS:
        return None
    if _DECIMAL.fullmatch(text):
        return Fraction(text)
    match = _SLASH_FRACTION.fullmatch(text)
    if match:
        numerator, denominator = int(match.group(1)), int(match.group(2))
    else:
        match = _LATEX_FRACTION.fullmatch(text)
        if not match:
            return None
        sign, num_braced, num_digit, den_braced, den_digit = match.groups()
        numerator = int(num_braced or num_digit) * (-1 if sign == "-" else 1)
        denominator = int(den_braced or den_digit)
    return Fraction(numerator, denominator) if denominator != 0 else None


def compare_numbers(answer: str, reference: str) -> bool | None:
    """True/False when both are plain numbers (an answer may read "x = 5") and the comparison
    is beyond doubt; None when either is not a number or the two are merely close."""
    assignment = _ASSIGNMENT.fullmatch(canonical(answer))
    value = as_number(assignment.group(1) if assignment else answer)
    gold = as_number(reference)
    if value is None or gold is None:
        return None
    if value == gold:
        return True
    both_whole = value.denominator == 1 and gold.denominator == 1
    if both_whole or abs(value - gold) > _CLEARLY_APART * max(1, abs(value), abs(gold)):
        return False
    return None


def as_base_number(answer: str) -> tuple[str, int] | None:
    """(digits, base) for an answer written in a base, like MATH's "4210_{5}", else None.

    math-verify drops the subscript (it reads 52_4 and 52_8 as the same 52), so answers in
    a base are compared here, digit by digit, base by base.
    """
    match = _BASE_NUMBER.fullmatch(canonical(answer))
    if match is None:
        return None
    return match.group(1).upper(), int(match.group(2))


def compare_base_numbers(answer: str, reference: str) -> bool | None:
    """True/False when both are numbers in a base (see ``as_base_number``), else None."""
    answer_base, gold_base = as_base_number(answer), as_base_number(reference)
    return None if answer_base is None or gold_base is None else answer_base == gold_base
