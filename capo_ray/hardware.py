"""What this machine's CPU can do, and the choices that follow from it (docs/performance.md).

One place for: the CPU model and its instruction-set flags, whether it has native bfloat16
arithmetic, what ``dtype: auto`` means for an engine, how many threads a stage may use, and
the environment that keeps CPU workers from burning system time.

Why dtype matters so much on CPU: without AVX512-BF16 or AMX-BF16, every bfloat16 matmul is
emulated (convert to fp32, compute, convert back), so a bf16 engine runs several times slower
than fp32 (measured on an AVX2-only AMD EPYC: vLLM 21.7 tokens/s in bf16 vs 77.4 in fp32).
With those instructions bf16 is the faster choice (half the memory traffic). ``auto`` picks
per machine; an explicit dtype is always used as given.

Nothing here imports ray, vllm or deepspeed; torch only inside functions, for CUDA checks.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("capo_ray")

# x86 flags (as /proc/cpuinfo names them) that make bf16 matmuls native rather than emulated.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Flags worth naming beside any timing: they decide which kernels run.
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class CpuInfo:
    model: str  # e.g. "AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+"
    flags: frozenset[str]
    cores: int  # logical CPUs this process may run on

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)

    def describe(self) -> str:
        """``AMD EPYC (2 cores; avx2 fma, no avx512f avx512_bf16 amx_bf16)``: the line to put
        beside a figure or a dtype choice."""
        have = [f for f in REPORTED_FLAGS if f in self.flags]
        lack = [f for f in REPORTED_FLAGS if f not in self.flags]
        parts = [" ".join(have)] if have else []
        if lack:
            parts.append("no " + " ".join(lack))
        return f"{self.model} ({self.cores} cores; {', '.join(parts)})"


def parse_cpuinfo(text: str, cores: int) -> CpuInfo:
    """The first processor's model name and flags from /proc/cpuinfo text."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # "Features" on aarch64
            flags = frozenset(value.split())
        if model and flags:
            break
    return CpuInfo(model=model or platform.processor() or platform.machine() or "unknown CPU",
                   flags=flags, cores=cores)


def usable_cores() -> int:
    """Logical CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


@lru_cache(maxsize=1)
def cpu_info(path: str = "/proc/cpuinfo") -> CpuInfo:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:  # not Linux: model from platform, no flags (auto then picks fp32)
        text = ""
    return parse_cpuinfo(text, usable_cores())


def resolve_dtype(dtype: str, device: str, info: CpuInfo | None = None) -> str:
    """The dtype an engine should compute in. An explicit dtype is returned unchanged;
    ``auto`` is bfloat16 on CUDA (float16 on GPUs without bf16) and on CPUs with native bf16
    instructions, else float32."""
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r} is not 'auto' or one of {DTYPES}")
        return dtype
    if device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device != "cpu":
        raise ValueError(f"device {device!r} is not 'cpu' or 'cuda'")
    return "bfloat16" if (info or cpu_info()).native_bf16 else "float32"


def choose_dtype(dtype: str, device: str, what: str, info: CpuInfo | None = None) -> str:
    """``resolve_dtype`` plus the one log line that says what was chosen and why."""
    chosen = resolve_dtype(dtype, device, info)
    if device == "cpu":
        info = info or cpu_info()
        if dtype == "auto":
            why = "native bf16" if info.native_bf16 else "bf16 would be emulated (no avx512_bf16/amx_bf16)"
            log.info("%s dtype: auto -> %s on %s: %s", what, chosen, info.describe(), why)
        elif chosen == "bfloat16" and not info.native_bf16:
            log.warning("%s dtype: bfloat16 as configured, but %s has no native bf16: expect it several "
                        "times slower than float32 (dtype=auto picks float32 here)", what, info.describe())
        else:
            log.info("%s dtype: %s as configured on %s", what, chosen, info.describe())
    else:
        log.info("%s dtype: %s%s on CUDA", what, chosen, " (auto)" if dtype == "auto" else "")
    return chosen


def stage_threads(requested: int = 0) -> int:
    """Threads for a CPU stage that runs alone (stages of a step run one after another):
    ``requested`` when > 0, else every core this process may use."""
    return requested if requested > 0 else usable_cores()


def engine_threads(requested: int = 0) -> int:
    """Compute threads for a CPU vLLM engine: ``requested`` when > 0, else half the cores
    (at least 1). Decoding a small batch is many small matmuls, where OpenMP threads mostly
    wait at barriers: measured on 2 cores, 2 threads doubled the engine's CPU time and gained
    no wall time, and vLLM itself keeps cores back for its scheduler."""
    return requested if requested > 0 else max(1, usable_cores() // 2)


def learner_threads(requested: int, ranks: int) -> int:
    """Threads per learner rank: ``requested`` when > 0, else this node's cores split evenly
    over the ``ranks`` (at least 1). Ranks compute at the same time, so more would oversubscribe."""
    return requested if requested > 0 else max(1, usable_cores() // max(1, ranks))


def cpu_worker_env(threads: int = 0) -> dict[str, str]:
    """Environment for CPU worker processes (learner ranks, reference, engines); ``threads``
    > 0 sets their OpenMP thread count (Ray would set 1 for an actor with a fractional CPU).

    glibc serves large blocks (activations, gradients: > 128 KiB) with fresh mmap()s and
    returns them on free, so every training step page-faults its whole working set in again
    (zeroed by the kernel): that is the system time of CPU training. Raising the mmap and
    trim thresholds keeps freed blocks in the heap for reuse. These are glibc's documented
    tunables (other C libraries ignore them); a user's own setting wins.
    """
    env = {
        "MALLOC_MMAP_THRESHOLD_": str(1 << 30),  # bytes: blocks up to 1 GiB come from the heap
        "MALLOC_TRIM_THRESHOLD_": str(4 << 30),  # keep up to 4 GiB of freed heap for reuse
        "MALLOC_TOP_PAD_": str(64 << 20),  # grow the heap in 64 MiB steps, not per block
    }
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    return {k: v for k, v in env.items() if k not in os.environ}
