"""The whole run's config and the checks that span components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capo_ray.config.components import (
    AlgoConfig,
    ClusterConfig,
    CriticConfig,
    DataConfig,
    LearnerConfig,
    LoggingConfig,
    ModelConfig,
    RolloutConfig,
    TrainerConfig,
)
from capo_ray.config.strict import check, from_dict


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        batch = self.data.prompts_per_step * self.rollout.n_samples
        per_rank = batch // self.learner.num_workers
        check(
            batch % self.learner.num_workers == 0,
            f"data.prompts_per_step * rollout.n_samples = {batch} responses per step must divide "
            f"evenly across learner.num_workers = {self.learner.num_workers}",
        )
        check(
            per_rank % self.algo.mini_batches == 0,
            f"algo.mini_batches = {self.algo.mini_batches} must divide the {per_rank} responses "
            "each learner rank gets per step",
        )
        if self.cluster.device == "cuda" and self.uses_critic and self.critic.backend == "llm":
            check(self.cluster.critic_gpus > 0, "cluster.critic_gpus: an llm critic on device=cuda needs GPUs")
        if self.uses_critic:
            check(self.critic.backend != "none", "algo=capo needs a critic: critic=arith or critic=llm")

    @property
    def uses_critic(self) -> bool:
        """Whether the critic stage runs: algo=grpo skips it whatever critic.* says (see
        conf/algo/grpo.yaml). The one place this is decided."""
        return self.algo.name == "capo"

    @property
    def uses_reference(self) -> bool:
        """Whether a frozen reference model scores the batch: only the KL term needs it."""
        return self.algo.kl_coef > 0

    @property
    def responses_per_step(self) -> int:
        return self.data.prompts_per_step * self.rollout.n_samples


def load_config(data: dict[str, Any]) -> Config:
    """Strictly convert Hydra's composed config (as a plain dict) into ``Config``."""
    return from_dict(Config, data)
