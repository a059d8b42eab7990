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
        self._check_batch_split()
        self._check_gpu_roles()
        if self.uses_critic:
            check(self.critic.backend != "none", "algo=capo needs a critic: critic=arith, llm, openai or hybrid")

    @property
    def uses_critic(self) -> bool:
        """Whether the critic stage runs: algo=grpo skips it whatever critic.* says (see
        conf/algo/grpo.yaml). The one place this is decided."""
        return self.algo.name == "capo"

    @property
    def uses_reference(self) -> bool:
        """Whether a frozen reference model scores the batch: only the KL term needs it."""
        return self.algo.kl_coef > 0

    def _check_gpu_roles(self) -> None:
        """On device=cuda every role this run starts needs GPUs in its resources, and a vLLM
        engine one GPU per tensor-parallel rank. Checked at load, naming the user's keys: a
        cuda reference with 0 GPUs otherwise fails only inside its actor, after the learner
        and engines have loaded (minutes on a cluster), or waits for an impossible bundle."""
        c = self.cluster
        if c.device != "cuda":
            return
        roles: dict[str, int | None] = {"learner": None, "rollout": self.rollout.engine.tensor_parallel_size}
        if self.uses_reference:
            roles["reference"] = None
        if self.uses_critic and self.critic.uses_engines:
            roles["critic"] = self.critic.engine.tensor_parallel_size
        for role, tp in roles.items():
            gpus = getattr(c, f"{role}_gpus")
            check(gpus > 0, f"cluster.{role}_gpus: device=cuda needs GPUs for the {role} (got {gpus:g})")
            check(tp is None or gpus == tp,
                  f"cluster.{role}_gpus = {gpus:g} but {role}.engine.tensor_parallel_size = {tp}: "
                  "a GPU engine needs one GPU per tensor-parallel rank")  # fmt: skip

    def _check_batch_split(self) -> None:
        """The step's responses must split exactly: into ``algo.mini_batches`` optimizer steps,
        each shared evenly by ``learner.num_workers`` ranks, each share a whole number of
        ``learner.micro_batch_size`` rows. Checked here, naming the keys a user sets, so a bad
        combination fails before Ray starts instead of inside a learner rank."""
        batch, ranks = self.responses_per_step, self.learner.num_workers
        mini, micro = self.algo.mini_batches, self.learner.micro_batch_size
        size = f"data.prompts_per_step * rollout.n_samples = {batch} responses per step"
        check(batch % ranks == 0, f"{size} must divide evenly across learner.num_workers = {ranks}")
        per_rank = batch // ranks
        check(
            per_rank % mini == 0,
            f"algo.mini_batches = {mini} must divide the {per_rank} responses each learner rank gets "
            f"per step ({size} over learner.num_workers = {ranks})",
        )
        share = per_rank // mini
        check(
            share % micro == 0,
            f"learner.micro_batch_size = {micro} must divide the {share} rows each learner rank gets "
            f"per optimizer step ({size} / algo.mini_batches = {mini} / learner.num_workers = {ranks})",
        )

    @property
    def responses_per_step(self) -> int:
        return self.data.prompts_per_step * self.rollout.n_samples


def load_config(data: dict[str, Any]) -> Config:
    """Strictly convert Hydra's composed config (as a plain dict) into ``Config``."""
    return from_dict(Config, data)
