"""Per-rank batch arithmetic of a learner step: how a shard splits into micro-batches and
optimizer steps, and the token/row counts that weight each micro-batch's loss so the update
does not depend on micro-batch size or rank count. Split out of learner.py to keep the actor
class readable; only learner.py uses it."""

from __future__ import annotations

import torch

from capo_ray.records import TrainBatch


def _accumulation_steps(mini_batch_size: int, micro_batch_size: int, world_size: int) -> int:
    unit = micro_batch_size * world_size
    if mini_batch_size % unit:
        raise ValueError(
            f"mini_batch_size = {mini_batch_size} must be a multiple of "
            f"micro_batch_size * world_size = {micro_batch_size} * {world_size}"
        )
    return mini_batch_size // unit


def _rows_per_step(rows: int, mini: int, micro: int, world: int) -> int:
    """Rows of this rank's shard per optimizer step (``UpdateSettings`` checked the rest)."""
    per_rank = _accumulation_steps(mini, micro, world) * micro
    if rows < per_rank or rows % per_rank:
        raise ValueError(f"shard of {rows} rows is not a whole number of {per_rank}-row mini-batch shares")
    return per_rank


def _require_old_logprobs(batch: TrainBatch) -> None:
    used = batch.response_mask != 0
    if used.any() and not batch.old_logprobs[used].ne(0).any():
        raise ValueError(
            "old_logprobs are all 0 on response tokens, but ppo_epochs > 1 or several mini-batches "
            "make training off-policy: fill them (LearnerGroup.compute_logprobs or rollout logprobs)"
        )


def _to_device(batch: TrainBatch, device: torch.device) -> TrainBatch:
    if device.type == "cpu":
        return batch
    move = {name: getattr(batch, name).to(device) for name in
            ("input_ids", "attention_mask", "response_mask", "advantages", "old_logprobs")}
    ref = None if batch.ref_logprobs is None else batch.ref_logprobs.to(device)
    return TrainBatch(**move, ref_logprobs=ref)


def _counts(response_mask: torch.Tensor) -> tuple[float, float]:
    """(trained tokens, rows with at least one trained token)."""
    return float(response_mask.sum()), float((response_mask.sum(dim=1) > 0).sum())


def _global_counts(response_mask: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """``_counts`` summed over all ranks' shares of the mini-batch (at least 1 each, so an
    all-padding mini-batch gives zero weights instead of a division by zero)."""
    counts = torch.tensor(_counts(response_mask), dtype=torch.float64, device=device)
    torch.distributed.all_reduce(counts)
    return max(float(counts[0]), 1.0), max(float(counts[1]), 1.0)
