"""The settings of one vLLM engine, shared by every config section that starts engines:
``rollout.engine``, ``critic.engine``, ``engine`` (capo-ray-eval) and ``judge.engine``
(capo-ray-critic-eval). How they become vLLM's arguments lives in one place,
``capo_ray.workers.vllm_engine.vllm_engine_args``.

Messages name the key relative to the section (``max_model_len: ...``); the strict loader
prefixes the section's path, so users read ``rollout.engine.max_model_len: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from capo_ray.config.strict import check

EngineDtype = Literal["auto", "float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class EngineSettings:
    # "auto": chosen for the device and its CPU by ``resolve_engine_dtype`` when the engine is
    # built: bf16 on CUDA and on CPUs with native bf16 (avx512_bf16/amx), else fp32.
    dtype: EngineDtype = "auto"
    tensor_parallel_size: int = 1  # GPUs per engine (one vLLM worker each)
    max_model_len: int = 1024  # prompt + response tokens
    enforce_eager: bool = True  # CPU: torch.compile reruns at every start (~90 s); GPU: set false
    gpu_memory_utilization: float = 0.5  # GPU only: share of device memory vLLM may take
    kv_cache_gib: float = 1.0  # CPU only: KV-cache size (fractions allowed)

    def __post_init__(self) -> None:
        check(self.tensor_parallel_size >= 1, "tensor_parallel_size: must be >= 1")
        check(self.max_model_len >= 2, "max_model_len: must be >= 2")
        check(0 < self.gpu_memory_utilization <= 1, "gpu_memory_utilization: must be in (0, 1]")
        check(self.kv_cache_gib > 0, "kv_cache_gib: must be > 0")


def resolve_engine_dtype(dtype: str, device: str) -> str:
    """The concrete dtype an engine runs in: the one call site that turns ``"auto"`` into a
    dtype, from the device and the CPU's capabilities (``capo_ray.hardware.resolve_dtype``)."""
    from capo_ray.hardware import resolve_dtype

    return resolve_dtype(dtype, device)
