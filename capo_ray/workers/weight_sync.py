"""Weight sync learner -> rollout engines: bucketed broadcasts over a private process group.

Why a private group: DeepSpeed (learner) and vLLM (engines) each own their process's default
torch.distributed group, so the sync group is built from a TCPStore and a directly constructed
backend (``ProcessGroupGloo`` on CPU, ``ProcessGroupNCCL`` on GPU) and never registered as the
default. Rank 0 is the learner's rank 0; engine e's worker w is ``rank_offset(e) + w``. The
rendezvous TCPStore lives in the driver (it knows its own address and port, no port race).

Protocol of one sync (every step a collective, every collective bounded by ``timeout_s``):
  1. header broadcast [fingerprint, buckets, version]; each receiver compares it with the meta
     the driver gave it; an all-reduce(MAX) of "mismatch" flags makes everyone raise together;
  2. per bucket: a [status, index, numel] broadcast (status ABORT lets a sender that meets a
     tensor not matching the meta stop everyone cleanly), then the flat bucket itself;
  3. an all-reduce(MAX) of "load failed" flags, so the sender learns that an engine failed.
Metadata (names, shapes, dtypes, bucket layout) is planned once by the sender and handed to
the engines through Ray as a plain dict. This module needs only torch (the learner imports it
without vLLM); the engine-side vLLM glue is ``capo_ray.workers.vllm_engine.WeightSyncExtension``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

import torch
import torch.distributed as dist

_OK, _ABORT = 0, 1


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
        return sum(_numel(s) for s in self.shapes)


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
        return sum(b.numel * _dtype(b.dtype).itemsize for b in self.buckets)


def _numel(shape: Iterable[int]) -> int:
    return math.prod(int(s) for s in shape)


def _dtype(name: str) -> torch.dtype:
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
        size = _numel(shape) * dtype.itemsize
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


class SyncGroup:
    """One party of the sync group: broadcast from rank 0 and all-reduce(MAX) on raw backends."""

    def __init__(self, spec: SyncGroupSpec) -> None:
        timeout = timedelta(seconds=spec.timeout_s)
        store = dist.TCPStore(spec.host, spec.port, is_master=False, timeout=timeout)
        prefix = dist.PrefixStore("capo_weight_sync/", store)
        self.spec = spec
        if spec.backend == "gloo":
            opts = dist.ProcessGroupGloo._Options()
            opts._timeout = timeout
            opts._devices = [dist.ProcessGroupGloo.create_device(hostname=_local_ip_toward(spec.host))]
            self.pg = dist.ProcessGroupGloo(prefix, spec.rank, spec.world_size, opts)
            self.device = torch.device("cpu")
        elif spec.backend == "nccl":  # GPU: same calls, tensors must live on the current GPU
            opts = dist.ProcessGroupNCCL.Options()
            opts._timeout = timeout
            self.pg = dist.ProcessGroupNCCL(prefix, spec.rank, spec.world_size, opts)
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            raise ValueError(f"weight-sync backend must be 'gloo' or 'nccl', got {spec.backend!r}")
        self._store = store  # NCCL creates its communicator lazily, through the store

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        opts = dist.BroadcastOptions()
        opts.rootRank, opts.rootTensor = 0, 0
        self.pg.broadcast([tensor], opts).wait()
        return tensor

    def max(self, value: int) -> int:
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        opts = dist.AllreduceOptions()
        opts.reduceOp = dist.ReduceOp.MAX
        self.pg.allreduce([t], opts).wait()
        return int(t.item())

    def small(self, values: list[int] | None, n: int) -> list[int]:
        """Broadcast n int64 values from rank 0 (others pass None)."""
        t = torch.zeros(n, dtype=torch.int64, device=self.device)
        if values is not None:
            t.copy_(torch.tensor(values, dtype=torch.int64))
        return [int(v) for v in self.broadcast(t).tolist()]

    def close(self) -> None:
        if hasattr(self.pg, "shutdown"):
            self.pg.shutdown()


def _local_ip_toward(host: str) -> str:
    """The address of the interface this process uses to reach ``host`` (gloo binds to it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 1))  # UDP connect sends nothing: it only picks the route
        return s.getsockname()[0]


