"""Micro-batched forward pass of a causal LM to per-token log probs, aligned like TrainBatch.

Shared by the learner (with gradients, inside a DeepSpeed engine) and the reference worker
(without). Alignment (``capo_ray.records.TrainBatch``): entry t of the [B, L] result is
log p(input_ids[:, t] | input_ids[:, < t]); entry 0 has no context and is 0, and so is every
padding position (attention_mask == 0).

Only the logits that are used are computed: the LM head runs on positions from the earliest
response token of the micro-batch onwards (HF ``logits_to_keep``). Prompt logits are never
needed, and for a 49k-128k vocabulary the head plus its [B, L, V] output is a large share of
the forward cost and the largest activation.

Shared prompts (``share_prefix``): the rows of a micro-batch are usually one prompt's group
of n samples, so their first tokens are identical. The shared prefix then runs once, as one
row, and its keys/values are repeated for every row before the rest of each row runs on top
of them. Same logits up to float rounding, and gradients flow through the shared part (it is
an ordinary autograd graph); the prompt's share of the compute drops by the group size
(docs/performance.md). Off under gradient checkpointing (HF drops the cache there) and under
ZeRO-3 (every rank must run the same number of forwards; the choice here is per micro-batch).

Legend: B rows, L positions, V vocabulary.
"""

from __future__ import annotations

import contextlib

import torch

from capo_ray.core.logprobs import entropy_from_logits, token_logprobs
from capo_ray.core.shapes import check_2d, check_same_shape
from capo_ray.workers.chunked_head import HeadLogprobs


