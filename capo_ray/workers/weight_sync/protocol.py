"""What both sides of a weight sync agree on before any byte moves: where the group meets
(``SyncGroupSpec``), the layout of the weights in buckets (``SyncMeta``, planned once by the
sender with ``plan_buckets``) and the one error every party raises (``WeightSyncError``).
Pure torch: the learner imports it without vLLM."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch

# Status of a bucket header: OK, or ABORT (the sender met weights that do not match the meta).
OK, ABORT = 0, 1


class WeightSyncError(RuntimeError):
    """A sync failed; every party of the group raises it (or a timeout) instead of hanging."""


@dataclass(frozen=True)
class SyncGroupSpec:
    """Where and how to join the sync group (plain values: it crosses Ray and vLLM RPCs)."""

    host: str  # rendezvous TCPStore address (the driver's)
    port: int
    rank: int  # this party's rank (engines: the engine's offset; each worker adds its own)
    world_size: int
    backend: str  # "gloo" | "nccl"
    timeout_s: float


@dataclass(frozen=True)
class BucketMeta:
    dtype: str  # e.g. "torch.bfloat16"
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def numel(self) -> int:
        return sum(numel_of(s) for s in self.shapes)

    @property
    def num_bytes(self) -> int:
        return self.numel * dtype_of(self.dtype).itemsize


@dataclass(frozen=True)
class SyncMeta:
    """Layout of one model's weights in buckets, in send order."""

    buckets: tuple[BucketMeta, ...]
    fingerprint: int  # 63-bit hash of the layout: both sides must hold the same meta

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "SyncMeta":
        buckets = tuple(
            BucketMeta(b["dtype"], tuple(b["names"]), tuple(tuple(s) for s in b["shapes"])) for b in d["buckets"]
        )
        return SyncMeta(buckets, int(d["fingerprint"]))

    @property
    def num_bytes(self) -> int:
        return sum(b.num_bytes for b in self.buckets)

    @property
    def largest_bucket_bytes(self) -> int:
        return max((b.num_bytes for b in self.buckets), default=0)


def numel_of(shape: Iterable[int]) -> int:
    return math.prod(int(s) for s in shape)


def dtype_of(name: str) -> torch.dtype:
    dt = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dt, torch.dtype):
        raise WeightSyncError(f"unknown dtype {name!r} in weight-sync meta")
    return dt


def plan_buckets(tensors: Iterable[tuple[str, tuple[int, ...], torch.dtype]], bucket_mb: float) -> SyncMeta:
    """Group (name, shape, dtype) [in iteration order] into flat same-dtype buckets of at most
    ``bucket_mb`` MB (a larger tensor gets a bucket of its own).

    Buckets are ordered by the index of their last tensor: a sender streaming the tensors in
    this order completes the buckets exactly in that order, so it never holds more than one
    open bucket per dtype.
    """
    limit = int(bucket_mb * (1 << 20))
    open_: dict[str, list] = {}  # dtype -> [names, shapes, bytes]
    closed: list[tuple[int, BucketMeta]] = []

    def close(dt: str, last: int) -> None:
        names, shapes, _ = open_.pop(dt)
        closed.append((last, BucketMeta(dt, tuple(names), tuple(shapes))))

    last_index: dict[str, int] = {}
    for i, (name, shape, dtype) in enumerate(tensors):
        dt, shape = str(dtype), tuple(int(s) for s in shape)
        size = numel_of(shape) * dtype.itemsize
        if dt in open_ and open_[dt][2] + size > limit:
            close(dt, last_index[dt])
        bucket = open_.setdefault(dt, [[], [], 0])
        bucket[0].append(name)
        bucket[1].append(shape)
        bucket[2] += size
        last_index[dt] = i
    for dt in list(open_):
        close(dt, last_index[dt])
    buckets = tuple(b for _, b in sorted(closed, key=lambda x: x[0]))
    digest = hashlib.sha256(repr([asdict(b) for b in buckets]).encode()).digest()
    return SyncMeta(buckets, int.from_bytes(digest[:8], "little") >> 1)
