"""PPO clipped surrogate, k3 KL, aggregation and the combined policy loss."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from capo_ray.core.losses import LOSS_AGGREGATIONS, aggregate, kl_k3, policy_loss, ppo_clip_loss

# --- aggregate -----------------------------------------------------------------------------

VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize(
    "mode, expected",
    [
        # masked tokens 1, 2, 3, 4: sum 10 / 4 tokens
        ("token_mean", 10 / 4),
        # row means 2 and 4 (row 3 has no token and is skipped): (2 + 4) / 2
        ("seq_mean_token_mean", 3.0),
        # row sums 6 and 4 over the 2 rows with tokens: 10 / 2
        ("seq_mean_token_sum", 5.0),
    ],
)
def test_aggregate_hand_computed(mode, expected):
    assert aggregate(VALUES, MASK, mode).item() == pytest.approx(expected)


@pytest.mark.parametrize("mode", sorted(LOSS_AGGREGATIONS))
def test_aggregate_empty_mask_is_zero_not_nan(mode):
    values = torch.ones(2, 3, requires_grad=True)
    result = aggregate(values, torch.zeros(2, 3), mode)
    assert result.item() == 0.0
    result.backward()
    assert torch.all(values.grad == 0)


def test_aggregate_unknown_mode_lists_valid_modes():
    with pytest.raises(ValueError, match="seq_mean_token_mean.*seq_mean_token_sum.*token_mean"):
        aggregate(VALUES, MASK, "sum")


def test_aggregate_shape_mismatch():
    with pytest.raises(ValueError, match="mask has shape"):
        aggregate(VALUES, MASK[:, :2], "token_mean")


# --- ppo_clip_loss -------------------------------------------------------------------------


def _four_token_case():
    # Ratios 1.5, 0.5, 1.5, 0.5 with A = +1, +1, -1, -1 and clip 0.2 (range [0.8, 1.2]):
    #   r=1.5, A=+1: min(1.5, 1.2)   = 1.2  -> clipped, loss -1.2, grad 0
    #   r=0.5, A=+1: min(0.5, 0.8)   = 0.5  -> unclipped, loss -0.5, dloss/dlogp = -r*A = -0.5
    #   r=1.5, A=-1: min(-1.5, -1.2) = -1.5 -> unclipped, loss 1.5, dloss/dlogp = -r*A = 1.5
    #   r=0.5, A=-1: min(-0.5, -0.8) = -0.8 -> clipped, loss 0.8, grad 0
    # token_mean: (-1.2 - 0.5 + 1.5 + 0.8) / 4 = 0.15; gradients divided by 4 as well.
    old = torch.zeros(1, 4)
    logprobs = torch.log(torch.tensor([[1.5, 0.5, 1.5, 0.5]])).requires_grad_(True)
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    return logprobs, old, advantages, torch.ones(1, 4)


def test_ppo_clip_hand_computed_loss_and_gradient():
    logprobs, old, advantages, mask = _four_token_case()
    loss, stats = ppo_clip_loss(logprobs, old, advantages, mask)
    assert loss.item() == pytest.approx(0.15, abs=1e-6)
    loss.backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[0.0, -0.5, 1.5, 0.0]]) / 4)
    assert stats["clip_frac"].item() == pytest.approx(0.5)  # tokens 0 and 3
    assert stats["ratio_mean"].item() == pytest.approx(1.0)  # (1.5 + 0.5 + 1.5 + 0.5) / 4
    # approx_kl = mean(old - new) = -(2 ln 1.5 + 2 ln 0.5) / 4 = -ln(0.75) / 2 ~ 0.1438
    assert stats["approx_kl"].item() == pytest.approx(-math.log(0.75) / 2, abs=1e-6)
    assert not any(value.requires_grad for value in stats.values())


def test_asymmetric_clip_high():
    # clip_high 0.6: r = 1.5 is inside [0.8, 1.6], so token 0 is no longer clipped:
    # (-1.5 - 0.5 + 1.5 + 0.8) / 4 = 0.075.
    logprobs, old, advantages, mask = _four_token_case()
    loss, stats = ppo_clip_loss(logprobs, old, advantages, mask, clip_low=0.2, clip_high=0.6)
    assert loss.item() == pytest.approx(0.075, abs=1e-6)
    assert stats["clip_frac"].item() == pytest.approx(0.25)


def test_on_policy_loss_is_minus_mean_advantage():
    # ratio = 1 everywhere: loss = -mean(A) = -(0.5 - 1 + 2) / 3 = -0.5, grad = -A / 3.
    logprobs = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    advantages = torch.tensor([[0.5, -1.0, 2.0]])
    loss, stats = ppo_clip_loss(logprobs, logprobs.detach(), advantages, torch.ones(1, 3))
    assert loss.item() == pytest.approx(-0.5)
    loss.backward()
    torch.testing.assert_close(logprobs.grad, -advantages / 3)
    assert stats["clip_frac"].item() == 0.0


def test_masked_positions_with_garbage_stay_finite_and_get_no_gradient():
    # Padding positions may hold any log probs; exp(1e4) would be inf and inf * 0 = NaN.
    logprobs = torch.tensor([[-1.0, 1e4], [-2.0, -1e4]], requires_grad=True)
    old = torch.tensor([[-1.0, -1e4], [-2.0, 1e4]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss, stats = policy_loss(logprobs, old, old, torch.ones(2, 2), mask, 0.2, 0.2, 0.1, "token_mean")
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in stats.values())
    assert torch.all(torch.isfinite(logprobs.grad)) and torch.all(logprobs.grad[:, 1] == 0)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(sorted(LOSS_AGGREGATIONS)))
def test_clipped_tokens_get_no_gradient(seed, agg):
    gen = torch.Generator().manual_seed(seed)
    old = torch.randn(3, 5, generator=gen)
    logprobs = (old + 0.5 * torch.randn(3, 5, generator=gen)).requires_grad_(True)
    advantages = torch.randn(3, 5, generator=gen)
    mask = (torch.rand(3, 5, generator=gen) < 0.8).float()
    loss, _ = ppo_clip_loss(logprobs, old, advantages, mask, agg=agg)
    loss.backward()
    ratio = torch.exp(logprobs.detach() - old)
    # The clipped branch is active when the ratio left the trust region in the direction the
    # advantage pushes; there the surrogate is flat.
    clipped = ((advantages > 0) & (ratio > 1.2)) | ((advantages < 0) & (ratio < 0.8))
    assert torch.all(logprobs.grad[clipped | (mask == 0)] == 0)
    assert torch.all(logprobs.grad[~clipped & (mask == 1) & (advantages != 0)] != 0)


def test_bad_clip_and_shapes():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="clip_low"):
        ppo_clip_loss(x, x, x, x, clip_low=1.0)
    with pytest.raises(ValueError, match="advantages has shape"):
        ppo_clip_loss(x, x, torch.zeros(2, 4), x)


# --- kl_k3 and policy_loss -----------------------------------------------------------------


def test_kl_k3_hand_computed():
    # d = ref - logp = ln 2: k3 = 2 - ln 2 - 1 ~ 0.3069; d = 0: k3 = 0; d = -ln 2: 0.5 + ln 2 - 1.
    logprobs = torch.tensor([[0.0, -1.0, 0.0]])
    ref = torch.tensor([[math.log(2), -1.0, -math.log(2)]])
    expected = torch.tensor([[1 - math.log(2), 0.0, math.log(2) - 0.5]])
    torch.testing.assert_close(kl_k3(logprobs, ref), expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=2))
def test_kl_k3_is_finite_and_non_negative(pair):
    value = kl_k3(torch.tensor([[pair[0]]]), torch.tensor([[pair[1]]]))
    assert torch.isfinite(value).all() and value.item() >= 0


def test_policy_loss_adds_weighted_kl():
    logprobs, old, advantages, mask = _four_token_case()
    ref = old + math.log(2)  # d = ln 2 - ln r per token
    loss, stats = policy_loss(logprobs, old, ref, advantages, mask, 0.2, 0.2, 0.5, "token_mean")
    expected_kl = kl_k3(logprobs.detach(), ref).mean()
    assert stats["kl"].item() == pytest.approx(expected_kl.item())
    assert stats["pg_loss"].item() == pytest.approx(0.15, abs=1e-6)
    assert loss.item() == pytest.approx(0.15 + 0.5 * expected_kl.item(), abs=1e-6)


def test_policy_loss_without_reference():
    logprobs, old, advantages, mask = _four_token_case()
    loss, stats = policy_loss(logprobs, old, None, advantages, mask, 0.2, 0.2, 0.0, "token_mean")
    assert loss.item() == pytest.approx(0.15, abs=1e-6) and stats["kl"].item() == 0.0
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(logprobs, old, None, advantages, mask, 0.2, 0.2, 0.1, "token_mean")
