"""Driver side of the learner: ``LearnerGroup`` starts N ``LearnerWorker`` ranks as Ray actors,
wires their torch.distributed rendezvous, splits each batch into equal rank shards and merges
the ranks' metrics. It never imports deepspeed, so the driver process stays light.

Every group method calls all ranks: ZeRO shards optimizer state (stage 1), gradients (2) and
parameters (3) across them, so forward, backward, step, checkpoint and weight export are
collectives. Methods ending in ``_async`` return the ranks' ObjectRefs (needed when another
party, e.g. the rollout engines, must join a collective at the same time).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from capo_ray.records import TrainBatch
from capo_ray.workers.actor_group import ActorOptions, start_group
from capo_ray.workers.distributed import accelerator_env, rendezvous
from capo_ray.workers.full_weights import WeightConsumer
from capo_ray.workers.learner import LearnerSettings, LearnerWorker
from capo_ray.workers.update_settings import UpdateSettings

# Metrics that are sums of globally weighted shares (add over ranks, then average over steps).
_SHARED_METRICS = ("loss", "pg_loss", "kl", "clip_frac", "approx_kl", "entropy")
# Metrics every rank reports identically (taken from rank 0, averaged over steps).
_RANK0_METRICS = ("grad_norm", "lr")


# --- splitting a batch across ranks ------------------------------------------------------------


def take_rows(batch: TrainBatch, index: torch.Tensor) -> TrainBatch:
    """The rows ``index`` (1-D long) of every [B, L] field, in that order."""
    ref = None if batch.ref_logprobs is None else batch.ref_logprobs[index]
    return TrainBatch(
        input_ids=batch.input_ids[index],
        attention_mask=batch.attention_mask[index],
        response_mask=batch.response_mask[index],
        advantages=batch.advantages[index],
        old_logprobs=batch.old_logprobs[index],
        ref_logprobs=ref,
    )


def plan_rows(num_rows: int, world_size: int, mini_batch_size: int, micro_batch_size: int) -> tuple[int, int]:
    """(padded row count, effective mini-batch size) for training ``num_rows`` on ``world_size``
    ranks, ``micro_batch_size`` rows per rank per forward.

    Every rank must run the same number of forward/backward passes (ZeRO-3 gathers parameters
    with collectives inside each forward), so a mini-batch is split into equal rank shards of
    whole micro-batches. A batch that fits in one mini-batch shrinks the mini-batch to the batch
    rounded up to ``world_size * micro_batch_size``; otherwise the batch is padded up to a
    multiple of ``mini_batch_size``. Padding rows carry response_mask 0: they cost compute,
    never gradient.
    """
    unit = world_size * micro_batch_size
    if num_rows < 1:
        raise ValueError("cannot train on an empty batch")
    if mini_batch_size < 1 or mini_batch_size % unit:
        raise ValueError(
            f"mini_batch_size = {mini_batch_size} must be a positive multiple of "
            f"world_size * micro_batch_size = {world_size} * {micro_batch_size}"
        )
    if num_rows <= mini_batch_size:
        padded = -(-num_rows // unit) * unit
        return padded, padded
    return -(-num_rows // mini_batch_size) * mini_batch_size, mini_batch_size


def pad_rows(batch: TrainBatch, num_rows: int) -> TrainBatch:
    """``batch`` extended to ``num_rows`` rows by copies of row 0 that train nothing
    (response_mask and advantages 0), so padded forwards look like real ones."""
    extra = num_rows - len(batch)
    if extra < 0:
        raise ValueError(f"cannot pad {len(batch)} rows down to {num_rows}")
    if extra == 0:
        return batch
    index = torch.cat([torch.arange(len(batch)), torch.zeros(extra, dtype=torch.long)])
    padded = take_rows(batch, index)
    padded.response_mask[len(batch):] = 0
    padded.advantages[len(batch):] = 0
    return padded


def shard_rows(batch: TrainBatch, world_size: int, mini_batch_size: int) -> list[TrainBatch]:
    """Split a padded batch into one shard per rank: mini-batch m's rows are cut into
    ``world_size`` contiguous blocks, and rank r's shard is its block of every mini-batch in
    order, so each rank's i-th mini-batch is its share of the global i-th optimizer step."""
    if len(batch) % mini_batch_size or mini_batch_size % world_size:
        raise ValueError(
            f"{len(batch)} rows do not split into mini-batches of {mini_batch_size} over {world_size} ranks"
        )
    per_rank = mini_batch_size // world_size
    starts = torch.arange(0, len(batch), mini_batch_size)  # [num_mini]
    shards = []
    for rank in range(world_size):
        index = (starts[:, None] + rank * per_rank + torch.arange(per_rank)[None, :]).reshape(-1)
        shards.append(take_rows(batch, index))
    return shards


