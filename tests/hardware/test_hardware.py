"""CPU capability detection and the dtype / thread / environment choices made from it."""

from __future__ import annotations

import logging

import pytest

from capo_ray import hardware
from capo_ray.hardware import CpuInfo, choose_dtype, parse_cpuinfo, resolve_dtype

ZEN1 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx f16c fma avx2 bmi2
processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx f16c fma avx2 bmi2
"""
SAPPHIRE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu avx2 fma avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8
"""
COOPER = "model name\t: Intel(R) Xeon(R) Cooper\nflags\t: avx2 fma avx512f avx512_bf16\n"
SKYLAKE = "model name\t: Intel(R) Xeon(R) Gold 6148\nflags\t: avx2 fma avx512f avx512bw\n"


def test_parse_reads_first_processor_model_and_flags():
    info = parse_cpuinfo(ZEN1, cores=2)
    assert info.model == "AMD EPYC"
    assert {"avx2", "fma"} <= info.flags and "avx512f" not in info.flags
    assert info.cores == 2


@pytest.mark.parametrize(
    "text, native",
    [(ZEN1, False), (SKYLAKE, False), (COOPER, True), (SAPPHIRE, True)],
)
def test_native_bf16_only_with_avx512_bf16_or_amx(text, native):
    assert parse_cpuinfo(text, cores=4).native_bf16 is native


def test_auto_is_fp32_where_bf16_is_emulated_and_bf16_where_native():
    assert resolve_dtype("auto", "cpu", parse_cpuinfo(ZEN1, 2)) == "float32"
    assert resolve_dtype("auto", "cpu", parse_cpuinfo(SKYLAKE, 2)) == "float32"  # AVX-512 alone is not enough
    assert resolve_dtype("auto", "cpu", parse_cpuinfo(SAPPHIRE, 2)) == "bfloat16"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_explicit_dtype_always_wins(dtype):
    for text in (ZEN1, SAPPHIRE):
        assert resolve_dtype(dtype, "cpu", parse_cpuinfo(text, 2)) == dtype


def test_bad_dtype_and_device_fail_by_name():
    with pytest.raises(ValueError, match="'fp8'"):
        resolve_dtype("fp8", "cpu")
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_dtype("auto", "tpu")


def test_describe_names_model_and_present_and_missing_flags():
    line = parse_cpuinfo(ZEN1, 2).describe()
    assert line.startswith("AMD EPYC (2 cores; avx2 fma")
    assert "no avx512f avx512_bf16 amx_bf16" in line


def test_choose_dtype_logs_cpu_and_choice(caplog):
    with caplog.at_level(logging.INFO, logger="capo_ray"):
        assert choose_dtype("auto", "cpu", "rollout engine", parse_cpuinfo(ZEN1, 2)) == "float32"
    assert any("rollout engine dtype: auto -> float32 on AMD EPYC" in r.getMessage() for r in caplog.records)


def test_choose_dtype_warns_for_explicit_bf16_without_native_support(caplog):
    with caplog.at_level(logging.INFO, logger="capo_ray"):
        assert choose_dtype("bfloat16", "cpu", "critic engine", parse_cpuinfo(ZEN1, 2)) == "bfloat16"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "no native bf16" in warnings[0].getMessage()


def test_this_machine_is_detected():
    info = hardware.cpu_info()
    assert isinstance(info, CpuInfo) and info.model and info.cores >= 1
    assert resolve_dtype("auto", "cpu") == ("bfloat16" if info.native_bf16 else "float32")


def test_stage_threads_uses_every_usable_core_unless_asked():
    assert hardware.stage_threads(3) == 3
    assert hardware.stage_threads(0) == hardware.usable_cores() >= 1


def test_worker_env_keeps_the_users_own_malloc_setting(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert int(hardware.cpu_worker_env()["MALLOC_MMAP_THRESHOLD_"]) >= 1 << 20
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "12345")
    assert "MALLOC_MMAP_THRESHOLD_" not in hardware.cpu_worker_env()


def test_engine_and_learner_threads_follow_the_cores(monkeypatch):
    monkeypatch.setattr(hardware, "usable_cores", lambda: 16)
    assert hardware.engine_threads() == 8 and hardware.engine_threads(3) == 3
    assert hardware.learner_threads(0, ranks=2) == 8 and hardware.learner_threads(2, ranks=2) == 2
    monkeypatch.setattr(hardware, "usable_cores", lambda: 2)
    assert hardware.engine_threads() == 1
    assert hardware.learner_threads(0, ranks=4) == 1  # never 0
