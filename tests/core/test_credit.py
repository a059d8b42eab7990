"""token_rewards: outcome credit plus step penalties on one response's tokens."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.credit import token_rewards

# 7 tokens: step 1 = tokens 0..1, a blank-line token 2, step 2 = tokens 3..4, step 3 = 5, EOS 6.
SPANS = [(0, 2), (3, 5), (5, 6)]


def test_correct_and_clean_is_w_whole_everywhere():
    assert token_rewards(True, SPANS, [0.0, 0.0, 0.0], 7).tolist() == [2.0] * 7


def test_correct_with_flawed_step():
    # Step 2 voted wrong: its tokens 3, 4 get 2 - 1 = 1; the rest keep the outcome 2.
    assert token_rewards(True, SPANS, [0.0, 1.0, 0.0], 7).tolist() == [2, 2, 2, 1, 1, 2, 2]


def test_wrong_answer_with_flawed_steps():
    # Outcome 0; steps 1 and 3 wrong: -1 on tokens 0, 1 and 5.
    assert token_rewards(False, SPANS, [1.0, 0.0, 1.0], 7).tolist() == [-1, -1, 0, 0, 0, -1, 0]


def test_average_vote_scales_penalty_and_weights_apply():
    # w_whole = 1, w_process = 0.5; penalties 0.5 and 0.25 on steps 1, 2:
    # step 1 tokens: 1 - 0.5 * 0.5 = 0.75; step 2 tokens: 1 - 0.5 * 0.25 = 0.875.
    rewards = token_rewards(True, SPANS, [0.5, 0.25, 0.0], 7, w_whole=1.0, w_process=0.5)
    assert rewards.tolist() == [0.75, 0.75, 1.0, 0.875, 0.875, 1.0, 1.0]


def test_no_valid_critique_gives_outcome_credit_alone():
    assert token_rewards(True, SPANS, None, 7).tolist() == [2.0] * 7
    assert token_rewards(False, SPANS, None, 7).tolist() == [0.0] * 7


def test_dtype_and_shape():
    rewards = token_rewards(True, [], [], 5)
    assert rewards.dtype == torch.float32 and rewards.shape == (5,)
    assert token_rewards(False, [(0, 0)], [1.0], 0).shape == (0,)


@pytest.mark.parametrize(
    "spans, penalty, num_tokens, message",
    [
        ([(0, 8)], [1.0], 7, "out of range"),
        ([(-1, 2)], [1.0], 7, "out of range"),
        ([(3, 2)], [1.0], 7, "out of range"),
        ([(0, 3), (2, 5)], [1.0, 1.0], 7, "overlap"),
        ([(3, 5), (0, 2)], [1.0, 1.0], 7, "overlap"),
        ([(0, 2), (3, 5)], [1.0], 7, "one penalty per step"),
        ([(0, 2)], [1.0], -1, "num_tokens"),
    ],
)
def test_bad_input_raises(spans, penalty, num_tokens, message):
    with pytest.raises(ValueError, match=message):
        token_rewards(True, spans, penalty, num_tokens)


@st.composite
def _credit_case(draw):
    num_tokens = draw(st.integers(0, 40))
    cuts = sorted(draw(st.lists(st.integers(0, num_tokens), max_size=10)))
    spans = list(zip(cuts[::2], cuts[1::2]))  # ordered, disjoint, possibly empty
    penalty = draw(st.lists(st.floats(0, 1), min_size=len(spans), max_size=len(spans)))
    return draw(st.booleans()), spans, penalty, num_tokens


@settings(max_examples=300, deadline=None)
@given(_credit_case(), st.floats(0, 5), st.floats(0, 5))
def test_credit_is_outcome_outside_steps_and_penalized_inside(case, w_whole, w_process):
    correct, spans, penalty, num_tokens = case
    rewards = token_rewards(correct, spans, penalty, num_tokens, w_whole=w_whole, w_process=w_process)
    outcome = torch.tensor(w_whole if correct else 0.0, dtype=torch.float32)
    inside = torch.zeros(num_tokens, dtype=torch.bool)
    for (first, end), weight in zip(spans, penalty):
        inside[first:end] = True
        expected = outcome - torch.tensor(w_process * weight, dtype=torch.float32)
        torch.testing.assert_close(rewards[first:end], expected.expand(end - first))
    assert torch.equal(rewards[~inside], outcome.expand(int((~inside).sum())))


def test_explain_wrong_answer_flags_the_last_step_only_when_nothing_explains_the_error():
    from capo_ray.core.credit import explain_wrong_answer

    assert explain_wrong_answer(False, [0.0, 0.0, 0.0]) == [0.0, 0.0, 1.0]
    assert explain_wrong_answer(False, [0.0, 0.5, 0.0]) == [0.0, 0.5, 0.0]  # already explained
    assert explain_wrong_answer(True, [0.0, 0.0]) == [0.0, 0.0]  # a right answer keeps its votes
    assert explain_wrong_answer(False, None) is None  # abstained: outcome credit only
    assert explain_wrong_answer(False, []) == []  # no step to flag
    rewards = token_rewards(False, [(0, 2), (2, 4)], explain_wrong_answer(False, [0.0, 0.0]), 5)
    assert rewards.tolist() == [0.0, 0.0, -1.0, -1.0, 0.0]
