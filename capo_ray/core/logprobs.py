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


def _chunk_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, temperature: float) -> torch.Tensor:
    # Upcast *before* the temperature divides them: the same precision argument as token_logprobs.
    logits = torch.nn.functional.linear(hidden, weight, bias).float()
    return logits / temperature if temperature != 1.0 else logits


class _ChunkedHeadLogprobs(torch.autograd.Function):
    """log softmax(hidden @ W.T + b)[target] chunk by chunk; backward recomputes each chunk.

    One autograd node for the whole head, not one per chunk: it saves only its inputs and one
    logsumexp per position, and its backward hands the weight ONE gradient. Under ZeRO-3 that
    matters: the weight is gathered around the head module's forward and again before its
    backward by hooks on the module, and calling the module once per chunk (or recomputing it
    under activation checkpointing inside backward) runs those hooks in orders ZeRO-3 does not
    expect; one Linear-like op between the module's hooks is exactly what they handle."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_tokens, temperature, with_entropy, training):  # noqa: ANN001
        lps, lses, ents = [], [], []
        for lo in range(0, hidden.shape[0], chunk_tokens):
            logits = _chunk_logits(hidden[lo : lo + chunk_tokens], weight, bias, temperature)
            lse = torch.logsumexp(logits, dim=-1)
            lps.append(logits.gather(-1, targets[lo : lo + chunk_tokens].unsqueeze(-1)).squeeze(-1) - lse)
            lses.append(lse)
            if with_entropy:
                ents.append(_row_entropy(logits))
        lp = torch.cat(lps)
        ent = torch.cat(ents) if with_entropy else lp.new_zeros(0)
        # One chunk holds no more than the bound allows: keep its softmax rather than pay a
        # second head matmul in backward (the CPU default, whose micro-batches fit one chunk).
        single = training and hidden.shape[0] <= chunk_tokens
        probs = torch.exp(logits - lse.unsqueeze(-1)) if single else None
        ctx.save_for_backward(hidden, weight, bias, targets, torch.cat(lses), probs)
        ctx.chunk_tokens, ctx.temperature = chunk_tokens, temperature
        ctx.mark_non_differentiable(ent)
        return lp, ent

    @staticmethod
    def backward(ctx, grad_lp, _grad_ent):  # noqa: ANN001
        hidden, weight, bias, targets, lse, probs = ctx.saved_tensors
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        # Chunks add up in float32 (a bf16 running sum would round every chunk's share away).
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if need_bias else None
        for lo in range(0, hidden.shape[0], ctx.chunk_tokens):
            hi = min(lo + ctx.chunk_tokens, hidden.shape[0])
            h = hidden[lo:hi]
            g = grad_lp[lo:hi].float().unsqueeze(-1)  # [n, 1]
            # d lp / d logits = onehot(target) - softmax(logits)
            if probs is None:
                grad_logits = torch.exp(_chunk_logits(h, weight, bias, ctx.temperature) - lse[lo:hi].unsqueeze(-1)).mul_(-g)
            else:
                grad_logits = probs * -g
            grad_logits.scatter_add_(-1, targets[lo:hi].unsqueeze(-1), g)
            if ctx.temperature != 1.0:
                grad_logits /= ctx.temperature
            grad_logits = grad_logits.to(h.dtype)  # the gradient a plain head's matmul would see
            if need_hidden:
                grad_hidden[lo:hi] = grad_logits @ weight
            if need_weight:
                grad_weight += (grad_logits.t() @ h).float()
            if need_bias:
                grad_bias += grad_logits.float().sum(dim=0)
        cast = lambda grad, like: None if grad is None else grad.to(like.dtype)  # noqa: E731
        return grad_hidden, cast(grad_weight, weight), cast(grad_bias, bias), None, None, None, None, None


def chunked_head_logprobs(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    chunk_tokens: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token log probs (and detached entropies) straight from the LM head's input, computed
    ``chunk_tokens`` positions at a time so that no [N, V] float32 logits tensor is kept.

    ``weight`` [V, H] and ``bias`` [V] (or None) are the LM head's. Forward keeps, per
    position, only its logsumexp; backward recomputes each chunk's logits and adds that
    chunk's share to the weight's gradient, so at most one [chunk_tokens, V] logits tensor
    exists at any time (instead of [N, V]: 7.5 GB for four rows of 3k tokens at a 152k
    vocabulary in float32). The price is one extra head matmul per chunk in backward; with
    at most ``chunk_tokens`` positions there is one chunk, whose softmax is kept instead.

    The logits are upcast to float32 *before* the temperature divides them, the same
    precision argument as ``token_logprobs``; the gradient reaching the head's matmuls is cast
    back to the hidden states' dtype, as a plain bf16 head would see it.

    Shapes: hidden [B, T, H] float, targets [B, T] int, weight [V, H] -> [B, T] float32 (and
    entropy [B, T], without gradient).
    """
    if hidden.dim() != 3 or targets.shape != hidden.shape[:2]:
        raise ValueError(f"hidden must be [B, T, H] and targets [B, T]; got {tuple(hidden.shape)}, {tuple(targets.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[2]:
        raise ValueError(f"weight must be [V, H] with H = {hidden.shape[2]}, got {tuple(weight.shape)}")
    if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be an integer >= 1, got {chunk_tokens!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    rows, length, width = hidden.shape
    if rows * length == 0:  # no positions: nothing to score
        empty = hidden.new_zeros((rows, length), dtype=torch.float32)
        return empty, (empty.clone() if with_entropy else None)
    training = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    lp, ent = _ChunkedHeadLogprobs.apply(hidden.reshape(rows * length, width), weight, bias,
                                         targets.reshape(-1).long(), chunk_tokens, float(temperature),
                                         with_entropy, training)  # fmt: skip
    return lp.view(rows, length), (ent.view(rows, length) if with_entropy else None)
