"""Failure handling and memory reuse of the sync group, on CPU (gloo): a wait that misses its
deadline raises WeightSyncError (also where NCCL's own wait would not), breaks the group so
later calls fail at once, and bucket buffers are reused from one sync to the next."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from capo_ray.workers.weight_sync import SyncGroup, SyncGroupSpec, WeightReceiver, WeightSender, WeightSyncError
from capo_ray.workers.weight_sync.group import wait_bounded
from capo_ray.workers.weight_sync.session import Rendezvous


class NeverDone:
    """A collective whose peer never comes (what a hung NCCL broadcast looks like to the CPU)."""

    def is_completed(self) -> bool:
        return False

    def wait(self) -> None:  # pragma: no cover - must never be called
        raise AssertionError("an unbounded wait() was called")


def test_a_missed_deadline_raises_and_aborts():
    aborted = []
    start = time.monotonic()
    with pytest.raises(WeightSyncError, match="a bucket broadcast did not complete within 0 s"):
        wait_bounded(NeverDone(), 0.2, "a bucket broadcast", on_timeout=lambda: aborted.append(True))
    assert 0.2 <= time.monotonic() - start < 5 and aborted == [True]


def _pair(timeout_s: float):
    rdv = Rendezvous("127.0.0.1", timeout_s)
    with ThreadPoolExecutor(2) as pool:
        sender = pool.submit(WeightSender, SyncGroupSpec(rdv.host, rdv.port, 0, 2, "gloo", timeout_s), 0.001)
        group = pool.submit(SyncGroup, SyncGroupSpec(rdv.host, rdv.port, 1, 2, "gloo", timeout_s))
        return rdv, sender.result(), group.result()


def _receive(group, meta, version):
    receiver = WeightReceiver(group, meta)
    receiver.handshake(version)
    got = {name: t.clone() for name, t in receiver.tensors()}
    return got, receiver.finish(failed=False)


def test_a_party_that_never_comes_breaks_the_group_with_a_clear_error():
    rdv, sender, group = _pair(timeout_s=2.0)
    weights = [(f"w{i}", torch.ones(64)) for i in range(4)]
    meta = sender.plan(weights)
    start = time.monotonic()
    with pytest.raises(WeightSyncError, match="did not complete within 2 s|header broadcast failed"):
        sender.send(iter(weights), meta, 1)  # the engine side never joins this sync
    assert time.monotonic() - start < 30  # bounded: no hang, no process kill
    assert sender.group.broken is not None
    with pytest.raises(WeightSyncError, match="the sync group is broken"):
        sender.send(iter(weights), meta, 2)  # refused at once, the driver restarts the actors
    group.close()
    sender.close()
    rdv.close()


def test_bucket_buffers_are_reused_across_syncs():
    rdv, sender, group = _pair(timeout_s=20.0)
    weights = [(f"w{i}", torch.full((64,), float(i))) for i in range(10)]  # 256 B each
    meta = sender.plan(weights)  # 1 KB buckets: 4 + 4 + 2 tensors
    assert [len(b.names) for b in meta.buckets] == [4, 4, 2] and meta.largest_bucket_bytes == 1024
    allocated = []
    with ThreadPoolExecutor(2) as pool:
        for version in (1, 2, 3):
            sent = pool.submit(sender.send, iter(weights), meta, version)
            got, ok = pool.submit(_receive, group, meta, version).result(timeout=30)
            assert ok and sent.result(timeout=30)["version"] == version
            assert all(torch.equal(got[n], t) for n, t in weights)
            allocated.append(sender.buffers.allocated)
    # one buffer per bucket shape (the two full buckets share one), none after the first sync
    assert allocated == [2, 2, 2]
    group.close()
    sender.close()
    rdv.close()
