"""The driver side of the weight sync: the rendezvous it hosts, forming the group
(``connect_weight_sync``), one sync (``WeightSyncSession.sync``) and closing the group.

The driver never sends a byte itself: it starts the sender's ``send`` on the learner and every
engine's ``receive_weights`` concurrently, and collects each party's outcome.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import torch.distributed as dist

from capo_ray.workers.weight_sync.protocol import SyncGroupSpec, SyncMeta, WeightSyncError

# Ray's own wait is longer than the group's timeout: an actor's collective fails first, and
# its error (not a bare Ray timeout) is what the driver reports.
_RAY_MARGIN_S = 30.0


def _get(refs: list[Any], timeout_s: float, what: str) -> list[Any]:
    import ray

    try:
        return ray.get(refs, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError as e:
        raise WeightSyncError(f"{what} did not finish within {timeout_s:.0f} s") from e


class Rendezvous:
    """The TCPStore the sync group meets at, hosted by the driver for the group's lifetime
    (NCCL forms its communicator lazily, through this store, at the first sync)."""

    def __init__(self, host: str, timeout_s: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))  # bound here, so the port is ours before anyone connects
        sock.listen()
        self.host, self.port = host, sock.getsockname()[1]
        self.store: Any = dist.TCPStore(
            host, self.port, is_master=True, wait_for_workers=False,
            timeout=timedelta(seconds=timeout_s), master_listen_fd=sock.detach(),
        )  # fmt: skip

    def close(self) -> None:
        self.store = None  # the last reference: the store's server thread and port go with it


class WeightSyncSession:
    """A formed sync group: the rendezvous, the engines and (after ``plan``) the meta."""

    def __init__(self, rendezvous: Rendezvous, engines: Sequence[Any], world_size: int, timeout_s: float) -> None:
        self.rendezvous, self.engines = rendezvous, list(engines)
        self.world_size, self.timeout_s = world_size, timeout_s
        self.meta: SyncMeta | None = None

    def sync(self, send: Callable[[], Any], version: int, meta: SyncMeta | None = None) -> dict:
        """One sync of ``meta`` (default: the session's) as ``version``; see ``sync_weights``."""
        meta = meta or self.meta
        if meta is None:
            raise WeightSyncError("no meta: plan the weight layout before the first sync")
        return sync_weights(send, self.engines, meta, version, self.timeout_s)

    def close(self) -> None:
        """Close the engines' side of the group and the rendezvous (bounded, best effort: on
        shutdown an engine may already be dead; the sender's side closes with the learner)."""
        import ray

        refs = [e.close_sync_group.remote() for e in self.engines]
        try:
            ray.wait(refs, num_returns=len(refs), timeout=10.0)
        except Exception:  # noqa: BLE001 - a dead engine needs no closing
            pass
        self.engines = []
        self.rendezvous.close()


def connect_weight_sync(
    start_sender: Callable[[SyncGroupSpec], Any],
    engines: Sequence[Any],
    host: str,
    backend: str,
    timeout_s: float = 600.0,
) -> WeightSyncSession:
    """Form the sync group: the driver hosts the rendezvous at ``host`` (its own address,
    reachable from the learner and the engines), rank 0 is the sender, then each engine's
    workers. ``start_sender(spec)`` must launch the sender's construction on the learner and
    return its ObjectRef(s), e.g. ``lambda spec: learners.attach_async("weight_sender",
    WeightSender, spec, bucket_mb=64)``. Raises WeightSyncError on failure or timeout."""
    rdv = Rendezvous(host, timeout_s)
    sizes = _get([e.num_sync_ranks.remote() for e in engines], timeout_s, "num_sync_ranks")
    world = 1 + sum(sizes)
    base = SyncGroupSpec(rdv.host, rdv.port, 0, world, backend, timeout_s)
    offsets = [1 + sum(sizes[:i]) for i in range(len(engines))]
    refs = [e.init_sync_group.remote(replace(base, rank=off)) for e, off in zip(engines, offsets)]
    sender = start_sender(base)
    sender_refs = sender if isinstance(sender, list) else [sender]
    _get(sender_refs + refs, timeout_s + _RAY_MARGIN_S, "forming the weight-sync group")
    return WeightSyncSession(rdv, engines, world, timeout_s)


def sync_weights(
    send: Callable[[], Any], engines: Sequence[Any], meta: SyncMeta, version: int, timeout_s: float = 600.0
) -> dict:
    """Run one sync: every engine's ``receive_weights`` and the sender's ``send`` (launched by
    ``send()``, returning ObjectRef(s)) concurrently; returns the sender's stats. Raises
    WeightSyncError naming every failed party. Every collective inside the actors is bounded
    by the group's timeout (on NCCL too: ``group.SyncGroup``), so a hung party surfaces there;
    the driver waits ``timeout_s + 30`` at most."""
    import ray

    meta_d = meta.to_dict()
    engine_refs = [e.receive_weights.remote(meta_d, version) for e in engines]
    sent = send()
    sender_refs = sent if isinstance(sent, list) else [sent]
    deadline = time.monotonic() + timeout_s + _RAY_MARGIN_S
    errors, results = [], []
    for who, ref in [("sender", r) for r in sender_refs] + [(f"engine {i}", r) for i, r in enumerate(engine_refs)]:
        try:
            results.append(ray.get(ref, timeout=max(1.0, deadline - time.monotonic())))
        except Exception as e:  # noqa: BLE001 - collect every party's failure before raising
            cause = getattr(e, "cause", None) or e  # RayTaskError wraps the actor's exception
            errors.append(f"{who}: {type(cause).__name__}: {cause}")
    if errors:
        raise WeightSyncError(f"weight sync to version {version} failed: " + " | ".join(errors))
    return results[0] if isinstance(results[0], dict) else {"result": results[0]}
