"""build_ds_config: batch arithmetic, stage-specific sections, validation, and that
DeepSpeed's own config parser accepts every combination we emit."""

from __future__ import annotations

import os

import pytest

from capo_ray.workers.ds_config import build_ds_config


def _config(**overrides):
    args = dict(
        zero_stage=2,
        micro_batch_size=2,
        gradient_accumulation_steps=3,
        world_size=4,
        grad_clip=1.0,
        precision="fp32",
        device="cpu",
    )
    args.update(overrides)
    return build_ds_config(**args)


def test_batch_arithmetic():
    cfg = _config()
    # DeepSpeed insists train_batch_size == micro * accumulation * world: 2 * 3 * 4 = 24.
    assert cfg["train_batch_size"] == 24
    assert cfg["train_micro_batch_size_per_gpu"] == 2
    assert cfg["gradient_accumulation_steps"] == 3
    assert cfg["gradient_clipping"] == 1.0


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_stage_sections(stage):
    zero = _config(zero_stage=stage)["zero_optimization"]
    assert zero["stage"] == stage
    assert ("stage3_param_persistence_threshold" in zero) == (stage == 3)
    assert "offload_optimizer" not in zero and "offload_param" not in zero
    assert zero["overlap_comm"] is False  # CPU: no side stream to overlap on


def test_precision_sections():
    fp32 = _config(precision="fp32")
    assert fp32["bf16"] == {"enabled": False} and "data_types" not in fp32
    bf16 = _config(precision="bf16")
    assert bf16["bf16"] == {"enabled": True}
    assert bf16["data_types"] == {"grad_accum_dtype": "fp32"}


def test_offload_on_gpu():
    zero2 = _config(device="cuda", offload=True)["zero_optimization"]
    assert zero2["offload_optimizer"]["device"] == "cpu" and "offload_param" not in zero2
    zero3 = _config(device="cuda", offload=True, zero_stage=3)["zero_optimization"]
    assert zero3["offload_param"]["device"] == "cpu"
    assert zero3["overlap_comm"] is True


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"zero_stage": 0}, "zero_stage must be 1, 2 or 3"),
        ({"micro_batch_size": 0}, "micro_batch_size must be an integer >= 1"),
        ({"gradient_accumulation_steps": 1.5}, "gradient_accumulation_steps must be an integer"),
        ({"world_size": True}, "world_size must be an integer"),
        ({"grad_clip": -1.0}, "grad_clip must be >= 0"),
        ({"grad_clip": float("nan")}, "grad_clip must be >= 0"),
        ({"precision": "fp16"}, "precision 'fp16' is not one of"),
        ({"device": "tpu"}, "device 'tpu' is not one of"),
        ({"offload": True}, "already there"),
    ],
)
def test_validation_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(**overrides)


@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_deepspeed_parses_it(stage, precision, monkeypatch):
    monkeypatch.setenv("DS_ACCELERATOR", os.environ.get("DS_ACCELERATOR", "cpu"))
    from deepspeed.runtime.config import DeepSpeedConfig

    # Without a process group DeepSpeed assumes world size 1, so build for 1 rank.
    cfg = _config(zero_stage=stage, precision=precision, world_size=1)
    parsed = DeepSpeedConfig(cfg)
    assert parsed.train_batch_size == 6
    assert parsed.zero_optimization_stage == stage
    assert parsed.gradient_clipping == 1.0