def sequence_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    micro_batch_size: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
    response_mask: torch.Tensor | None = None,
    share_prefix: bool = False,
    chunk_tokens: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Log prob of every token given its prefix, ``micro_batch_size`` rows per forward.

    Gradients flow when the caller has them enabled (the learner); wrap in ``torch.no_grad()``
    to score only. ``temperature`` divides the logits first, so the log probs are those of the
    distribution the rollout engine sampled from. ``response_mask`` (optional, [B, L]) says
    which positions the caller will use; positions before the first one of a micro-batch
    are returned as 0 without computing their logits. Entropy (nats, same alignment) is a
    detached metric: no gradient flows through it. ``share_prefix`` runs the rows' common
    leading tokens once (module docstring); leave it off under ZeRO-3 and gradient checkpointing.
    ``chunk_tokens`` > 0 computes the log probs from the LM head's input that many positions at
    a time (``workers.chunked_head``), so no [b, L, V] float32 logits are kept for backward;
    0 takes the model's full logits.

    Shapes: input_ids [B, L] int, attention_mask [B, L] -> [B, L] float
    (and entropy [B, L] float when ``with_entropy``).
    """
    batch, _length = check_2d("input_ids", input_ids)
    check_same_shape("input_ids", input_ids, attention_mask=attention_mask, response_mask=response_mask)
    if isinstance(micro_batch_size, bool) or not isinstance(micro_batch_size, int) or micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be an integer >= 1, got {micro_batch_size!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 0:
        raise ValueError(f"chunk_tokens must be an integer >= 0 (0: no chunking), got {chunk_tokens!r}")
    logprobs, entropies = [], []
    for start in range(0, batch, micro_batch_size):
        end = min(start + micro_batch_size, batch)
        used = None if response_mask is None else response_mask[start:end]
        lp, ent = _micro_logprobs(
            model, input_ids[start:end], attention_mask[start:end], temperature, with_entropy, used, share_prefix,
            chunk_tokens,
        )
        logprobs.append(lp)
        entropies.append(ent)
    out = torch.cat(logprobs) if logprobs else torch.zeros(input_ids.shape, dtype=torch.float32)
    if not with_entropy:
        return out
    return out, (torch.cat(entropies) if entropies else torch.zeros_like(out))


def first_scored_position(response_mask: torch.Tensor | None, length: int) -> int:
    """Earliest position whose log prob is needed (>= 1: position 0 has no prefix)."""
    if response_mask is None or length < 2:
        return 1
    used = response_mask[:, 1:].ne(0).any(dim=0).nonzero()  # [n, 1] columns used by some row
    return 1 + int(used[0, 0]) if used.numel() else length


# Below this many shared tokens the second forward call costs more than it saves.
MIN_SHARED_PREFIX = 8


def shared_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor, limit: int) -> int:
    """Number of leading positions (at most ``limit``) where every row holds the same real
    token; 0 for a single row."""
    rows, length = input_ids.shape
    limit = min(limit, length)
    if rows < 2 or limit < 1:
        return 0
    same = (input_ids[:, :limit] == input_ids[:1, :limit]).all(dim=0) & attention_mask[:, :limit].ne(0).all(dim=0)
    differs = (~same).nonzero()
    return int(differs[0, 0]) if differs.numel() else limit


def _forward(model, input_ids, attention_mask, position_ids, keep: int, prefix: int, head=None):
    """The model's output for the last ``keep`` positions; with ``prefix`` > 0 the first
    ``prefix`` positions (identical in every row) run once and are shared through the KV cache.
    ``head`` (a ``HeadLogprobs``) is active only around the call whose logits are scored."""
    scoring = head if head is not None else contextlib.nullcontext()
    if prefix == 0:
        with scoring:
            return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         logits_to_keep=keep, use_cache=False)
    out = model(input_ids=input_ids[:1, :prefix], attention_mask=attention_mask[:1, :prefix],
                position_ids=position_ids[:1, :prefix], logits_to_keep=1, use_cache=True)
    cache = out.past_key_values
    del out  # its one-position logits are not needed
    cache.batch_repeat_interleave(input_ids.shape[0])  # differentiable: repeat_interleave per layer
    with scoring:
        return model(input_ids=input_ids[:, prefix:], attention_mask=attention_mask,
                     position_ids=position_ids[:, prefix:], past_key_values=cache, logits_to_keep=keep,
                     use_cache=True)


def _micro_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float,
    with_entropy: bool,
    response_mask: torch.Tensor | None,
    share_prefix: bool = False,
    chunk_tokens: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    rows, length = input_ids.shape
    if length < 2:  # one-token rows: nothing has a prefix
        zeros = torch.zeros((rows, length), dtype=torch.float32, device=input_ids.device)
        return zeros, (zeros.clone() if with_entropy else None)
    # Even a micro-batch with nothing to score (e.g. padding rows) runs a forward over at
    # least the last position: under ZeRO-3 every rank must run the same forwards, because
    # each gathers parameters with collectives, and the learner needs a graph to backward.
    first = min(first_scored_position(response_mask, length), length - 1)
    # Positions from the attention mask, not 0..L-1, so left-padded rows are also correct
    # (for right padding the two agree on every real token).
    position_ids = (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)  # [b, L]
    # The shared prefix must end before position first-1, whose logit is the first one kept.
    # A micro-batch with nothing to score (padding rows) runs plain: it only has to exist.
    # Sharing its prefix changed ZeRO-2's gradient norm by ~0.2% against a single-process step
    # (tests/workers/test_learner_ray.py, 5 rows padded to 8); why is not yet understood.
    scored = response_mask is None or bool(response_mask.ne(0).any())
    prefix = shared_prefix_length(input_ids, attention_mask, first - 1) if share_prefix and scored else 0
    keep = length - first + 1  # logits at positions first-1 .. L-1
    prefix = prefix if prefix >= MIN_SHARED_PREFIX else 0
    targets = input_ids[:, first:]  # [b, L-first]
    ent = None
    if chunk_tokens:
        head = HeadLogprobs(model, targets, chunk_tokens, temperature, with_entropy)
        lp = _forward(model, input_ids, attention_mask, position_ids, keep, prefix, head).logits  # [b, L-first]
        ent = head.entropy
    else:
        logits = _forward(model, input_ids, attention_mask, position_ids, keep, prefix).logits[:, :-1]
        if temperature != 1.0:  # [b, L-first, V]: position p predicts token p+1
            logits = logits / temperature
        lp = token_logprobs(logits, targets).float()  # [b, L-first]
        if with_entropy:
            with torch.no_grad():
                ent = entropy_from_logits(logits.detach()).float()
    pad = lp.new_zeros((rows, first))
    keep = attention_mask.to(lp.dtype)
    lp = torch.cat([pad, lp], dim=1) * keep  # [b, L]
    if not with_entropy:
        return lp, None
    return lp, torch.cat([pad, ent.detach()], dim=1) * keep  # [b, L]
