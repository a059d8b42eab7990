"""Advantage estimators: CAPO's token-level group normalization and the GRPO baseline.

CAPO (arXiv 2508.02298, method step 7) normalizes token rewards within each prompt's group
of G responses, GRPO-style but over all tokens of all the group's responses. Whether to
divide by the std is uncertain in the paper, so ``scale`` is an option of both estimators.

Both use the POPULATION std (divide by N, not N - 1): for outcome-only rewards and equal
response lengths the two estimators then agree exactly, so a CAPO-vs-GRPO comparison
changes only the credit, not the scaling. (Many GRPO implementations use the sample std,
which is larger by sqrt(G / (G - 1)), about 3% at G = 16.)

Legend: B responses (rows), G responses per group, T tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from capo_ray.core.shapes import check_2d, check_positive, check_same_shape


def _check_inputs(rewards: torch.Tensor, mask: torch.Tensor, group_ids: torch.Tensor, eps: float) -> None:
    batch, _ = check_2d("rewards", rewards)
    if not rewards.dtype.is_floating_point:
        raise ValueError(f"rewards must be a floating point tensor, got {rewards.dtype}")
    check_same_shape("rewards", rewards, mask=mask)
    if not isinstance(group_ids, torch.Tensor) or group_ids.shape != (batch,):
        got = tuple(group_ids.shape) if isinstance(group_ids, torch.Tensor) else type(group_ids).__name__
        raise ValueError(f"group_ids must be a tensor of shape [B] = ({batch},), got {got}")
    if group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must be an integer tensor, got {group_ids.dtype}")
    check_positive("eps", eps)


def group_advantages(
    rewards: torch.Tensor,
    mask: torch.Tensor,
    group_ids: torch.Tensor,
    scale: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """CAPO advantages: token rewards normalized over every masked-in token of the group.

    For each group, mean and population std are taken over all tokens with mask 1 of all the
    group's responses; A = (R - mean) / (std + eps) when ``scale``, else R - mean; A = 0 where
    mask is 0. Longer responses weigh more in the baseline (each token counts once), which
    is what makes the masked advantages of a group sum to zero.

    Shapes: rewards [B, T] float, mask [B, T] (0/1, any dtype), group_ids [B] int -> [B, T].
    """
    _check_inputs(rewards, mask, group_ids, eps)
    weights = mask.to(rewards.dtype)  # [B, T]
    unique_ids, group = torch.unique(group_ids, return_inverse=True)  # group: [B] in 0..N-1
    num_groups = unique_ids.numel()
    row_sum = (rewards * weights).sum(dim=1)  # [B]
    row_count = weights.sum(dim=1)  # [B]
    count = rewards.new_zeros(num_groups).index_add_(0, group, row_count)  # [num_groups]
    safe_count = count.clamp(min=1)  # only matters for groups with no token at all
    mean = rewards.new_zeros(num_groups).index_add_(0, group, row_sum) / safe_count
    centered = (rewards - mean[group].unsqueeze(1)) * weights  # [B, T], zero off-mask
    if not scale:
        return centered
    # Two passes (mean, then squared deviations) rather than E[R^2] - E[R]^2, which cancels
    # catastrophically in float32 when rewards are large and nearly equal.
    square_sum = rewards.new_zeros(num_groups).index_add_(0, group, centered.square().sum(dim=1))
    std = (square_sum / safe_count).sqrt()  # [num_groups], population std
    return centered / (std[group].unsqueeze(1) + eps)


def grpo_advantages(
    rewards: torch.Tensor,
    mask: torch.Tensor,
    group_ids: torch.Tensor,
    scale: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO advantages: one scalar per response, normalized over the group's responses.

    A response's scalar is its mean masked token reward (for outcome-only rewards, the
    outcome reward itself). Each group's responses are normalized with their mean and
    population std (see module docstring), then the result is broadcast to the response's
    tokens; A = 0 where mask is 0. Responses with no masked-in token take no part in their
    group's statistics.

    Shapes: rewards [B, T] float, mask [B, T] (0/1), group_ids [B] int -> [B, T].
    """
    _check_inputs(rewards, mask, group_ids, eps)
    weights = mask.to(rewards.dtype)  # [B, T]
    unique_ids, group = torch.unique(group_ids, return_inverse=True)  # group: [B] in 0..N-1
    num_groups = unique_ids.numel()
    row_count = weights.sum(dim=1)  # [B]
    present = (row_count > 0).to(rewards.dtype)  # [B]: rows that count in their group
    score = (rewards * weights).sum(dim=1) / row_count.clamp(min=1)  # [B]
    members = rewards.new_zeros(num_groups).index_add_(0, group, present).clamp(min=1)
    mean = rewards.new_zeros(num_groups).index_add_(0, group, score * present) / members
    centered = (score - mean[group]) * present  # [B]
    if scale:
        square_sum = rewards.new_zeros(num_groups).index_add_(0, group, centered.square())
        centered = centered / ((square_sum / members).sqrt()[group] + eps)
    return centered.unsqueeze(1) * weights  # [B, T]


AdvantageEstimator = Callable[..., torch.Tensor]

ADVANTAGE_ESTIMATORS: dict[str, AdvantageEstimator] = {
    "capo": group_advantages,
    "grpo": grpo_advantages,
}


def compute_advantages(
    name: str,
    rewards: torch.Tensor,
    mask: torch.Tensor,
    group_ids: torch.Tensor,
    scale: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Dispatch to the estimator registered as ``name`` ("capo" or "grpo").

    Shapes: rewards [B, T], mask [B, T], group_ids [B] -> [B, T].
    """
    try:
        estimator = ADVANTAGE_ESTIMATORS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown advantage estimator {name!r}; valid estimators: {sorted(ADVANTAGE_ESTIMATORS)}"
        ) from None
    return estimator(rewards, mask, group_ids, scale=scale, eps=eps)
