"""parse_critique: every verdict shape a critic has produced or might, as a fixture.

A new parser bug found in the field goes into PARSE_CASES with the text that triggered it.
Expected None means "abstain": the critique takes no part in the vote.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.critique import parse_critique

F = frozenset

# (id, critique text, num_steps, expected)
PARSE_CASES = [
    # --- the canonical verdict ---
    ("canonical", "Step 1 ok.\nStep 2 wrong.\nWrong step list: [2]", 3, F({2})),
    ("canonical_several", "Wrong step list: [1, 3]", 3, F({1, 3})),
    ("canonical_empty", "All steps are right.\nWrong step list: []", 3, F()),
    ("empty_brackets_with_space", "Wrong step list: [ ]", 3, F()),
    ("no_space_after_colon", "Wrong step list:[2,3]", 3, F({2, 3})),
    ("spaces_inside_brackets", "Wrong step list: [ 1 ,3 ]", 3, F({1, 3})),
    # --- case and emphasis ---
    ("lower_case", "wrong step list: [1]", 3, F({1})),
    ("upper_case", "WRONG STEP LIST: [1]", 3, F({1})),
    ("bold_label_colon_inside", "**Wrong step list:** [1]", 3, F({1})),
    ("bold_label_colon_outside", "**Wrong step list**: [1, 2]", 3, F({1, 2})),
    ("bold_whole_line", "**Wrong step list: [3]**", 3, F({3})),
    ("italic_underscore", "_Wrong step list:_ [2]", 3, F({2})),
    ("inline_code", "`Wrong step list: [2]`", 3, F({2})),
    ("heading_and_bullet", "### Verdict\n- Wrong step list: [1]", 3, F({1})),
    ("after_other_words", "Final verdict: Wrong step list: [2]", 3, F({2})),
    # --- keyword variants ---
    ("steps_without_list", "Wrong steps: 1, 3", 3, F({1, 3})),
    ("step_without_list", "Wrong step: 2", 3, F({2})),
    ("steps_list", "Wrong steps list: [2]", 3, F({2})),
    ("equals_separator", "Wrong step list = [2]", 3, F({2})),
    ("bracket_without_colon", "Wrong step list [2]", 3, F({2})),
    ("fullwidth_colon", "Wrong step list\uff1a [2]", 3, F({2})),
    # --- bare lists ---
    ("bare_list", "Wrong step list: 1, 3", 3, F({1, 3})),
    ("bare_single", "Wrong steps: 2", 3, F({2})),
    ("bare_trailing_period", "Wrong steps: 1, 3.", 3, F({1, 3})),
    ("bare_with_and", "Wrong steps: 1 and 3", 3, F({1, 3})),
    ("bare_with_oxford_and", "Wrong steps: 1, 2, and 3", 3, F({1, 2, 3})),
    ("semicolons", "Wrong step list: [1; 3]", 3, F({1, 3})),
    ("bare_bold_list", "Wrong steps: **2**", 3, F({2})),
    # --- "none" ---
    ("none_word", "Wrong step list: none", 3, F()),
    ("none_capitalized_period", "Wrong step list: None.", 3, F()),
    ("none_in_brackets", "Wrong step list: [None]", 3, F()),
    ("empty_word", "Wrong steps: empty", 3, F()),
    # --- decided behaviours ---
    # "Step N" items: the critic restating step names is unambiguous, so accept.
    ("step_tokens_in_list", "Wrong step list: [Step 1, Step 3]", 3, F({1, 3})),
    ("step_tokens_bare", "Wrong steps: step 2 and step 3", 3, F({2, 3})),
    ("hash_numbers", "Wrong step list: [#2]", 3, F({2})),
    ("duplicates_collapse", "Wrong step list: [1, 1, 3, 3]", 3, F({1, 3})),
    ("trailing_comma", "Wrong step list: [1, 3,]", 3, F({1, 3})),
    ("leading_zero", "Wrong step list: [02]", 3, F({2})),
    ("trailing_period_after_bracket", "Wrong step list: [2].", 3, F({2})),
    # Text after a closed bracket on the same line is ignored: the bracket delimits the list.
    ("text_after_bracket", "Wrong step list: [2] (step 2 drops a sign)", 3, F({2})),
    ("second_bracket_ignored", "Wrong step list: [1], [3]", 3, F({1})),
    ("list_on_next_line", "**Wrong step list:**\n[1, 3]", 3, F({1, 3})),
    ("list_wraps_lines", "Wrong step list: [1,\n 3]", 3, F({1, 3})),
    # The last verdict line counts, even with prose on later lines.
    ("last_verdict_wins", "Wrong step list: [1]\nOn reflection:\nWrong step list: [2]", 3, F({2})),
    ("last_verdict_wins_when_empty", "Wrong step list: [1, 2]\nWrong step list: []", 3, F()),
    ("trailing_text_after_verdict", "Wrong step list: [2]\n\nThat concludes my review.", 3, F({2})),
    ("two_verdicts_one_line", "Wrong step list: [1] -> corrected Wrong step list: [3]", 3, F({3})),
    ("zero_steps_empty", "Wrong step list: []", 0, F()),
    # --- abstain (None) ---
    ("no_verdict", "Step 1 is fine. Step 2 is wrong.", 3, None),
    ("empty_text", "", 3, None),
    ("prompt_echo_placeholder", "Wrong step list: [i, j, ...]", 3, None),
    ("keyword_then_nothing", "Analysis done.\nWrong step list:", 3, None),
    ("keyword_then_blank_then_prose", "Wrong step list:\n\nStep 1 is right.", 3, None),
    ("out_of_range_high", "Wrong step list: [4]", 3, None),
    ("out_of_range_zero", "Wrong step list: [0]", 3, None),
    ("any_out_of_range_invalidates", "Wrong step list: [1, 7]", 3, None),
    ("huge_number", "Wrong step list: [99999999999999999999]", 3, None),
    ("enormous_number", "Wrong step list: [" + "9" * 5000 + "]", 3, None),
    ("negative", "Wrong step list: [-1]", 3, None),
    ("decimal", "Wrong step list: [1.5]", 3, None),
    ("range_not_supported", "Wrong step list: [1-3]", 3, None),
    ("unclosed_bracket", "Wrong step list: [1, 3", 3, None),
    ("nested_brackets", "Wrong step list: [[1, 3]]", 3, None),
    ("prose_list", "Wrong steps: the second one", 3, None),
    ("space_separated", "Wrong steps: 1 3", 3, None),
    ("non_ascii_digits", "Wrong step list: [\u0662]", 3, None),  # Arabic-Indic 2
    ("any_step_with_zero_steps", "Wrong step list: [1]", 0, None),
    # A verdict-like phrase in prose after the real verdict also counts as last: abstain
    # rather than guess which one the critic meant.
    ("later_prose_verdict_unreadable", "Wrong step list: [2]\nNote: wrong steps: see above", 3, None),
    # Without a separator, "wrong steps" in prose is not a verdict.
    ("prose_mention_is_not_verdict", "Wrong step list: [2]\nThere are no other wrong steps.", 3, F({2})),
    ("wrongful_is_not_keyword", "Wrongsteps: [1]", 3, None),
    ("non_str_none", None, 3, None),
    ("non_str_bytes", b"Wrong step list: [1]", 3, None),
]


@pytest.mark.parametrize(
    "text, num_steps, expected", [case[1:] for case in PARSE_CASES], ids=[case[0] for case in PARSE_CASES]
)
def test_parse_critique_cases(text, num_steps, expected):
    assert parse_critique(text, num_steps) == expected


def test_case_ids_are_unique():
    ids = [case[0] for case in PARSE_CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("num_steps", [-1, 1.0, True, None])
def test_parse_critique_rejects_bad_num_steps(num_steps):
    # num_steps comes from our own code, not the critic: a bad one is a bug, so it raises.
    with pytest.raises(ValueError, match="num_steps"):
        parse_critique("Wrong step list: []", num_steps)


_VERDICTISH = st.lists(
    st.sampled_from(
        ["Wrong", "wrong", "step", "steps", "list", ":", "[", "]", ",", " ", "\n", "*", "_", "none", "and",
         "Step", "#", "0", "1", "3", "99999999999999999999", "-", ".", "=", "\uff1a", "\u0663"]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), _VERDICTISH), st.integers(0, 12))
def test_parse_critique_never_raises_and_stays_in_range(text, num_steps):
    result = parse_critique(text, num_steps)
    assert result is None or (isinstance(result, frozenset) and all(1 <= s <= num_steps for s in result))


@settings(max_examples=200, deadline=None)
@given(
    st.frozensets(st.integers(1, 9)),
    st.text(alphabet="abc .\n", max_size=40),
    st.sampled_from(["", "\n", "\nThanks."]),
)
def test_verdict_after_any_prose_is_read(wrong, prose, tail):
    # Prose without the keyword never disturbs the verdict that follows it.
    text = f"{prose}\nWrong step list: [{', '.join(map(str, sorted(wrong)))}]{tail}"
    assert parse_critique(text, 9) == wrong
