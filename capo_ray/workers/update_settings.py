"""``UpdateSettings``: how one policy update trains on a step's batch. Built once by the driver
from config (``algo.*``, ``learner.micro_batch_size``) and passed unchanged from the driver's
``Actors.train`` through ``LearnerGroup.train`` to every ``LearnerWorker.train``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from capo_ray.core.losses import LOSS_AGGREGATIONS


@dataclass(frozen=True)
class UpdateSettings:
    clip_low: float
    clip_high: float
    kl_coef: float
    agg: str  # a core.losses.LOSS_AGGREGATIONS mode
    ppo_epochs: int
    mini_batch_size: int  # rows per optimizer step over all ranks
    micro_batch_size: int  # rows per forward/backward on one rank
    # "policy": the clipped PPO objective with advantages (RL); "sft": the masked NLL of the
    # response tokens (the SFT cold start, capo_ray/sft), advantages and log probs unused.
    objective: Literal["policy", "sft"] = "policy"
    # The rollouts are older than the weights (trainer.rollout_ahead): the PPO ratio must use
    # their behaviour log-probs, never the on-policy shortcut.
    off_policy: bool = False

    def __post_init__(self) -> None:
        if self.agg not in LOSS_AGGREGATIONS:
            raise ValueError(f"unknown loss aggregation {self.agg!r}; valid: {sorted(LOSS_AGGREGATIONS)}")
        if self.objective not in ("policy", "sft"):
            raise ValueError(f"objective must be 'policy' or 'sft', got {self.objective!r}")
        if self.ppo_epochs < 1:
            raise ValueError(f"ppo_epochs must be >= 1, got {self.ppo_epochs}")
        if self.mini_batch_size < 1 or self.micro_batch_size < 1:
            raise ValueError("mini_batch_size and micro_batch_size must be >= 1")

    @property
    def loss_args(self) -> dict[str, Any]:
        """The keyword arguments of ``core.losses.policy_loss``."""
        return {"clip_low": self.clip_low, "clip_high": self.clip_high, "kl_coef": self.kl_coef, "agg": self.agg}

    def with_mini_batch(self, mini_batch_size: int) -> "UpdateSettings":
        return replace(self, mini_batch_size=mini_batch_size)
