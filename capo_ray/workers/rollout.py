"""The rollout engine actor (``RolloutWorker``): a vLLM engine serving the policy, and the
engine's end of the weight sync (the protocol and the driver's session: ``weight_sync/``).

``RolloutWorker`` is a plain class; the driver starts it like every role
(``actor_group.start_group`` with the rollout's ``ActorOptions``).
Every sample is tagged with the weight version the engine held when it sampled, and an engine
whose weights a failed sync left mixed refuses to generate (docs/algorithm.md: never silently generate
with stale weights).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

from capo_ray.workers.detokenize import incremental_offsets
from capo_ray.workers.vllm_engine import EngineConfig, SamplingSpec, VLLMEngine
from capo_ray.workers.weight_sync import EXTENSION, SyncGroupSpec, WeightSyncError


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

    # --- weight sync (engine side; the protocol is in weight_sync/) ---------------------------

    def num_sync_ranks(self) -> int:
        """How many ranks this engine adds to the sync group (one per vLLM worker)."""
        return self.cfg.settings.tensor_parallel_size

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
