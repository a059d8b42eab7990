"""One engine section (``EngineSettings``) in every config that starts engines, and the one
constructor of vLLM's arguments from it."""

import dataclasses

import pytest

from capo_ray.config import ConfigError
from capo_ray.config.compose import compose_config, compose_dict
from capo_ray.config.engine import EngineSettings
from capo_ray.hardware import resolve_dtype
from capo_ray.workers.vllm_engine import EngineConfig, engine_env, executor_backend, vllm_engine_args

FIELDS = {f.name for f in dataclasses.fields(EngineSettings)}


@pytest.mark.parametrize(
    "config_name, path",
    [("config", ["rollout", "engine"]), ("eval", ["engine"]), ("critic_eval", ["judge", "engine"])],
)
def test_every_engine_section_mirrors_the_settings(config_name, path):
    data = compose_dict(config_name=config_name)
    for key in path:
        data = data[key]
    assert set(data) == FIELDS


def test_llm_critic_yaml_mirrors_the_settings():
    data = compose_dict(["critic=llm"])
    assert set(data["critic"]["engine"]) == FIELDS
    cfg = compose_config(["critic=llm"])
    assert cfg.critic.engine.max_model_len == 2048 and cfg.rollout.engine.max_model_len == 1024


def test_gpu_profiles_set_the_critic_engine():
    cfg = compose_config(["cluster=gpu_2node"])
    assert cfg.critic.engine == EngineSettings(
        dtype="auto", tensor_parallel_size=4, max_model_len=8192, enforce_eager=False,
        gpu_memory_utilization=0.9, kv_cache_gib=1.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["rollout.engine.max_model_len=50"], "rollout.engine.max_model_len: must exceed max_new_tokens"),
        (["rollout.engine.gpu_memory_utilization=1.5"], "rollout.engine.gpu_memory_utilization: must be in (0, 1]"),
        (["rollout.engine.dtype=int8"], "rollout.engine.dtype: 'int8' is not one of"),
        (["+rollout.engine.tp=2"], "rollout.engine: unknown key 'tp'"),
        (["critic=llm", "critic.engine.tensor_parallel_size=0"], "critic.engine.tensor_parallel_size: must be >= 1"),
        (["critic=llm", "critic.engine.kv_cache_gib=0"], "critic.engine.kv_cache_gib: must be > 0"),
    ],
)
def test_engine_mistakes_name_the_nested_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        compose_config(overrides)
    assert message in str(err.value)


@pytest.mark.parametrize("tp, backend", [(1, "uni"), (2, "mp"), (4, "mp"), (8, "mp")])
def test_engine_args_per_tensor_parallel_size(tp, backend):
    settings = EngineSettings(tensor_parallel_size=tp, max_model_len=8192, enforce_eager=False, gpu_memory_utilization=0.9)
    args = vllm_engine_args(EngineConfig(model="/m", seed=3, settings=settings, device="cuda"))
    assert executor_backend(tp) == backend
    assert args["tensor_parallel_size"] == tp and args["distributed_executor_backend"] == backend
    assert args["gpu_memory_utilization"] == 0.9 and "kv_cache_memory_bytes" not in args
    assert (args["model"], args["seed"], args["max_model_len"], args["enforce_eager"]) == ("/m", 3, 8192, False)


def test_cpu_engine_args_size_the_kv_cache_in_bytes():
    args = vllm_engine_args(EngineConfig(model="/m", seed=0, settings=EngineSettings(kv_cache_gib=0.25)))
    assert args["kv_cache_memory_bytes"] == (1 << 30) // 4 and "gpu_memory_utilization" not in args
    assert args["distributed_executor_backend"] == "uni" and "worker_extension_cls" not in args


def test_auto_dtype_is_resolved_for_the_machine_in_the_engine_args():
    cfg = EngineConfig(model="/m", seed=0, settings=EngineSettings(dtype="auto"))
    assert vllm_engine_args(cfg)["dtype"] == resolve_dtype("auto", "cpu") in ("bfloat16", "float32")
    explicit = EngineConfig(model="/m", seed=0, settings=EngineSettings(dtype="float16"))
    assert vllm_engine_args(explicit)["dtype"] == "float16"
    assert compose_config().rollout.engine.dtype == "auto" and compose_config(["critic=llm"]).critic.engine.dtype == "auto"


def test_engine_env_is_decided_by_the_device():
    from capo_ray.hardware import cpu_worker_env, engine_threads

    # CPU: in-process engine core plus the CPU worker settings (threads, allocator); the KV
    # cache is an engine argument, never the legacy env var.
    assert engine_env("cpu") == {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", **cpu_worker_env(engine_threads(0))}
    assert "VLLM_CPU_KVCACHE_SPACE" not in engine_env("cpu")
    assert engine_env("cuda") == {}


def test_a_cuda_engine_without_gpus_fails_at_start_up():
    from capo_ray.workers.vllm_engine import check_device

    import torch

    if torch.cuda.device_count() >= 4:
        pytest.skip("this machine has GPUs")
    cfg = EngineConfig(model="/m", seed=0, settings=EngineSettings(tensor_parallel_size=4), device="cuda")
    with pytest.raises(RuntimeError, match="sees .* GPU"):
        check_device(cfg)


@pytest.mark.parametrize("version, ok", [("0.32.0", True), ("0.32.1", True), ("0.10.2", False), ("0.33.0", False)])
def test_unsupported_vllm_releases_fail_with_the_fix(version, ok):
    from capo_ray.workers.vllm_engine import check_vllm_version

    if ok:
        check_vllm_version(version)
    else:
        with pytest.raises(RuntimeError, match="pip install 'vllm==0.32.0'"):
            check_vllm_version(version)


def test_the_installed_vllm_is_supported():
    vllm = pytest.importorskip("vllm")
    from capo_ray.workers.vllm_engine import check_vllm_version

    check_vllm_version(vllm.__version__)