def merge_metrics(per_rank: Sequence[dict[str, float]]) -> dict[str, float]:
    """Combine the ranks' ``LearnerWorker.train`` sums into per-optimizer-step averages."""
    steps = per_rank[0]["optimizer_steps"]
    # "entropy" is absent when LearnerSettings.log_entropy is off: omitted, not reported as 0.
    shared = [key for key in _SHARED_METRICS if key in per_rank[0]]
    out = {key: sum(r[key] for r in per_rank) / steps for key in shared}
    out.update({key: per_rank[0][key] / steps for key in _RANK0_METRICS})
    out["tokens"] = sum(r["tokens"] for r in per_rank)
    out["optimizer_steps"] = steps
    out["rank_seconds"] = max(r["seconds"] for r in per_rank)
    return out


class LearnerGroup:
    """N learner ranks (Ray actors) training one policy with DeepSpeed ZeRO.

    ``options`` place the rank actors (rank i on bundle i of the role's placement group, or
    ``options.bundle_indices[i]``) and give each its resources and environment (e.g.
    NCCL_SOCKET_IFNAME on multi-homed nodes). The constructor returns once every rank has
    joined the process group and built its engine.
    """

    def __init__(self, settings: LearnerSettings, num_workers: int, options: ActorOptions) -> None:
        import ray

        if settings.device == "cuda" and options.num_gpus <= 0:
            raise ValueError("device='cuda' needs learner actors with num_gpus > 0")
        self.settings = settings
        self.world_size = num_workers
        # DeepSpeed picks its accelerator at import: the rank actors need it in their env.
        options = replace(options, env_vars={**accelerator_env(settings.device), **options.env_vars})
        self.actors = start_group(LearnerWorker, options, [(settings,)] * num_workers)
        envs = rendezvous(self.actors)
        ray.get([actor.setup.remote(env) for actor, env in zip(self.actors, envs)])

    def train(self, batch: TrainBatch, update: UpdateSettings) -> dict[str, float]:
        """Train on ``batch`` (all rows; ``update.mini_batch_size`` rows per optimizer step over
        all ranks, ``update.micro_batch_size`` rows per rank per forward; see ``plan_rows`` for
        padding).

        Returns per-optimizer-step averages: loss, pg_loss, kl, entropy, clip_frac, approx_kl,
        grad_norm (before clipping), lr; plus tokens (trained response tokens in ``batch``),
        optimizer_steps, rank_seconds and seconds (wall time of this call). ``update.objective="sft"``
        trains the masked NLL (``LearnerWorker.train``); its loss is the NLL.
        """
        import ray

        start = time.perf_counter()
        padded, mini = plan_rows(len(batch), self.world_size, update.mini_batch_size, update.micro_batch_size)
        shards = shard_rows(pad_rows(batch, padded), self.world_size, mini)
        per_rank = update.with_mini_batch(mini)
        refs = [actor.train.remote(shard, per_rank) for actor, shard in zip(self.actors, shards)]
        metrics = merge_metrics(ray.get(refs))
        metrics["seconds"] = time.perf_counter() - start
        return metrics

    def compute_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        micro_batch_size: int,
        response_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B, L] log probs under the current weights (TrainBatch alignment), rows split
        evenly over the ranks (padded with copies of row 0, dropped again)."""
        import ray

        rows = input_ids.shape[0]
        unit = self.world_size * micro_batch_size
        padded = -(-rows // unit) * unit
        index = torch.cat([torch.arange(rows), torch.zeros(padded - rows, dtype=torch.long)])
        per_rank = padded // self.world_size
        refs = []
        for rank, actor in enumerate(self.actors):
            part = index[rank * per_rank : (rank + 1) * per_rank]
            mask = None if response_mask is None else response_mask[part]
            ids, attention = input_ids[part], attention_mask[part]
            refs.append(actor.compute_logprobs.remote(ids, attention, micro_batch_size, mask))
        return torch.cat(ray.get(refs))[:rows]

    def attach_async(self, key: str, factory: Any, *args: Any, **kwargs: Any) -> list[Any]:
        """Build ``factory(*args, **kwargs)`` inside rank 0 and keep it there under ``key``."""
        return [actor.attach.remote(key, factory, *args, **kwargs) for actor in self.actors]

    def for_each_full_weight_async(self, consumer: WeightConsumer) -> list[Any]:
        """Rank 0 runs ``consumer(weights_iterator, attached)`` over the full (gathered)
        weights; the other ranks take part in the gathers. Refs in rank order."""
        return [actor.for_each_full_weight.remote(consumer) for actor in self.actors]

    def for_each_full_weight(self, consumer: WeightConsumer) -> Any:
        """Blocking ``for_each_full_weight_async``; returns rank 0's consumer result."""
        import ray

        return ray.get(self.for_each_full_weight_async(consumer))[0]

    def save_hf(self, path: str) -> None:
        import ray

        ray.get([actor.save_hf.remote(path) for actor in self.actors])

    def save_checkpoint(self, directory: str, tag: str, client_state: dict[str, Any]) -> None:
        import ray

        ray.get([actor.save_checkpoint.remote(directory, tag, client_state) for actor in self.actors])

    def load_checkpoint(self, directory: str, tag: str | None = None) -> dict[str, Any]:
        """Restore every rank; returns rank 0's client_state."""
        import ray

        return ray.get([actor.load_checkpoint.remote(directory, tag) for actor in self.actors])[0]

    def shutdown(self) -> None:
        """Kill the rank actors (their engines and process group go with them)."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
