"""Typed config of ``python -m capo_ray.sft`` (``conf/sft.yaml``): the policy (``model``), the
task whose solutions are learned (``data``; or ``sft.pairs``), the learner (``learner``: the
RL learner's group, so ZeRO stage, ranks, lr and micro-batch mean the same), and ``sft``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from capo_ray.config.components import DataConfig, LearnerConfig, ModelConfig
from capo_ray.config.strict import check


@dataclass
class SftSettings:
    pairs: str | None = None  # jsonl of chat pairs; null: solutions of data's task
    output: str = "runs/sft"  # the HF folder written at the end (plus sft_metrics.jsonl)
    steps: int = 50
    batch_size: int = 16  # examples per optimizer step
    max_len: int = 512  # tokens per example (prompt + response); longer responses are cut
    backend: Literal["deepspeed", "torch"] = "deepspeed"  # torch: in-process, tiny models only
    schedule: Literal["constant", "cosine"] = "constant"  # cosine and warmup: torch backend
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # cosine floor, as a share of learner.lr
    # chain solutions only: per-step shares of wrong results (capo_ray/data/chain.py)
    propagate_error: float = 0.0
    slip_error: float = 0.0
    habit_error: float = 0.0  # share of multiplication steps with a systematic wrong product
    progress_bar: bool = True
    num_cpus: int | None = None  # local Ray started for the deepspeed backend (None: all cores)

    def __post_init__(self) -> None:
        check(self.steps >= 1 and self.batch_size >= 1, "sft.steps/batch_size: must be >= 1")
        check(self.max_len >= 2, "sft.max_len: must be >= 2")
        check(self.warmup_steps >= 0 and 0 <= self.min_lr_ratio <= 1,
              "sft.warmup_steps/min_lr_ratio: need warmup_steps >= 0 and min_lr_ratio in [0, 1]")
        check(self.propagate_error >= 0 and self.slip_error >= 0 and self.propagate_error + self.slip_error <= 1,
              "sft.propagate_error/slip_error: need both >= 0 and a sum <= 1")
        check(0 <= self.habit_error <= 1, "sft.habit_error: must be in [0, 1]")
        check(self.backend == "torch" or (self.schedule == "constant" and self.warmup_steps == 0),
              "sft.schedule/warmup_steps: the deepspeed backend trains at the constant learner.lr; "
              "use sft.backend=torch for a schedule")

    def solution_errors(self):
        """The errors written into chain solutions (``capo_ray.data.chain.SolutionErrors``)."""
        from capo_ray.data.chain import SolutionErrors

        return SolutionErrors(self.propagate_error, self.slip_error, self.habit_error)


@dataclass
class SftConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(name="chain", operand_max=9))
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    sft: SftSettings = field(default_factory=SftSettings)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sft.backend == "deepspeed":
            check(self.sft.batch_size % self.learner.num_workers == 0,
                  f"sft.batch_size = {self.sft.batch_size} must divide evenly across "
                  f"learner.num_workers = {self.learner.num_workers}")
