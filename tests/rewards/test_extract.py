"""Final-answer extraction and normalization (pure string work, no subprocess)."""

import time

import pytest

from capo_ray.rewards.extract import (
    answer_is,
    canonical,
    clean_answer,
    extract_answer,
    extract_reference,
    hash_answer,
    last_boxed,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{42}.", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces
        ("\\boxed{\\left\\{ 1, \\frac{2}{3} \\right\\}}", "\\left\\{ 1, \\frac{2}{3} \\right\\}"),  # escaped braces
        ("first \\boxed{1} then \\boxed{2}", "2"),  # the last box wins
        ("\\fbox{7}", "7"),
        ("\\boxed{1} and finally \\framebox{204}", "204"),
        ("\\boxed 5 is it", "5"),  # brace-less argument
        ("$\\boxed{ 3 }$", "3"),
        ("no box here", None),
        ("\\boxed{}", None),  # an empty box is no answer
        ("\\boxed{1} but then \\boxed{\\frac{2}{3}", None),  # truncated last box: unfinished answer
        ("\\boxed", None),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She makes 9 * 2 = $18.\n#### 18", "18"),
        ("#### 1,000", "1,000"),
        ("#### 3\nlater text\n#### 4", "4"),
        ("####", None),
        ("no marker", None),
    ],
)
def test_hash_answer(text, expected):
    assert hash_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So the answer is 42.", "42"),
        ("The final answer is: 3.5.", "3.5"),  # a decimal point is not the sentence's end
        ("The answer is $\\frac{1}{2}$. Done.", "$\\frac{1}{2}$"),
        ("the answer is 1. Wait, the answer is 2", "2"),
        ("The answer is", None),
        ("I think it is 5", None),
    ],
)
def test_answer_is(text, expected):
    assert answer_is(text) == expected


def test_extract_answer_prefers_box_then_hash_then_sentence():
    assert extract_answer("The answer is 1.\n#### 2\n\\boxed{3}") == "3"
    assert extract_answer("The answer is 1.\n#### 2") == "2"
    assert extract_answer("The answer is 1.") == "1"
    assert extract_answer("Step 1: 2 + 2 = 4") is None


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("72", "72"),  # bare answer
        ("\\frac{1}{2}", "\\frac{1}{2}"),  # LaTeX answer
        ("Since ... we get $\\boxed{\\frac{\\pi}{2}}$.", "\\frac{\\pi}{2}"),  # MATH solution
        ("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", "72"),  # GSM8K solution
        ("   ", None),
    ],
)
def test_extract_reference(reference, expected):
    assert extract_reference(reference) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("$18$", "18"),
        ("\\$18", "18"),
        ("18 dollars", "18"),
        ("10 \\text{ cm}", "10"),
        ("1,000", "1000"),
        ("-12,345.5", "-12345.5"),
        ("1,2,3", "1,2,3"),  # a list, not a thousands separator
        ("100,20", "100,20"),
        ("42.", "42"),
        ("5 pi", "5 pi"),  # pi is a number, not a unit word
    ],
)
def test_clean_answer(answer, expected):
    assert clean_answer(answer) == expected


def test_canonical_ignores_presentation_only():
    assert canonical("\\left( 3, \\dfrac{\\pi}{2} \\right)") == canonical("(3,\\frac{\\pi}{2})")
    assert canonical("90^\\circ") == canonical("90")
    assert canonical("50\\%") == canonical("50%")
    assert canonical("0.5") != canonical("\\frac{1}{2}")  # equivalent, but not by spelling


def test_extraction_is_fast_on_long_hostile_text():
    # Shapes that make naive regexes backtrack: many unclosed boxes, long word runs.
    hostile = "\\boxed{" * 20000 + "18 " + "a" * 50000 + "1" + " the answer is " * 5000
    start = time.perf_counter()
    extract_answer(hostile)
    clean_answer("18 " + "a" * 50000 + "1")
    assert time.perf_counter() - start < 2.0


# ---- properties ----------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PLAIN = st.text(alphabet=st.characters(blacklist_characters="{}\\", blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(prefix=_PLAIN, answer=_PLAIN, suffix=_PLAIN)
def test_boxed_round_trip(prefix, answer, suffix):
    # Whatever surrounds it, the box's content comes back (stripped; an empty box is no answer).
    text = f"{prefix}\\boxed{{\\frac{{{answer}}}{{2}}}}{suffix}"
    assert last_boxed(text) == f"\\frac{{{answer}}}{{2}}".strip()


@settings(max_examples=200, deadline=None)
@given(a=st.integers(-10**12, 10**12), b=st.integers(-10**12, 10**12))
def test_integer_answers_compare_as_integers(a, b):
    from capo_ray.rewards.exact import exact_verdict
    from capo_ray.rewards.math import triage

    response = f"so the total is \\boxed{{{a:,}}}."  # thousands commas as GSM8K writes them
    assert exact_verdict(response, str(b)).correct == (a == b)
    assert triage(response, str(b)).correct == (a == b)  # decided without a worker
