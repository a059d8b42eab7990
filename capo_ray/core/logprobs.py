"""Per-token log probabilities and entropies from a model's logits.

The logits of a policy forward pass are the largest tensor of a training step ([B, T, V],
V ~ 150k for Qwen), so these functions avoid materializing another full [B, T, V] copy:
log p(target) = logit[target] - logsumexp(logits) needs only a gather and a reduction, not a
log_softmax tensor. Half-precision logits are upcast to float32 one row at a time, because a
bf16 logsumexp is rounded to 8 bits of mantissa (an error of ~0.03 nats at lse ~ 10), which
would swamp the PPO ratio.

``chunked_head_logprobs`` goes one step further for training: it starts from the LM head's
input and never materializes the [B, T, V] logits at all (see its docstring).

Legend: B rows, T token positions, V vocabulary, H hidden width.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

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


def chunked_head_logprobs(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    chunk_tokens: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token log probs (and detached entropies) straight from the LM head's input, computed
    ``chunk_tokens`` positions at a time so that no [N, V] float32 logits tensor is kept.

    ``head`` maps [n, H] hidden states to [n, V] logits (the model's LM head module). With
    gradients on and more than ``chunk_tokens`` positions, every chunk runs under
    non-reentrant activation checkpointing: autograd then keeps only the chunk's hidden
    states and recomputes its logits in backward, one chunk at a time. That costs one extra
    head forward per chunk and bounds the logits held for backward to [chunk_tokens, V]
    instead of [N, V] (7.5 GB for four rows of 3k tokens at a 152k vocabulary in float32).
    Without gradients (scoring) the chunks cost nothing extra. A single chunk runs plain:
    its logits are within the bound anyway, so the recompute would buy nothing.

    The logits are upcast to float32 *before* the temperature divides them, the same
    precision argument as ``token_logprobs``. Entropy is computed after the log probs inside
    each chunk, so checkpointing's recompute (which stops once backward has what it needs)
    never redoes it.

    Shapes: hidden [B, T, H] float, targets [B, T] int -> [B, T] float32 (and entropy).
    """
    if hidden.dim() != 3 or targets.shape != hidden.shape[:2]:
        raise ValueError(f"hidden must be [B, T, H] and targets [B, T]; got {tuple(hidden.shape)}, {tuple(targets.shape)}")
    if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be an integer >= 1, got {chunk_tokens!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    rows, length, width = hidden.shape
    flat_hidden = hidden.reshape(rows * length, width)
    flat_targets = targets.reshape(-1).long()

    def chunk(h: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = head(h).float()
        if temperature != 1.0:
            logits = logits / temperature
        lp = _row_logprobs(logits, t)
        if not with_entropy:
            return lp, lp.new_zeros(())
        with torch.no_grad():
            return lp, _row_entropy(logits.detach())

    recompute = torch.is_grad_enabled() and flat_hidden.requires_grad and rows * length > chunk_tokens
    lps, ents = [], []
    for lo in range(0, rows * length, chunk_tokens):
        h, t = flat_hidden[lo : lo + chunk_tokens], flat_targets[lo : lo + chunk_tokens]
        if recompute:
            lp, ent = checkpoint(chunk, h, t, use_reentrant=False)
        else:
            lp, ent = chunk(h, t)
        lps.append(lp)
        ents.append(ent)
    if not lps:  # no positions: nothing to score
        empty = hidden.new_zeros((rows, length), dtype=torch.float32)
        return empty, (empty.clone() if with_entropy else None)
    lp = torch.cat(lps).view(rows, length)
    return lp, (torch.cat(ents).view(rows, length) if with_entropy else None)
