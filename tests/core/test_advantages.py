"""CAPO group-normalized token advantages and the GRPO baseline."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.advantages import (
    ADVANTAGE_ESTIMATORS,
    compute_advantages,
    group_advantages,
    grpo_advantages,
)

EPS = 1e-6


def test_capo_hand_computed_full_mask():
    # One group, tokens 2, 2, 0, 0: mean 1, population std 1 -> A = +-1 (up to eps).
    rewards = torch.tensor([[2.0, 2.0], [0.0, 0.0]])
    adv = group_advantages(rewards, torch.ones(2, 2), torch.tensor([0, 0]), eps=EPS)
    torch.testing.assert_close(adv, torch.tensor([[1.0, 1.0], [-1.0, -1.0]]) / (1 + EPS))


def test_capo_hand_computed_partial_mask():
    # Masked-in tokens 2, 2, 0: mean 4/3; deviations 2/3, 2/3, -4/3;
    # var = (4/9 + 4/9 + 16/9) / 3 = 8/9 (population); std = sqrt(8)/3 ~ 0.9428.
    # A = (2/3) / 0.9428 = 0.7071 and (-4/3) / 0.9428 = -1.4142; 0 on the masked-out token
    # (whose reward 5 must not leak into the statistics).
    rewards = torch.tensor([[2.0, 2.0], [0.0, 5.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    adv = group_advantages(rewards, mask, torch.tensor([0, 0]), eps=0.0 + 1e-12)
    half_sqrt2 = math.sqrt(2) / 2
    torch.testing.assert_close(adv, torch.tensor([[half_sqrt2, half_sqrt2], [-math.sqrt(2), 0.0]]))


def test_capo_without_scaling_only_centers():
    # Same data: R - 4/3 on the masked-in tokens.
    rewards = torch.tensor([[2.0, 2.0], [0.0, 5.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    adv = group_advantages(rewards, mask, torch.tensor([0, 0]), scale=False)
    torch.testing.assert_close(adv, torch.tensor([[2 / 3, 2 / 3], [-4 / 3, 0.0]]))


def test_groups_are_independent_and_ids_need_not_be_contiguous():
    # Rows 0, 2 form group 7 (tokens 1, 3: mean 2, std 1); rows 1, 3 form group 3
    # (tokens 10, 10: std 0 -> A = 0 / (0 + eps) = 0).
    rewards = torch.tensor([[1.0], [10.0], [3.0], [10.0]])
    adv = group_advantages(rewards, torch.ones(4, 1), torch.tensor([7, 3, 7, 3]), eps=EPS)
    expected = torch.tensor([[-1 / (1 + EPS)], [0.0], [1 / (1 + EPS)], [0.0]])
    torch.testing.assert_close(adv, expected)


def test_grpo_hand_computed_uses_per_response_means():
    # Response scores: mean of [1, 1, 1] = 1 and of [0] (one masked-in token) = 0.
    # Over 2 responses: mean 0.5, population std 0.5 -> A = +1 on row 0's tokens, -1 on row 1's.
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    adv = grpo_advantages(rewards, mask, torch.tensor([0, 0]), eps=1e-12)
    torch.testing.assert_close(adv, torch.tensor([[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]]))
    # CAPO on the same data weighs tokens: 1, 1, 1, 0 -> mean 0.75, std sqrt(3)/4 ~ 0.433,
    # so A = 0.25 / 0.433 = 0.5774 and -0.75 / 0.433 = -1.7321: the two estimators differ
    # once lengths differ.
    capo = group_advantages(rewards, mask, torch.tensor([0, 0]), eps=1e-12)
    torch.testing.assert_close(capo, torch.tensor([[1 / math.sqrt(3)] * 3, [-math.sqrt(3), 0.0, 0.0]]))


def test_grpo_ignores_responses_without_tokens():
    # Row 2 has no masked-in token: it must not pull the group's mean towards its score 0.
    rewards = torch.tensor([[1.0], [0.0], [0.0]])
    mask = torch.tensor([[1], [1], [0]])
    adv = grpo_advantages(rewards, mask, torch.tensor([0, 0, 0]), eps=1e-12)
    torch.testing.assert_close(adv, torch.tensor([[1.0], [-1.0], [0.0]]))


def test_outcome_only_equal_lengths_capo_equals_grpo():
    # Same per-token reward along each response and equal lengths: the token-weighted and
    # the response-weighted statistics coincide (both population std, see module docstring).
    outcome = torch.tensor([2.0, 0.0, 2.0, 2.0, 0.0, 0.0])
    rewards = outcome.unsqueeze(1).expand(6, 5).clone()
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    mask = torch.ones(6, 5)
    capo = group_advantages(rewards, mask, groups)
    torch.testing.assert_close(capo, grpo_advantages(rewards, mask, groups))


def test_registry_dispatch_and_unknown_name():
    assert set(ADVANTAGE_ESTIMATORS) == {"capo", "grpo"}
    rewards, mask, groups = torch.tensor([[1.0, 0.0]]), torch.ones(1, 2), torch.tensor([0])
    dispatched = compute_advantages("capo", rewards, mask, groups)
    torch.testing.assert_close(dispatched, group_advantages(rewards, mask, groups))
    with pytest.raises(ValueError, match="capo.*grpo"):
        compute_advantages("ppo", rewards, mask, groups)


@pytest.mark.parametrize("estimator", [group_advantages, grpo_advantages])
@pytest.mark.parametrize(
    "rewards, mask, groups, message",
    [
        (torch.zeros(2, 3), torch.ones(2, 4), torch.zeros(2, dtype=torch.long), "mask has shape"),
        (torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(3, dtype=torch.long), "group_ids"),
        (torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2), "integer"),
        (torch.zeros(6), torch.ones(6), torch.zeros(1, dtype=torch.long), r"\[B, T\]"),
        (torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3), torch.zeros(2, dtype=torch.long), "floating"),
    ],
)
def test_bad_shapes_raise(estimator, rewards, mask, groups, message):
    with pytest.raises(ValueError, match=message):
        estimator(rewards, mask, groups)


def test_empty_batch():
    empty = torch.zeros(0, 4)
    assert group_advantages(empty, empty, torch.zeros(0, dtype=torch.long)).shape == (0, 4)
    assert grpo_advantages(empty, empty, torch.zeros(0, dtype=torch.long)).shape == (0, 4)


@st.composite
def _batch(draw):
    num_groups = draw(st.integers(1, 4))
    group_size = draw(st.integers(1, 5))
    length = draw(st.integers(1, 8))
    batch = num_groups * group_size
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randint(-1, 3, (batch, length), generator=gen).float()  # CAPO's values -1..2
    mask = (torch.rand(batch, length, generator=gen) < 0.7).float()
    groups = torch.arange(num_groups).repeat_interleave(group_size)[torch.randperm(batch, generator=gen)]
    return rewards, mask, groups


@settings(max_examples=150, deadline=None)
@given(_batch(), st.booleans())
def test_capo_group_sums_vanish_and_mask_holds(batch, scale):
    rewards, mask, groups = batch
    adv = group_advantages(rewards, mask, groups, scale=scale)
    assert torch.all(adv[mask == 0] == 0)
    sums = torch.zeros(int(groups.max()) + 1).index_add_(0, groups, (adv * mask).sum(dim=1))
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-4, rtol=0)
    # Affine invariance with scaling: the critic's reward units do not matter.
    if scale:
        torch.testing.assert_close(group_advantages(3 * rewards + 7, mask, groups), adv, atol=1e-3, rtol=1e-3)


@settings(max_examples=150, deadline=None)
@given(_batch(), st.booleans())
def test_grpo_response_scores_vanish_per_group(batch, scale):
    rewards, mask, groups = batch
    adv = grpo_advantages(rewards, mask, groups, scale=scale)
    assert torch.all(adv[mask == 0] == 0)
    # Each present response carries one value on all its tokens; those values sum to ~0.
    count = mask.sum(dim=1)
    per_response = (adv * mask).sum(dim=1) / count.clamp(min=1)
    sums = torch.zeros(int(groups.max()) + 1).index_add_(0, groups, per_response)
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-4, rtol=0)
