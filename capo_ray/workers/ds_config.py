"""The DeepSpeed config of the policy learner, built from explicit arguments.

A pure function (no deepspeed import) so that every combination can be validated in
milliseconds by a test, and a bad combination fails before any actor starts. No ``"auto"``
values: HF's ``HfDeepSpeedConfig`` (ZeRO-3 partitioned loading) needs concrete numbers, and
explicit numbers make the batch arithmetic visible in logs.

No ``optimizer`` / ``scheduler`` sections: the learner passes a client optimizer (torch AdamW,
or DeepSpeedCPUAdam when offloading) and keeps the learning rate constant.
"""

from __future__ import annotations

from typing import Any

PRECISIONS = ("fp32", "bf16")
DEVICES = ("cpu", "cuda")

# Communication bucket sizes (elements). DeepSpeed's defaults (5e8) are tuned for multi-GB
# models on GPUs; on a CPU box they would allocate far more staging memory than the model.
_BUCKET_ELEMENTS = 50_000_000
_STAGE3_PREFETCH_ELEMENTS = 10_000_000
# ZeRO-3 keeps parameters below this size replicated on every rank (layer norms, biases):
# gathering thousands of tiny tensors one by one costs more than storing them.
_STAGE3_PERSISTENCE_ELEMENTS = 100_000


def build_ds_config(
    *,
    zero_stage: int,
    micro_batch_size: int,
    gradient_accumulation_steps: int,
    world_size: int,
    grad_clip: float,
    precision: str,
    device: str,
    offload: bool = False,
) -> dict[str, Any]:
    """DeepSpeed config dict for one learner engine.

    Args:
        zero_stage: 1 (optimizer state sharded), 2 (+ gradients), 3 (+ parameters).
        micro_batch_size: sequences per forward/backward on one rank.
        gradient_accumulation_steps: micro-batches per optimizer step on one rank.
        world_size: number of learner ranks (data parallel).
        grad_clip: max global gradient norm; 0 disables clipping.
        precision: "fp32", or "bf16" (bf16 weights and activations, fp32 master weights and
            fp32 gradient accumulation inside the ZeRO optimizer).
        device: "cpu" or "cuda".
        offload: keep optimizer state (and, at stage 3, parameters) in CPU memory; only
            meaningful with device="cuda" (on CPU everything already lives in CPU memory).
    """
    _validate(
        zero_stage, micro_batch_size, gradient_accumulation_steps, world_size, grad_clip, precision, device, offload
    )
    zero: dict[str, Any] = {
        "stage": zero_stage,
        "contiguous_gradients": True,
        # Overlapping reduction with backward needs a separate stream: a GPU feature.
        "overlap_comm": device == "cuda",
        "reduce_bucket_size": _BUCKET_ELEMENTS,
        "allgather_bucket_size": _BUCKET_ELEMENTS,
    }
    if zero_stage == 3:
        zero["stage3_prefetch_bucket_size"] = _STAGE3_PREFETCH_ELEMENTS
        zero["stage3_param_persistence_threshold"] = _STAGE3_PERSISTENCE_ELEMENTS
        # Full weights are exported by gathering (GatheredParameters), never by a 16-bit
        # consolidated state dict at save time, which would gather everything at once.
        zero["stage3_gather_16bit_weights_on_model_save"] = False
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if zero_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    config: dict[str, Any] = {
        "train_batch_size": micro_batch_size * gradient_accumulation_steps * world_size,
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "gradient_clipping": float(grad_clip),
        "zero_optimization": zero,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": False},
        "steps_per_print": 1_000_000_000,  # the learner reports its own metrics
        "wall_clock_breakdown": False,
    }
    if precision == "bf16":
        # Summing micro-batch gradients in bf16 loses low bits at every addition.
        config["data_types"] = {"grad_accum_dtype": "fp32"}
    return config


def _validate(
    zero_stage: int,
    micro_batch_size: int,
    gradient_accumulation_steps: int,
    world_size: int,
    grad_clip: float,
    precision: str,
    device: str,
    offload: bool,
) -> None:
    if zero_stage not in (1, 2, 3):
        raise ValueError(f"zero_stage must be 1, 2 or 3, got {zero_stage!r}")
    for name, value in (
        ("micro_batch_size", micro_batch_size),
        ("gradient_accumulation_steps", gradient_accumulation_steps),
        ("world_size", world_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not grad_clip >= 0:
        raise ValueError(f"grad_clip must be >= 0 (0 disables clipping), got {grad_clip!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {list(PRECISIONS)}")
    if device not in DEVICES:
        raise ValueError(f"device {device!r} is not one of {list(DEVICES)}")
    if offload and device != "cuda":
        raise ValueError(
            "offload=True moves state from GPU to CPU memory; with device='cpu' it is already there"
        )
