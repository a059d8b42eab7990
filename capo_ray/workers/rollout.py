"""Rollout engine actor (``RolloutWorker``) and the driver-side weight-sync orchestration.

``RolloutWorker`` is a plain class; the driver wraps it, e.g.
``ray.remote(num_cpus=1)(RolloutWorker).options(scheduling_strategy=<placement group bundle>,
runtime_env={"env_vars": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", ...}}).remote(cfg)``.
Every sample is tagged with the weight version the engine held when it sampled, and an engine
whose weights a failed sync left mixed refuses to generate (docs/algorithm.md: never silently generate
with stale weights).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from capo_ray.workers.detokenize import incremental_offsets
from capo_ray.workers.vllm_engine import EngineConfig, SamplingSpec, VLLMEngine
from capo_ray.workers.weight_sync import SyncGroupSpec, SyncMeta, WeightSyncError

EXTENSION = "capo_ray.workers.vllm_engine.WeightSyncExtension"


@dataclass
class RolloutSample:
    """One sampled response. ``token_offsets[i]`` is the character span of ``response_ids[i]``
    in ``response_text`` (see ``detokenize.incremental_offsets``); all lists have length T."""

    response_ids: list[int]
    response_text: str  # decode(response_ids, skip_special_tokens=True): includes stop strings
    token_offsets: list[tuple[int, int]]
    logprobs: list[float]  # behaviour logprob of each sampled token (EngineConfig.logprobs_mode)
    finish_reason: str  # "stop" (EOS or stop string) | "length"
    weight_version: int


class RolloutWorker:
    """A vLLM engine serving the policy. ``weight_version`` starts at ``initial_version``
    (the version of the weights in ``cfg.model``) and follows every successful sync."""

    def __init__(self, cfg: EngineConfig, initial_version: int = 0) -> None:
        if cfg.worker_extension_cls not in ("", EXTENSION):
            raise ValueError(f"RolloutWorker needs worker_extension_cls={EXTENSION!r} or ''")
        self.cfg = replace(cfg, worker_extension_cls=EXTENSION)
        self.engine = VLLMEngine(self.cfg)
        self.tokenizer = self.engine.tokenizer()
        self._version = initial_version
        self._broken: str | None = None  # why the weights cannot be trusted, if they cannot

    def weight_version(self) -> int:
        return self._version

    def generate(
        self,
        prompt_token_ids: list[list[int]],
        n: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[RolloutSample]]:
        """n samples for each prompt [P prompts -> P lists of n], tagged with the version.
        ``seed``: reseed the engine's sampler first (the trainer passes one per step)."""
        if self._broken is not None:
            raise WeightSyncError(f"engine weights are not usable: {self._broken}; sync weights first")
        if seed is not None:
            self.engine.collective_rpc("capo_reseed", args=(seed,))
        spec = SamplingSpec(n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, stop=tuple(stop or ()))
        version = self._version  # generate and sync never interleave: actor calls are serial
        outputs = self.engine.generate(prompt_token_ids, spec)
        return [[self._sample(s, version) for s in out.samples] for out in outputs]

    def _sample(self, s, version: int) -> RolloutSample:
        text, offsets = incremental_offsets(self.tokenizer, s.token_ids)
        return RolloutSample(s.token_ids, text, offsets, s.logprobs, s.finish_reason, version)

    # --- weight sync (engine side; see weight_sync.py for the protocol) -----------------------

    def num_sync_ranks(self) -> int:
        """How many ranks this engine adds to the sync group (one per vLLM worker)."""
        return self.cfg.tensor_parallel_size

    def init_sync_group(self, spec: SyncGroupSpec) -> list[int]:
        """Join the sync group; ``spec.rank`` is this engine's rank offset. Blocks until the
        whole group has joined, so call it concurrently with the sender's construction."""
        return self.engine.collective_rpc("capo_init_sync_group", args=(asdict(spec),))

    def receive_weights(self, meta: dict, version: int) -> dict:
        """Receive a sync (concurrently with the sender's ``send``) and make ``version`` live."""
        start = time.perf_counter()
        try:
            results = self.engine.collective_rpc("capo_receive_weights", args=(meta, version))
        except Exception as e:  # a worker died or timed out mid-sync: its weights are unknown
            self._broken = f"sync to version {version} crashed: {type(e).__name__}: {e}"
            raise
        if all(r["ok"] for r in results):
            self.engine.reset_prefix_cache()  # cached KV blocks hold old-weight activations
            self._version, self._broken = version, None
            return {"seconds": time.perf_counter() - start, "version": version}
        errors = "; ".join(str(r["error"]) for r in results if not r["ok"])
        if any(r["state"] != "old" for r in results):
            self._broken = f"failed sync to version {version}: {errors}"
            self.engine.reset_prefix_cache()
        raise WeightSyncError(f"weight sync to version {version} failed on this engine: {errors}")

    def close_sync_group(self) -> None:
        self.engine.collective_rpc("capo_close_sync_group")


# --- driver side ----------------------------------------------------------------------------


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
        self.store = dist.TCPStore(
            host, self.port, is_master=True, wait_for_workers=False,
            timeout=timedelta(seconds=timeout_s), master_listen_fd=sock.detach(),
        )  # fmt: skip


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


class WeightSyncSession:
    """What ``connect_weight_sync`` built: keep it alive while the group is used."""

    def __init__(self, rendezvous: Rendezvous, world_size: int, timeout_s: float) -> None:
        self.rendezvous, self.world_size, self.timeout_s = rendezvous, world_size, timeout_s


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
    _get(sender_refs + refs, timeout_s + 30, "forming the weight-sync group")
    return WeightSyncSession(rdv, world, timeout_s)


def sync_weights(
    send: Callable[[], Any], engines: Sequence[Any], meta: SyncMeta, version: int, timeout_s: float = 600.0
) -> dict:
    """Run one sync: every engine's ``receive_weights`` and the sender's ``send`` (launched by
    ``send()``, returning ObjectRef(s)) concurrently; returns the sender's stats. Raises
    WeightSyncError naming every failed party; a hung party surfaces as the process group's
    timeout inside the actors, or after ``timeout_s + 30`` here."""
    import ray

    meta_d = meta.to_dict()
    engine_refs = [e.receive_weights.remote(meta_d, version) for e in engines]
    sent = send()
    sender_refs = sent if isinstance(sent, list) else [sent]
    deadline = time.monotonic() + timeout_s + 30
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