class _Packer:
    """Copies streamed tensors into their buckets and hands out completed buckets in send
    order (a bucket completed early, e.g. with interleaved dtypes, waits for its turn)."""

    def __init__(self, meta: SyncMeta, device: torch.device, dtype_of) -> None:
        self.meta, self.device, self.dtype_of = meta, device, dtype_of
        self.slots: dict[str, tuple[int, int, tuple[int, ...]]] = {}  # name -> bucket, offset, shape
        for index, bucket in enumerate(meta.buckets):
            offset = 0
            for name, shape in zip(bucket.names, bucket.shapes):
                self.slots[name] = (index, offset, shape)
                offset += _numel(shape)
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
            self.filling[index] = [torch.empty(bucket.numel, dtype=t.dtype, device=self.device), 0]
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
          ``capo_ray.workers.rollout.connect_weight_sync``);
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

    def _dtype_of(self, t: torch.Tensor) -> torch.dtype:
        return self.send_dtype if self.send_dtype is not None and t.is_floating_point() else t.dtype

    def plan(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> SyncMeta:
        return plan_buckets(((n, tuple(t.shape), self._dtype_of(t)) for n, t in named_tensors), self.bucket_mb)

    def send(self, named_tensors: Iterable[tuple[str, torch.Tensor]], meta: SyncMeta, version: int) -> dict:
        g, start = self.group, time.perf_counter()
        g.small([meta.fingerprint, len(meta.buckets), version], 3)
        if g.max(0):
            raise WeightSyncError("an engine rejected the sync header (its meta or version differs)")
        packer, stream, late_error = _Packer(meta, g.device, self._dtype_of), iter(named_tensors), None
        while True:
            try:  # only the weights' side may fail here: a broken group raises below, as is
                item = next(stream, None)
                ready = packer.check_complete() if item is None else packer.add(*item)
            except Exception as e:
                if packer.next_index < len(meta.buckets):
                    g.small([_ABORT, packer.next_index, 0], 3)  # receivers stop and raise too
                    raise
                late_error = e  # every bucket went out: report it in the final flag exchange
                break
            for index, flat in ready:
                g.small([_OK, index, flat.numel()], 3)
                g.broadcast(flat)
            if item is None:
                break
        if g.max(1 if late_error else 0):
            raise late_error or WeightSyncError("an engine failed to load the received weights (see its log)")
        secs = time.perf_counter() - start
        return {"seconds": secs, "bytes": meta.num_bytes, "buckets": len(meta.buckets), "version": version}

    def close(self) -> None:
        self.group.close()


# --- engine side (vLLM glue: capo_ray.workers.vllm_engine.WeightSyncExtension) ----------------


class WeightReceiver:
    """One sync on an engine worker: ``handshake``, then ``tensors()`` yields (HF name, tensor)
    as buckets arrive (for vLLM's reload_weights), ``drain`` after a local error, ``finish``."""

    def __init__(self, group: SyncGroup, meta: SyncMeta) -> None:
        self.group, self.meta = group, meta
        self.next_bucket = 0
        self.aborted = False
        self.loaded_any = False  # some tensor reached the model: a failure leaves it mixed

    def handshake(self, version: int) -> None:
        fingerprint, buckets, sent_version = self.group.small(None, 3)
        ok = (fingerprint, buckets, sent_version) == (self.meta.fingerprint, len(self.meta.buckets), version)
        if self.group.max(0 if ok else 1):
            raise WeightSyncError(
                f"sync header mismatch: sender has meta {fingerprint}/{buckets} buckets/version "
                f"{sent_version}, this engine got {self.meta.fingerprint}/{len(self.meta.buckets)}/{version}"
            )

    def _receive(self, index: int) -> torch.Tensor:
        bucket = self.meta.buckets[index]
        status, got_index, numel = self.group.small(None, 3)
        self.next_bucket = index + 1
        if status == _ABORT:
            self.aborted = True
            raise WeightSyncError(f"the sender aborted the sync at bucket {got_index} (weights do not match meta)")
        if (got_index, numel) != (index, bucket.numel):
            raise WeightSyncError(f"bucket header {got_index}/{numel} != expected {index}/{bucket.numel}")
        # A fresh buffer per bucket: vLLM's layerwise reload keeps views until a layer completes.
        flat = torch.empty(bucket.numel, dtype=_dtype(bucket.dtype), device=self.group.device)
        return self.group.broadcast(flat)

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        for index, bucket in enumerate(self.meta.buckets):
            flat, offset = self._receive(index), 0
            for name, shape in zip(bucket.names, bucket.shapes):
                n = _numel(shape)
                self.loaded_any = True
                yield name, flat[offset : offset + n].view(shape)
                offset += n

    def drain(self) -> None:
        """After a local load error keep receiving, so the sender is not left blocked."""
        while not self.aborted and self.next_bucket < len(self.meta.buckets):
            try:
                self._receive(self.next_bucket)
            except WeightSyncError:
                if not self.aborted:  # the sender aborting meanwhile is an expected end
                    raise

    def finish(self, failed: bool) -> bool:
        """Exchange failure flags; True when every party (sender included) succeeded."""
        return self.group.max(1 if failed else 0) == 0


class ModuleSender:
    """Rank 0 for a plain ``nn.Module`` in a Ray actor: the learner stand-in of the tests and
    benchmarks (a DeepSpeed learner does the same with its gathered ZeRO-3 parameters)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.sender: WeightSender | None = None

    def connect(self, spec: SyncGroupSpec, bucket_mb: float = 64.0, send_dtype: torch.dtype | None = None) -> None:
        self.sender = WeightSender(spec, bucket_mb, send_dtype)

    def plan(self, bucket_mb: float | None = None) -> SyncMeta:
        if bucket_mb is not None:
            self.sender.bucket_mb = bucket_mb
        return self.sender.plan(self.module.named_parameters())

    def send(self, meta: SyncMeta, version: int) -> dict:
        with torch.no_grad():
            return self.sender.send(self.module.named_parameters(), meta, version)
