"""token_step_spans: which generated tokens each step covers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.segment import split_steps, token_step_spans


def _naive_owner(step_spans, token_offsets):
    """Reference O(T * S): owner step of each token (first step it overlaps), or None."""
    owners = []
    for start, end in token_offsets:
        owner = None
        for k, (step_start, step_end) in enumerate(step_spans):
            if max(start, step_start) < min(end, step_end):
                owner = k
                break
        owners.append(owner)
    return owners


def _check_against_owners(ranges, owners, num_steps):
    """Ranges must cover exactly the owned tokens (plus possibly unowned ones inside them)."""
    assert len(ranges) == num_steps
    previous_end = 0
    for k, (first, end) in enumerate(ranges):
        assert previous_end <= first <= end  # ordered, non-overlapping
        owned = [i for i, owner in enumerate(owners) if owner == k]
        if owned:
            assert (first, end) == (owned[0], owned[-1] + 1)
        else:
            assert first == end
        assert all(owners[i] in (k, None) for i in range(first, end))
        previous_end = end


# (id, step spans, token offsets, expected ranges); derivations in the comments.
TOKEN_CASES = [
    # "ab\n\ncd": steps (0,2) (4,6); tokens a b "\n\n" cd EOS. "\n\n" and EOS own nothing.
    ("basic", [(0, 2), (4, 6)], [(0, 1), (1, 2), (2, 4), (4, 6), (6, 6)], [(0, 2), (3, 4)]),
    # Token 1 "b\n\nc" (1,5) straddles both steps: it goes to the earlier one.
    ("straddling_token_goes_to_earlier_step", [(0, 2), (4, 6)], [(0, 1), (1, 5), (5, 6)], [(0, 2), (2, 3)]),
    # "a中b\n\nc": the two byte-tokens of 中 both carry (1,2); both belong to step 1.
    (
        "overlapping_multibyte_tokens",
        [(0, 3), (5, 6)],
        [(0, 1), (1, 2), (1, 2), (2, 3), (3, 5), (5, 6)],
        [(0, 4), (5, 6)],
    ),
    # Some detokenizers give a partial character zero width: (1,1) owns nothing but sits
    # inside step 1's range.
    ("zero_width_partial_character", [(0, 3)], [(0, 1), (1, 1), (1, 2), (2, 3)], [(0, 4)]),
    # Token 0 covers steps 1 and 2 whole: step 2 owns nothing, gets (1,1) after step 1.
    ("step_owning_no_token", [(0, 2), (4, 5), (7, 9)], [(0, 6), (6, 9)], [(0, 1), (1, 1), (1, 2)]),
    ("no_tokens", [(0, 2), (4, 6)], [], [(0, 0), (0, 0)]),
    ("no_steps", [], [(0, 1), (1, 2)], []),
    # Leading whitespace token (0,2) before step 1 at (2,4) owns nothing.
    ("leading_whitespace_token", [(2, 4)], [(0, 2), (2, 4)], [(1, 2)]),
    # Tokens after the last step (trailing newline, EOS, padding-like zero-width) own nothing.
    ("tokens_after_last_step", [(0, 2)], [(0, 2), (2, 3), (3, 3), (0, 0)], [(0, 1)]),
    # A zero-width step covers no character, so it owns no token even one spanning it.
    ("zero_width_step", [(0, 2), (3, 3), (3, 5)], [(0, 2), (2, 5)], [(0, 1), (1, 1), (1, 2)]),
]


@pytest.mark.parametrize(
    "steps, offsets, expected", [case[1:] for case in TOKEN_CASES], ids=[case[0] for case in TOKEN_CASES]
)
def test_token_step_spans_cases(steps, offsets, expected):
    ranges = token_step_spans(steps, offsets)
    assert ranges == expected
    _check_against_owners(ranges, _naive_owner(steps, offsets), len(steps))


@pytest.mark.parametrize(
    "steps, offsets, message",
    [
        ([(2, 4), (0, 1)], [], "in order"),
        ([(0, 3), (2, 5)], [], "in order"),
        ([(3, 1)], [], "valid"),
        ([(-1, 1)], [], "valid"),
        ([(0, 4)], [(2, 3), (0, 1)], "non-decreasing"),
        ([(0, 4)], [(2, 1)], "invalid offsets"),
        ([(0, 4)], [(-1, 1)], ">= 0"),
        ([(0, 4)], [(-1, -1)], "invalid offsets"),
    ],
)
def test_token_step_spans_rejects_bad_input(steps, offsets, message):
    with pytest.raises(ValueError, match=message):
        token_step_spans(steps, offsets)


@st.composite
def _tokenized_response(draw):
    """A response, its steps, and a random tokenization with duplicated (multi-byte) and
    zero-width tokens, the way incremental detokenization can report them."""
    response = draw(st.text(alphabet="ab \n", max_size=40))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(response)), max_size=20))) | {0, len(response)})
    offsets = []
    for start, end in zip(cuts, cuts[1:]):
        offsets.append((start, end))
        extra = draw(st.sampled_from(["none", "duplicate", "zero_width"]))
        if extra == "duplicate":
            offsets.append((start, end))
        elif extra == "zero_width":
            offsets.append((end, end))
    return split_steps(response), offsets


@settings(max_examples=300, deadline=None)
@given(_tokenized_response())
def test_token_step_spans_matches_naive_reference(case):
    steps, offsets = case
    ranges = token_step_spans(steps, offsets)
    _check_against_owners(ranges, _naive_owner(steps, offsets), len(steps))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_token_step_spans_with_straddling_tokens(data):
    # Wide tokens that cross step boundaries: ownership still follows "first step overlapped".
    steps = split_steps(data.draw(st.text(alphabet="ab\n", max_size=30)))
    length = steps[-1][1] + 2 if steps else 3
    starts = sorted(data.draw(st.lists(st.integers(0, length), max_size=12)))
    offsets = [(start, start + data.draw(st.integers(0, 8))) for start in starts]
    ranges = token_step_spans(steps, offsets)
    _check_against_owners(ranges, _naive_owner(steps, offsets), len(steps))
