"""Per-token log probabilities and entropies from a model's logits.

The logits of a policy forward pass are the largest tensor of a training step ([B, T, V],
V ~ 150k for Qwen), so these functions avoid materializing another full [B, T, V] copy:
log p(target) = logit[target] - logsumexp(logits) needs only a gather and a reduction, not a
log_softmax tensor. Half-precision logits are upcast to float32 one row at a time, because a
bf16 logsumexp is rounded to 8 bits of mantissa (an error of ~0.03 nats at lse ~ 10), which
would swamp the PPO ratio.

Legend: B rows, T token positions, V vocabulary.
"""

from __future__ import annotations

import torch

from capo_ray.core.shapes import check_2d

_FULL_PRECISION = (torch.float32, torch.float64)


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must have shape [B, T, V], got {got}")
    if not logits.dtype.is_floating_point:
        raise ValueError(f"logits must be floating point, got {logits.dtype}")


def _row_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[..., V] logits and [...] targets -> [...] log probs, in the logits' dtype."""
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[b, t, targets[b, t]], computed as gather - logsumexp.

    Float32/float64 logits are used as they are (result in their dtype); half-precision
    logits are upcast row by row and give float32, so at most one [T, V] float32 copy exists
    at a time. Targets must lie in 0..V-1.

    Shapes: logits [B, T, V] float, targets [B, T] int -> [B, T] float.
    """
    _check_logits(logits)
    check_2d("targets", targets)
    if targets.shape != logits.shape[:2]:
        raise ValueError(f"targets has shape {tuple(targets.shape)}, expected {tuple(logits.shape[:2])}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be an integer tensor, got {targets.dtype}")
    targets = targets.long()
    vocab = logits.shape[-1]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= vocab):
        # Checked here because an out-of-range gather on a GPU is an opaque device assert.
        raise ValueError(f"targets must lie in 0..{vocab - 1}")
    if logits.dtype in _FULL_PRECISION:
        return _row_logprobs(logits, targets)
    rows = [_row_logprobs(row.float(), row_targets) for row, row_targets in zip(logits, targets)]
    return torch.stack(rows) if rows else logits.new_zeros(logits.shape[:2], dtype=torch.float32)


def _row_entropy(logits: torch.Tensor) -> torch.Tensor:
    """[..., V] logits -> [...] entropy: H = logsumexp(z) - sum(softmax(z) * z)."""
    return torch.logsumexp(logits, dim=-1) - (torch.softmax(logits, dim=-1) * logits).sum(dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the predicted distribution at every position, in nats.

    Computed one row at a time (upcast to float32 for half precision), since the softmax
    needs a [T, V] buffer; a full [B, T, V] one would double the logits' memory.

    Shapes: logits [B, T, V] float -> [B, T] float (float32 for half-precision input).
    """
    _check_logits(logits)
    out_dtype = logits.dtype if logits.dtype in _FULL_PRECISION else torch.float32
    if logits.shape[0] == 0:
        return logits.new_zeros(logits.shape[:2], dtype=out_dtype)
    return torch.stack([_row_entropy(row.to(out_dtype)) for row in logits])
