"""Weight sync learner -> rollout engines: bucketed broadcasts over a private process group.
One sync, end to end, is read in this package alone:

- ``protocol``: the group's address (``SyncGroupSpec``), the bucket layout (``SyncMeta``,
  ``plan_buckets``) and ``WeightSyncError``;
- ``group``: ``SyncGroup``, one party's collectives, every wait bounded (on NCCL too);
- ``sender``: ``WeightSender`` in the learner's rank 0 (and the consumers that drive it);
- ``receiver``: ``WeightReceiver`` and the vLLM worker extension on each engine worker;
- ``session``: the driver's side: the rendezvous store, forming the group, one sync, closing.

Ranks: 0 is the learner's rank 0; engine e's worker w is ``offset(e) + w``. Protocol of one
sync (every step a collective, every collective bounded by ``timeout_s``):
  1. header broadcast [fingerprint, buckets, version]; each receiver compares it with the meta
     the driver gave it; an all-reduce(MAX) of "mismatch" flags makes everyone raise together;
  2. per bucket: a [status, index, numel] broadcast (status ABORT lets a sender that meets a
     tensor not matching the meta stop everyone cleanly), then the flat bucket itself;
  3. an all-reduce(MAX) of "load failed" flags, so the sender learns that an engine failed.
The meta (names, shapes, dtypes, bucket layout) is planned once by the sender and handed to
the engines through Ray as a plain dict. Only ``receiver``'s extension touches vLLM, inside
vLLM's workers; the learner imports this package without vLLM.
"""

from capo_ray.workers.weight_sync.group import SyncGroup
from capo_ray.workers.weight_sync.protocol import SyncGroupSpec, SyncMeta, WeightSyncError, plan_buckets
from capo_ray.workers.weight_sync.receiver import EXTENSION, WeightReceiver
from capo_ray.workers.weight_sync.sender import PlanWith, SendWith, WeightSender
from capo_ray.workers.weight_sync.session import WeightSyncSession, connect_weight_sync, sync_weights

__all__ = [
    "EXTENSION",
    "PlanWith",
    "SendWith",
    "SyncGroup",
    "SyncGroupSpec",
    "SyncMeta",
    "WeightReceiver",
    "WeightSender",
    "WeightSyncError",
    "WeightSyncSession",
    "connect_weight_sync",
    "plan_buckets",
    "sync_weights",
]
