"""Policy losses: PPO clipped surrogate on per-token advantages, k3 KL, and loss aggregation.

CAPO (arXiv 2508.02298, method step 8) trains with the PPO clipped surrogate (ratio clip 0.2)
on its token-level advantages and a KL penalty to the frozen reference model as a loss term,
using the low-variance k3 estimator. The advantages stay per token all the way into the loss;
collapsing them to one scalar per sequence would undo CAPO's credit assignment.

Legend: B responses (rows), T token positions. Every [B, T] tensor is aligned; ``mask`` is 1
on the response tokens that are trained and 0 on prompt and padding positions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from capo_ray.core.shapes import check_2d, check_same_shape

# Log-ratios are clamped before exp(): on masked-out (prompt, padding) positions the log
# probs can be arbitrary, and exp() overflowing to inf would turn "inf * 0" into NaN in the
# masked sum and in its gradient. e^20 ~ 5e8 is far outside any ratio that survives clipping.
_LOG_RATIO_LIMIT = 20.0


# --- aggregation ---------------------------------------------------------------------------


def _token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Every token weighs the same, so long responses weigh more in the batch loss.
    return (values * mask).sum() / mask.sum().clamp(min=1)


def _seq_mean_token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Every sequence weighs the same (the original GRPO form); rows with no token are skipped.
    count = mask.sum(dim=1)  # [B]
    per_sequence = (values * mask).sum(dim=1) / count.clamp(min=1)  # [B]
    present = (count > 0).to(values.dtype)  # [B]
    return (per_sequence * present).sum() / present.sum().clamp(min=1)


def _seq_mean_token_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Per-sequence sums: no length normalization (Dr. GRPO's argument against length bias);
    # rows with no token are skipped, so padding rows added to even out shards change nothing.
    count = mask.sum(dim=1)  # [B]
    present = (count > 0).to(values.dtype)  # [B]
    return (values * mask).sum() / present.sum().clamp(min=1)


Aggregation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOSS_AGGREGATIONS: dict[str, Aggregation] = {
    "token_mean": _token_mean,
    "seq_mean_token_mean": _seq_mean_token_mean,
    "seq_mean_token_sum": _seq_mean_token_sum,
}


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Reduce per-token values to a scalar over the masked-in tokens.

    Modes (``LOSS_AGGREGATIONS``): "token_mean" (sum over masked tokens / their count),
    "seq_mean_token_mean" (per-sequence token mean, then mean over the sequences with at
    least one token), "seq_mean_token_sum" (per-sequence sum, then mean over the sequences
    with at least one token). An all-zero mask gives 0, never NaN.

    Shapes: values [B, T], mask [B, T] (0/1, any dtype) -> scalar.
    """
    try:
        reduce = LOSS_AGGREGATIONS[mode]
    except (KeyError, TypeError):
        valid = sorted(LOSS_AGGREGATIONS)
        raise ValueError(f"unknown loss aggregation {mode!r}; valid modes: {valid}") from None
    check_2d("values", values)
    check_same_shape("values", values, mask=mask)
    return reduce(values, mask.to(values.dtype))


