"""The outcome verifier's answer rules (docs/algorithm.md, "Outcome reward"), for both verifiers:
decimal commas, multi-part answers given as several boxes, and reasoning-model thinking."""

from __future__ import annotations

import pytest

from capo_ray.rewards import ExactMatchVerifier, MathVerifier
from capo_ray.rewards.extract import all_boxed, clean_answer, extract_answer, top_level_parts, without_thinking


@pytest.fixture(scope="module", params=["exact", "math"])
def verifier(request):
    made = ExactMatchVerifier() if request.param == "exact" else MathVerifier(timeout_s=10.0, num_workers=1)
    with made:
        yield made


def judged(verifier, response: str, reference: str) -> bool:
    (verdict,) = verifier.verify_batch([response], [reference])
    return verdict.correct


# (response, reference, correct): each decided the same way by both verifiers.
CASES = [
    # A lone 0 before the comma cannot start a thousands grouping: a decimal comma.
    ("\\boxed{0,111}", "0.111", True),
    ("\\boxed{0,125}", "\\frac{1}{8}", True),
    ("\\boxed{-0,5}", "-\\frac{1}{2}", True),
    ("\\boxed{0.125}", "0,125", True),  # the rule reads references too
    ("\\boxed{0,111}", "111", False),
    # Groups of three after a leading 1-9 stay thousands; anything else is a list.
    ("\\boxed{1,000}", "1000", True),
    ("\\boxed{12,345.5}", "12345.5", True),
    ("\\boxed{1,5}", "1.5", False),
    ("\\boxed{1,5}", "1, 5", True),
    # A multi-part reference answered in several boxes: the last n boxes, in any order.
    ("So $x = \\boxed{-2}$ or $x = \\boxed{1}$.", "1, -2", True),
    ("\\boxed{1} and \\boxed{-2}", "1, -2", True),
    ("First \\boxed{7}; then the roots are \\boxed{1} and \\boxed{-2}.", "1, -2", True),
    ("\\boxed{1} and \\boxed{3}", "1, -2", False),
    ("\\boxed{1}", "1, -2", False),  # one part of two
    ("\\boxed{1, -2}", "1, -2", True),
    ("\\boxed{-2, 1}", "1, -2", True),
    # A single reference keeps "the last box wins"; a tuple in brackets is one part.
    ("first \\boxed{1} then \\boxed{2}", "2", True),
    ("\\boxed{1} and \\boxed{-2}", "(1, -2)", False),
    # Boxes inside the thinking are not answers.
    ("<think>maybe \\boxed{5}?</think>\nThe answer is \\boxed{6}.", "6", True),
    ("<think>maybe \\boxed{6}?</think>\nThe answer is \\boxed{5}.", "6", False),
    ("<think>so \\boxed{6}, and I keep thinking", "6", False),  # never closed: no answer
    ("the template opened it: \\boxed{6}</think> so \\boxed{7}", "7", True),
]


@pytest.mark.parametrize(("response", "reference", "correct"), CASES)
def test_answer_rules(verifier, response, reference, correct):
    assert judged(verifier, response, reference) is correct


def test_thinking_never_closed_is_no_answer(verifier):
    (verdict,) = verifier.verify_batch(["<think>\\boxed{6}"], ["6"])
    assert verdict.status == "no_answer" and verdict.extracted is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>a</think>b", "b"),
        ("a<think>b", "a"),
        ("<think>a</think>b<think>c</think>d", "d"),
        ("a</think>b", "b"),
        ("no thinking", "no thinking"),
    ],
)
def test_without_thinking(text, expected):
    assert without_thinking(text) == expected


@pytest.mark.parametrize(
    ("answer", "parts"),
    [("1, -2", ["1", "-2"]), ("(1, -2)", ["(1, -2)"]), ("\\{1, 2\\}", ["\\{1, 2\\}"]), ("[0, 1), 3", ["[0, 1)", "3"])],
)
def test_top_level_parts(answer, parts):
    assert top_level_parts(answer) == parts


def test_all_boxed_reads_each_box_once():
    assert all_boxed("\\boxed{1} \\fbox{\\frac{1}{2}} \\boxed 3 \\boxed{\\boxed{4}} \\boxed{}") == [
        "1", "\\frac{1}{2}", "3", "\\boxed{4}", None
    ]
    # an unfinished last box ends the list: nothing after its opening brace is a box
    assert all_boxed("\\boxed{1} \\boxed{2 \\boxed{3}") == ["1", None]


def test_several_boxes_are_joined_only_for_a_multi_part_reference():
    text = "\\boxed{-2} and \\boxed{1}"
    assert extract_answer(text) == "1"
    assert extract_answer(text, parts=2) == "-2, 1"
    assert extract_answer(text, parts=3) == "1"  # fewer boxes than parts: the last box


@pytest.mark.parametrize(("raw", "clean"), [("0,125", "0.125"), ("-0,5", "-0.5"), ("1,000", "1000"), ("1,5", "1,5"), ("0,1,2", "0,1,2")])
def test_commas_in_numbers(raw, clean):
    assert clean_answer(raw) == clean
