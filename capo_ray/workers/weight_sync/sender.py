"""The learner side of a weight sync: ``WeightSender`` (rank 0 of the sync group, inside the
learner's rank-0 process) and the consumers the driver hands to
``LearnerGroup.for_each_full_weight`` to plan and send with it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from capo_ray.workers.weight_sync.group import SyncGroup
from capo_ray.workers.weight_sync.protocol import (
    ABORT,
    OK,
    SyncGroupSpec,
    SyncMeta,
    WeightSyncError,
    numel_of,
    plan_buckets,
)


class BufferPool:
    """Flat bucket buffers kept across syncs: each sync reuses the previous one's instead of
    allocating every bucket afresh (on GPU that memory sits beside the learner's budget). A
    buffer comes back once its broadcast completed, so a sync holds only its open buckets."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.free: dict[tuple[int, torch.dtype], list[torch.Tensor]] = {}
        self.allocated = 0  # buffers ever allocated (tests check the reuse)

    def take(self, numel: int, dtype: torch.dtype) -> torch.Tensor:
        spare = self.free.get((numel, dtype))
        if spare:
            return spare.pop()
        self.allocated += 1
        return torch.empty(numel, dtype=dtype, device=self.device)

    def give_back(self, flat: torch.Tensor) -> None:
        self.free.setdefault((flat.numel(), flat.dtype), []).append(flat)


class _Packer:
    """Copies streamed tensors into their buckets and hands out completed buckets in send
    order (a bucket completed early, e.g. with interleaved dtypes, waits for its turn)."""

    def __init__(self, meta: SyncMeta, buffers: "BufferPool", dtype_of) -> None:
        self.meta, self.buffers, self.dtype_of = meta, buffers, dtype_of
        self.slots: dict[str, tuple[int, int, tuple[int, ...]]] = {}  # name -> bucket, offset, shape
        for index, bucket in enumerate(meta.buckets):
            offset = 0
            for name, shape in zip(bucket.names, bucket.shapes):
                self.slots[name] = (index, offset, shape)
                offset += numel_of(shape)
        self.filling: dict[int, list] = {}  # bucket index -> [flat buffer, tensors copied]
        self.seen: set[str] = set()
        self.next_index = 0

    def add(self, name: str, tensor: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        if name not in self.slots or name in self.seen:
            raise WeightSyncError(f"weight {name!r} is not in the meta (or repeated): re-plan the meta")
        index, offset, shape = self.slots[name]
        bucket = self.meta.buckets[index]
        t = tensor.detach()
        t = t.to(self.dtype_of(t))
        if tuple(t.shape) != shape or str(t.dtype) != bucket.dtype:
            raise WeightSyncError(
                f"weight {name!r} {tuple(t.shape)} {t.dtype} does not match the meta's {shape} {bucket.dtype}: "
                "re-plan the meta"
            )
        if index not in self.filling:
            self.filling[index] = [self.buffers.take(bucket.numel, t.dtype), 0]
        entry = self.filling[index]
        entry[0][offset : offset + t.numel()].copy_(t.reshape(-1))
        entry[1] += 1
        self.seen.add(name)
        ready = []
        while self.next_index in self.filling and self.filling[self.next_index][1] == len(
            self.meta.buckets[self.next_index].names
        ):
            ready.append((self.next_index, self.filling.pop(self.next_index)[0]))
            self.next_index += 1
        return ready

    def release(self) -> None:
        """Hand partly filled buckets back (after an abort), so the next sync reuses them."""
        for flat, _ in self.filling.values():
            self.buffers.give_back(flat)
        self.filling.clear()

    def check_complete(self) -> list:
        """At the end of the stream: raise if buckets remain unfilled (returns no buckets)."""
        if self.next_index < len(self.meta.buckets):
            missing = next(n for n in self.slots if n not in self.seen)
            raise WeightSyncError(f"weights ended before {missing!r} (the meta expects more)")
        return []


class WeightSender:
    """Rank 0 of the sync group, inside the learner's rank-0 process.

    API (the learner calls exactly these):
      ``WeightSender(spec, bucket_mb=64.0, send_dtype=None)`` joins the group (blocks until
          every engine worker joins: build it concurrently with the engines' init, see
          ``weight_sync.session.connect_weight_sync``);
      ``plan(named_tensors) -> SyncMeta`` reads only names/shapes/dtypes (call once);
      ``send(named_tensors, meta, version) -> dict`` streams the full tensors, in the planned
          order, bucket by bucket; each tensor is copied into its bucket at once, so a ZeRO-3
          gathered tensor may be released after the iterator moves on.
    ``send_dtype`` (e.g. torch.bfloat16) casts floating tensors before sending to halve the
    bytes when the engines run in that dtype.
    """

    def __init__(self, spec: SyncGroupSpec, bucket_mb: float = 64.0, send_dtype: torch.dtype | None = None) -> None:
        if spec.rank != 0:
            raise ValueError(f"WeightSender is rank 0 of the sync group, got rank {spec.rank}")
        self.bucket_mb, self.send_dtype = bucket_mb, send_dtype
        self.group = SyncGroup(spec)
        self.buffers = BufferPool(self.group.device)

    def _dtype_of(self, t: torch.Tensor) -> torch.dtype:
        return self.send_dtype if self.send_dtype is not None and t.is_floating_point() else t.dtype

    def plan(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> SyncMeta:
        return plan_buckets(((n, tuple(t.shape), self._dtype_of(t)) for n, t in named_tensors), self.bucket_mb)

    def send(self, named_tensors: Iterable[tuple[str, torch.Tensor]], meta: SyncMeta, version: int) -> dict:
        g, start = self.group, time.perf_counter()
        g.small([meta.fingerprint, len(meta.buckets), version], 3)
        if g.max(0):
            raise WeightSyncError("an engine rejected the sync header (its meta or version differs)")
        packer, stream, late_error = _Packer(meta, self.buffers, self._dtype_of), iter(named_tensors), None
        while True:
            try:  # only the weights' side may fail here: a broken group raises below, as is
                item = next(stream, None)
                ready = packer.check_complete() if item is None else packer.add(*item)
            except Exception as e:
                if packer.next_index < len(meta.buckets):
                    g.small([ABORT, packer.next_index, 0], 3)  # receivers stop and raise too
                    raise
                late_error = e  # every bucket went out: report it in the final flag exchange
                break
            for index, flat in ready:
                g.small([OK, index, flat.numel()], 3)
                g.broadcast(flat)  # complete on return: the buffer may be reused
                self.buffers.give_back(flat)
            if item is None:
                break
        packer.release()
        if g.max(1 if late_error else 0):
            raise late_error or WeightSyncError("an engine failed to load the received weights (see its log)")
        secs = time.perf_counter() - start
        return {"seconds": secs, "bytes": meta.num_bytes, "buckets": len(meta.buckets), "version": version}

    def close(self) -> None:
        self.group.close()


@dataclass(frozen=True)
class PlanWith:
    """Consumer for ``LearnerGroup.for_each_full_weight``: plans the meta with the
    ``WeightSender`` attached under ``key``."""

    key: str = "weight_sender"

    def __call__(self, weights: Iterator[tuple[str, torch.Tensor]], attached: dict) -> SyncMeta:
        return attached[self.key].plan(weights)


@dataclass(frozen=True)
class SendWith:
    """Consumer for ``LearnerGroup.for_each_full_weight_async``: one ``WeightSender.send``."""

    meta: SyncMeta
    version: int
    key: str = "weight_sender"

    def __call__(self, weights: Iterator[tuple[str, torch.Tensor]], attached: dict) -> dict:
        return attached[self.key].send(weights, self.meta, self.version)