# --- per-token terms -----------------------------------------------------------------------


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(policy || reference) per token: exp(d) - d - 1 with d = ref - logp.

    Unbiased for the KL when tokens are sampled from the policy, and never negative, so it has
    lower variance than the plain log-ratio (Schulman, "Approximating KL divergence", 2020).
    d is clamped to [-20, 20] so exp() cannot overflow on padding (see _LOG_RATIO_LIMIT).

    Shapes: logprobs [B, T], ref_logprobs [B, T] -> [B, T].
    """
    check_2d("logprobs", logprobs)
    check_same_shape("logprobs", logprobs, ref_logprobs=ref_logprobs)
    log_ratio = (ref_logprobs - logprobs).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
    # expm1(d) - d, not exp(d) - d - 1: near d = 0 (policy close to reference, the usual
    # case) the latter cancels to float32 noise of ~1e-7 and can even come out negative.
    return torch.expm1(log_ratio) - log_ratio


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    agg: str = "token_mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO clipped surrogate on per-token advantages.

    loss = aggregate(-min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A)) with
    ratio = exp(logprobs - old_logprobs). A separate ``clip_high`` allows DAPO-style
    asymmetric clipping ("clip-higher"); the paper uses 0.2 for both.

    Stats (detached scalars): "clip_frac" (fraction of masked tokens where the clipped branch
    is active, i.e. strictly smaller), "ratio_mean" and "approx_kl" (mean of old - new log
    prob), both over masked tokens.

    Shapes: logprobs, old_logprobs, advantages, mask all [B, T] -> (scalar, stats).
    """
    check_2d("logprobs", logprobs)
    check_same_shape("logprobs", logprobs, old_logprobs=old_logprobs, advantages=advantages, mask=mask)
    if not (0 <= clip_low < 1 and clip_high >= 0):
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}")
    mask = mask.to(logprobs.dtype)
    log_ratio = (logprobs - old_logprobs).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)  # [B, T]
    ratio = torch.exp(log_ratio)  # [B, T]
    unclipped = -advantages * ratio  # [B, T]
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)  # [B, T]
    # max of the negated terms == -min(ratio * A, clip(ratio) * A): the pessimistic bound.
    per_token = torch.maximum(unclipped, clipped)  # [B, T]
    loss = aggregate(per_token, mask, agg)
    with torch.no_grad():
        stats = {
            "clip_frac": _masked_mean((clipped > unclipped).to(mask.dtype), mask),
            "ratio_mean": _masked_mean(ratio, mask),
            "approx_kl": _masked_mean(-log_ratio, mask),
        }
    return loss, stats


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float,
    clip_high: float,
    kl_coef: float,
    agg: str,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The learner's loss: PPO clipped surrogate + kl_coef * aggregate(k3 KL to reference).

    ``ref_logprobs`` None means the KL term is off; then ``kl_coef`` must be 0 (a positive
    coefficient without reference log probs is a configuration error, not a silent no-op).
    Stats are those of ``ppo_clip_loss`` plus "kl" (the aggregated k3 KL; 0 when off) and
    "pg_loss" (the surrogate alone).

    Shapes: all tensors [B, T] -> (scalar, stats of detached scalars).
    """
    if ref_logprobs is None and kl_coef != 0:
        raise ValueError(f"kl_coef = {kl_coef} needs ref_logprobs, but ref_logprobs is None")
    pg_loss, stats = ppo_clip_loss(logprobs, old_logprobs, advantages, mask, clip_low, clip_high, agg)
    if ref_logprobs is None:
        stats["kl"] = torch.zeros((), dtype=pg_loss.dtype, device=pg_loss.device)
        stats["pg_loss"] = pg_loss.detach()
        return pg_loss, stats
    kl = aggregate(kl_k3(logprobs, ref_logprobs), mask, agg)
    stats["kl"] = kl.detach()
    stats["pg_loss"] = pg_loss.detach()
    return pg_loss + kl_coef * kl, stats


# --- supervised fine-tuning ----------------------------------------------------------------


def masked_nll(
    logprobs: torch.Tensor, mask: torch.Tensor, agg: str = "token_mean"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Negative log-likelihood of the masked-in tokens: the SFT cold start's loss.

    ``mask`` is 1 on the response tokens (the prompt is never trained on), aggregated like the
    policy loss (``aggregate``). Stats carry the keys the learner reports for the policy loss
    ("pg_loss" is the NLL itself; "kl", "clip_frac", "approx_kl" are 0) so one metrics path
    serves both objectives.

    Shapes: logprobs [B, T], mask [B, T] -> (scalar, stats of detached scalars).
    """
    check_2d("logprobs", logprobs)
    check_same_shape("logprobs", logprobs, mask=mask)
    loss = aggregate(-logprobs, mask, agg)
    zero = torch.zeros((), dtype=loss.dtype, device=loss.device)
    stats = {"pg_loss": loss.detach(), "kl": zero, "clip_frac": zero, "approx_kl": zero}
    return loss, stats
