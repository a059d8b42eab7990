"""split_steps: where the reasoning steps of a response are."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.segment import split_steps

# (id, response, expected step texts). Each is a segmentation case worth keeping.
SPLIT_CASES = [
    ("empty", "", []),
    ("all_space", "  \n\t \n  ", []),
    ("one_line", "x = 2", ["x = 2"]),
    ("surrounding_space_stripped", "  x = 2 \n", ["x = 2"]),
    ("blank_line", "a\n\nb", ["a", "b"]),
    ("blank_line_holding_spaces", "a\n   \t\nb", ["a", "b"]),
    ("crlf_blank_line", "a\r\n\r\nb", ["a", "b"]),
    ("several_blank_lines_one_separator", "a\n\n\n\n\nb", ["a", "b"]),
    ("blank_lines_keep_single_newlines_inside", "a\nb\n\nc", ["a\nb", "c"]),
    ("no_blank_line_splits_on_newlines", "a\nb\nc", ["a", "b", "c"]),
    ("no_blank_line_drops_space_only_lines", "a\n \nb", ["a", "b"]),  # " " line IS blank
    ("edge_blank_lines_do_not_count", "\n\na\nb\n\n", ["a", "b"]),
    ("trailing_spaces_inside_steps", "a  \n\n  b", ["a", "b"]),
    ("nbsp_is_whitespace", "a\u00a0\n\u00a0\nb", ["a", "b"]),
    ("unicode_text", "é = 1\n\n中文 = 2", ["é = 1", "中文 = 2"]),
    ("tab_only_line", "step one\n\t\nstep two\nstill two", ["step one", "step two\nstill two"]),
    (
        "typical_response",
        "First, 3 * 4 = 12.\n\nThen 12 + 1 = 13.\n\nThe answer is \\boxed{13}.",
        ["First, 3 * 4 = 12.", "Then 12 + 1 = 13.", "The answer is \\boxed{13}."],
    ),
]


@pytest.mark.parametrize(
    "response, expected", [case[1:] for case in SPLIT_CASES], ids=[case[0] for case in SPLIT_CASES]
)
def test_split_steps_cases(response, expected):
    spans = split_steps(response)
    assert [response[a:b] for a, b in spans] == expected


def test_split_steps_spans_are_character_offsets():
    # "  ab\n\ncd": step 1 "ab" sits at 2..4 (after two spaces), step 2 "cd" at 6..8.
    assert split_steps("  ab\n\ncd") == [(2, 4), (6, 8)]


def test_split_steps_rejects_non_str():
    with pytest.raises(ValueError, match="str"):
        split_steps(None)  # type: ignore[arg-type]


_TEXT = st.text(alphabet="ab \t\n\r\u00a0", max_size=60)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_split_steps_properties(response):
    spans = split_steps(response)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(response)  # ordered, disjoint, non-empty
        step = response[start:end]
        assert step == step.strip()  # no surrounding whitespace
        previous_end = end
    # Every non-space character lands in exactly one step: segmentation loses no content.
    covered = {i for start, end in spans for i in range(start, end)}
    assert {i for i, char in enumerate(response) if not char.isspace()} <= covered
    # Whitespace outside the content never changes the steps (only shifts their offsets).
    shifted = split_steps(" \n\n" + response + "\n\n ")
    assert [(a - 3, b - 3) for a, b in shifted] == spans


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab \n", min_size=1, max_size=12).map(str.strip), min_size=2, max_size=6))
def test_steps_joined_by_blank_lines_split_back(steps):
    # Steps without blank lines inside, joined by blank lines, must come back unchanged.
    steps = [step for step in steps if step and not re.search(r"\n[^\S\n]*\n", step)]
    if len(steps) < 2:
        return
    response = "\n\n".join(steps)
    assert [response[a:b] for a, b in split_steps(response)] == steps
