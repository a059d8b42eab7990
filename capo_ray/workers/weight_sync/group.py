"""``SyncGroup``: one party's handle on the private sync group, with every wait bounded.

Why private: DeepSpeed (learner) and vLLM (engines) each own their process's default
torch.distributed group, so this group is built from the driver's TCPStore and directly
constructed backends, and never registered as the default.

Why bounded waits, and two backends on GPU: a gloo collective that times out raises, but an
NCCL ``wait()`` only makes the GPU stream wait; when the peer never comes, NCCL's watchdog
kills the whole process at its own timeout, so the sync's failure handling (engines marked
"mixed" or "old", the driver's WeightSyncError and the restart-and-resume path) would never
run. Here the small control messages (headers, statuses, failure flags) always go over gloo,
which raises on time-out; bulk buckets go over NCCL on GPU, and the CPU polls each bucket's
completion against the deadline. On a miss the group aborts its NCCL communicator (so the
watchdog has nothing left to kill for), marks itself broken and raises WeightSyncError, the
same error and recovery as on CPU. A broken group refuses further use at once instead of
hanging: the driver restarts the actors, which builds a fresh group.
"""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from capo_ray.workers.weight_sync.protocol import SyncGroupSpec, WeightSyncError

# The NCCL communicator's own timeout is longer than ours: our deadline must fire first.
_NCCL_TIMEOUT_MARGIN_S = 120.0
_POLL_MIN_S, _POLL_MAX_S = 1e-4, 5e-3  # poll fast for small messages, back off for big buckets


def wait_bounded(work: Any, timeout_s: float, what: str, on_timeout=None) -> None:
    """Wait for a collective's ``work`` at most ``timeout_s`` seconds, polling ``is_completed``
    (never an unbounded ``wait()``). On a miss call ``on_timeout`` and raise WeightSyncError."""
    deadline, pause = time.monotonic() + timeout_s, _POLL_MIN_S
    while not work.is_completed():
        if time.monotonic() > deadline:
            if on_timeout is not None:
                on_timeout()
            raise WeightSyncError(f"{what} did not complete within {timeout_s:.0f} s")
        time.sleep(pause)
        pause = min(2 * pause, _POLL_MAX_S)
    work.wait()  # completed: returns at once, and raises the collective's own error if any


def _gloo(store: Any, spec: SyncGroupSpec, timeout: timedelta) -> Any:
    opts = dist.ProcessGroupGloo._Options()
    opts._timeout = timeout
    opts._devices = [dist.ProcessGroupGloo.create_device(hostname=_local_ip_toward(spec.host))]
    return dist.ProcessGroupGloo(dist.PrefixStore("control/", store), spec.rank, spec.world_size, opts)


def _nccl(store: Any, spec: SyncGroupSpec) -> Any:
    opts = dist.ProcessGroupNCCL.Options()
    opts._timeout = timedelta(seconds=spec.timeout_s + _NCCL_TIMEOUT_MARGIN_S)
    return dist.ProcessGroupNCCL(dist.PrefixStore("data/", store), spec.rank, spec.world_size, opts)


class SyncGroup:
    """Broadcast from rank 0 and all-reduce(MAX) over the sync group. ``device`` is where
    bucket tensors must live (the current GPU with NCCL, else CPU)."""

    def __init__(self, spec: SyncGroupSpec) -> None:
        if spec.backend not in ("gloo", "nccl"):
            raise ValueError(f"weight-sync backend must be 'gloo' or 'nccl', got {spec.backend!r}")
        timeout = timedelta(seconds=spec.timeout_s)
        store = dist.TCPStore(spec.host, spec.port, is_master=False, timeout=timeout)
        prefix = dist.PrefixStore("capo_weight_sync/", store)
        self.spec = spec
        self.broken: str | None = None  # why the group can no longer be used
        self.control = _gloo(prefix, spec, timeout)
        if spec.backend == "nccl":
            self.data = _nccl(prefix, spec)  # forms its communicator lazily, at the first bucket
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.data, self.device = self.control, torch.device("cpu")
        self._store = store  # NCCL creates its communicator lazily, through the store

    # -- collectives -------------------------------------------------------------------------
    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Broadcast a bucket from rank 0 over the data backend (``tensor`` on ``device``)."""
        pg = self.data
        return self._run(lambda: pg.broadcast([tensor], _root0()), tensor, "a bucket broadcast")

    def max(self, value: int) -> int:
        t = torch.tensor([value], dtype=torch.int64)
        opts = dist.AllreduceOptions()
        opts.reduceOp = dist.ReduceOp.MAX
        self._run(lambda: self.control.allreduce([t], opts), t, "a failure-flag exchange")
        return int(t.item())

    def small(self, values: list[int] | None, n: int) -> list[int]:
        """Broadcast n int64 values from rank 0 (others pass None) over the control backend."""
        t = torch.zeros(n, dtype=torch.int64)
        if values is not None:
            t.copy_(torch.tensor(values, dtype=torch.int64))
        self._run(lambda: self.control.broadcast([t], _root0()), t, "a header broadcast")
        return [int(v) for v in t.tolist()]

    def _run(self, start, tensor: torch.Tensor, what: str) -> torch.Tensor:
        if self.broken is not None:
            raise WeightSyncError(f"the sync group is broken ({self.broken}); restart the actors")
        try:
            wait_bounded(start(), self.spec.timeout_s, what, on_timeout=self._abort_data)
        except Exception as err:  # a timed-out or failed collective leaves the group out of step
            self.broken = f"{type(err).__name__}: {err}"
            if isinstance(err, WeightSyncError):
                raise
            raise WeightSyncError(f"{what} failed: {type(err).__name__}: {err}") from err
        return tensor

    def _abort_data(self) -> None:
        # An NCCL op still in flight would otherwise trip the watchdog, which kills the process.
        if self.data is not self.control and hasattr(self.data, "abort"):
            try:
                self.data.abort()
            except Exception:  # noqa: BLE001 - best effort: we are raising anyway
                pass

    def close(self) -> None:
        """Release the backends (also the NCCL communicator and its GPU buffers)."""
        for pg in {id(self.data): self.data, id(self.control): self.control}.values():
            if hasattr(pg, "shutdown"):
                try:
                    pg.shutdown()
                except Exception:  # noqa: BLE001 - closing a broken group must not raise
                    pass
        self.broken = self.broken or "closed"


def _root0() -> Any:
    opts = dist.BroadcastOptions()
    opts.rootRank, opts.rootTensor = 0, 0
    return opts


def _local_ip_toward(host: str) -> str:
    """The address of the interface this process uses to reach ``host`` (gloo binds to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 1))  # UDP connect sends nothing: it only picks the route
        return s.getsockname()[0]
