"""Answers read as numbers: the exact fast path of both verifiers."""

from fractions import Fraction

import pytest

from capo_ray.rewards.numeric import as_base_number, as_number, compare_numbers


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("42", Fraction(42)),
        ("-3.50", Fraction(-7, 2)),
        (".5", Fraction(1, 2)),
        ("3/4", Fraction(3, 4)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("-\\dfrac{3}{4}", Fraction(-3, 4)),
        ("\\frac12", Fraction(1, 2)),
        ("1,000", Fraction(1000)),
        ("$18$", Fraction(18)),
        ("1/0", None),
        ("x", None),
        ("2^3", None),
        ("9" * 5000, None),  # too long for int(): left to the full check
    ],
)
def test_as_number(answer, value):
    assert as_number(answer) == value


@pytest.mark.parametrize(
    ("answer", "reference", "decision"),
    [
        ("3.0", "3", True),
        ("x = 5", "5", True),
        ("0.75", "\\frac{3}{4}", True),
        ("1,000", "1000", True),
        ("17", "18", False),
        ("1000001", "1000000", False),  # whole numbers: any difference counts
        ("0.5", "\\frac{2}{3}", False),  # far apart
        ("0.333", "\\frac13", None),  # close: math-verify's rounding rules decide
        ("50\\%", "0.5", None),  # not a plain number
        ("x = y = 5", "5", None),
        ("\\sqrt{2}", "1.414", None),
    ],
)
def test_compare_numbers(answer, reference, decision):
    assert compare_numbers(answer, reference) is decision


def test_base_numbers():
    assert as_base_number("4210_{5}") == ("4210", 5)
    assert as_base_number("1a_{16}") == ("1A", 16)
    assert as_base_number("42") is None
