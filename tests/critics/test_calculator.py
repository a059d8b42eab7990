"""Exact arithmetic on GSM8K calculator notes and visible equations, without eval."""

from fractions import Fraction

import pytest

from capo_ray.critics.calculator import (
    NotArithmetic,
    equation_holds,
    evaluate,
    format_number,
    notes_in,
    strip_notes,
    trailing_equation,
    visible_equations,
    wrong_equations,
)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("48/2", Fraction(24)),
        ("16-3-4", Fraction(9)),  # left-associative
        ("3+4*5", Fraction(23)),  # precedence
        ("(3+4)*5", Fraction(35)),
        ("2*.5", Fraction(1)),
        ("10/4", Fraction(5, 2)),  # exact, not 2.5000001
        ("-3+5", Fraction(2)),
        ("$1,200 x 2", Fraction(2400)),  # visible-text spelling
        ("7 × .5", Fraction(7, 2)),
    ],
)
def test_evaluate(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('echo hi')", "2**10", "1/0", "(1+2", "3 +", "", "2 apples"],
)
def test_evaluate_rejects_non_arithmetic(expression):
    with pytest.raises(NotArithmetic):
        evaluate(expression)


def test_format_number():
    assert format_number(Fraction(24)) == "24"
    assert format_number(Fraction(7, 2)) == "3.5"
    assert format_number(Fraction(14), like="15.00") == "14.00"  # keeps the cents
    assert format_number(Fraction(1234567), like="1,000") == "1,234,567"
    assert format_number(Fraction(-1, 4)) == "-0.25"
    with pytest.raises(NotArithmetic):
        format_number(Fraction(1, 3))


def test_notes_are_found_and_stripped():
    line = "She makes 9 * 2 = $<<9*2=18>>18 every day."
    (note,) = notes_in(line)
    assert (note.expression, note.result) == ("9*2", "18")
    assert line[note.start : note.end] == "<<9*2=18>>"
    assert strip_notes(line) == "She makes 9 * 2 = $18 every day."


def test_visible_equations_and_chains():
    text = "so he has to memorize 4 * 60 / 5 = 4 * 12 = 48 lines, and 2 + 2 = 5 is wrong."
    assert visible_equations(text) == [["4 * 60 / 5", "4 * 12", "48"], ["2 + 2", "5"]]
    assert [equation_holds(chain) for chain in visible_equations(text)] == [True, False]
    assert wrong_equations(text) == 1


@pytest.mark.parametrize(
    "text",
    [
        "60g * 4/5 = 240g/5 = 48 grams",  # quantities with units interrupt the expression
        "he had 5 - 1 - 1/2 = 3 1/2 hours left",  # mixed number
        "The fee is $350 000 x 5/100 = $17500.",  # space as thousands separator
        "15 pages x 1/3 = 5 pages",
        "x = 5 and y = 3",  # no arithmetic at all
    ],
)
def test_fragments_are_not_reported_as_wrong(text):
    assert wrong_equations(text) == 0


def test_trailing_equation():
    assert trailing_equation("Natalia sold 48/2 = ") == "48/2"
    assert trailing_equation("She makes 9 * 2 = $") == "9 * 2"
    assert trailing_equation("He has 24 = ") is None  # no operator: not a computation
    assert trailing_equation("Natalia sold ") is None


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    a=st.fractions(min_value=-1000, max_value=1000, max_denominator=8),
    b=st.fractions(min_value=-1000, max_value=1000, max_denominator=8).filter(lambda x: x != 0),
    op=st.sampled_from("+-*/"),
)
def test_evaluate_matches_fraction_arithmetic(a, b, op):
    expected = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
    assert evaluate(f"({a.numerator}/{a.denominator}) {op} ({b.numerator}/{b.denominator})") == expected


def test_a_long_run_of_operations_that_never_closes_is_read_in_linear_time():
    # A sampled organism response: a chain that ends glued to a word, so no match exists and the
    # regex must give up. Before every space gap had one owner, each extra "+ 4" multiplied the
    # backtracking ~6x (4 terms: 3 s; 30: a hung training run). The alarm turns a hang into a failure.
    import signal

    text = "Step 5: 2017 + 5 + 419 - 2 + 426" + " + 4" * 200 + "Step 6: 3 + 4 = 7"

    def hung(*_):
        raise TimeoutError("visible_equations backtracks exponentially again")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        assert visible_equations(text) == [["3 + 4", "7"]]
        assert wrong_equations(text + " and 1 + 1 = 3") == 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
