"""build_critique_prompt / build_critique_messages / format_verdict."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.critique import (
    VERDICT_PREFIX,
    build_critique_messages,
    build_critique_prompt,
    format_verdict,
    parse_critique,
)

STEPS = ["3 * 4 = 12.", "12 + 1 = 14.", "So the answer is 14."]


def test_prompt_numbers_steps_from_one_in_order():
    prompt = build_critique_prompt("What is 3 * 4 + 1?", STEPS, "13")
    positions = [prompt.index(f"Step {k}: {step}") for k, step in enumerate(STEPS, start=1)]
    assert positions == sorted(positions)
    assert "Step 0" not in prompt and "Step 4:" not in prompt


def test_prompt_shows_problem_reference_and_verdict_format():
    prompt = build_critique_prompt("What is 3 * 4 + 1?", STEPS, "13")
    assert "What is 3 * 4 + 1?" in prompt
    assert "13" in prompt.split("## Solution")[0]  # the reference answer comes before the steps
    assert f"{VERDICT_PREFIX} [" in prompt and f"{VERDICT_PREFIX} []" in prompt
    assert "own correctness" in prompt


def test_prompt_without_reference_answer_has_no_reference_section():
    prompt = build_critique_prompt("What is 3 * 4 + 1?", STEPS, None)
    assert "Reference answer" not in prompt
    assert "Step 3: So the answer is 14." in prompt


def test_messages_carry_the_same_content_as_the_prompt():
    messages = build_critique_messages("What is 3 * 4 + 1?", STEPS, "13")
    assert [message["role"] for message in messages] == ["system", "user"]
    joined = "\n\n".join(message["content"] for message in messages)
    assert joined == build_critique_prompt("What is 3 * 4 + 1?", STEPS, "13")


def test_prompt_rejects_a_string_as_steps():
    # A str is a sequence of characters: numbering them would be a silent bug.
    with pytest.raises(ValueError, match="steps"):
        build_critique_prompt("q", "one step", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "steps, expected",
    [
        ([1, 3], "Wrong step list: [1, 3]"),
        ([], "Wrong step list: []"),
        ([3, 1, 3], "Wrong step list: [1, 3]"),  # sorted, duplicates collapse
        (iter([2]), "Wrong step list: [2]"),
        (frozenset({10, 2}), "Wrong step list: [2, 10]"),  # numeric, not string, order
    ],
)
def test_format_verdict(steps, expected):
    assert format_verdict(steps) == expected


@pytest.mark.parametrize("bad", [[0], [-1], [1.0], [True], ["1"]])
def test_format_verdict_rejects_non_step_numbers(bad):
    with pytest.raises(ValueError, match="1-based"):
        format_verdict(bad)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40).flatmap(lambda n: st.tuples(st.just(n), st.frozensets(st.integers(1, max(n, 1))))))
def test_format_verdict_round_trips_through_parser(case):
    num_steps, wrong = case
    if num_steps == 0:
        wrong = frozenset()
    text = f"Step 1 looks fine.\n{format_verdict(wrong)}"
    assert parse_critique(text, num_steps) == wrong
