"""Typed config of ``capo-ray-critic-eval``, mirrored field for field by ``conf/critic_eval.yaml``
and loaded with ``capo_ray.config.strict.from_dict`` (an unknown or misspelled key is an error).

Field defaults are the single source of defaults; the YAML repeats them so ``--cfg job`` shows
every knob. Validation runs on load, before the benchmark is built or any engine starts.

The critic section is called ``judge``, not ``critic``: ``conf/critic/`` is a config group, and
Hydra would read ``critic=...`` on the command line as a group choice. ``JudgeConfig`` holds
the fields of the trainer's ``CriticConfig`` that describe the judge itself (``k`` and ``vote``
are swept here instead) plus how this tool launches it; ``to_critic_config`` converts it, so
the same validation applies and a setup that scores well can be copied into ``conf/critic/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from capo_ray.config.components import CriticConfig
from capo_ray.config.engine import EngineSettings
from capo_ray.config.strict import ConfigError, check
from capo_ray.core.voting import VOTING_RULES


@dataclass
class JudgeConfig:
    """The GenPRM under test. ``backend``: ``arith`` (exact arithmetic checker, in-process) or
    ``llm`` (an instruct LLM served by vLLM through ``CriticWorker``)."""

    backend: Literal["arith", "llm"] = "arith"
    use_reference_answer: bool = True  # show the gold answer in the critique prompt (paper default)
    seed: int = 0  # arith noise seed; llm engine seed (engine i gets seed + i)
    flip_noise: float = 0.0  # arith: probability of flipping each step verdict in each critique
    # llm backend
    model_path: str = "smollm2"  # built-in name (smollm2, tiny) or an HF folder / hub name
    # inprocess: one engine in this process (~2 s start on CPU); ray: num_engines CriticWorker
    # actors behind a CriticPool, on the Ray cluster that ray_address picks.
    launch: Literal["inprocess", "ray"] = "inprocess"
    num_engines: int = 1  # launch=ray only
    # launch=ray: null uses $RAY_ADDRESS or a `ray start` cluster here, else starts a local Ray.
    ray_address: str | None = None
    engine_cpus: float = 1.0  # launch=ray: per CriticWorker actor
    engine_gpus: float = 0.0  # launch=ray: per actor (tensor-parallel engines need tp GPUs)
    temperature: float = 0.7  # > 0: the k critiques must be independent samples
    max_tokens: int = 256  # per critique
    request_timeout_s: float = 600.0  # launch=ray: a late batch abstains instead of hanging
    batch_size: int = 64  # solutions per critique call (progress is logged per batch)
    # No learner shares the device here, so the engine may take most of a GPU.
    engine: EngineSettings = field(
        default_factory=lambda: EngineSettings(max_model_len=2048, gpu_memory_utilization=0.8)
    )

    def __post_init__(self) -> None:
        check(self.num_engines >= 1, "judge.num_engines: must be >= 1")
        check(self.launch == "ray" or self.num_engines == 1, "judge.num_engines: > 1 needs judge.launch=ray")
        check(self.engine_cpus >= 0 and self.engine_gpus >= 0, "judge.engine_cpus/engine_gpus: must be >= 0")
        check(self.batch_size >= 1, "judge.batch_size: must be >= 1")
        check(
            self.backend != "llm" or self.temperature > 0,
            "judge.temperature: must be > 0 for the llm backend (greedy critiques would all be identical, "
            "so every k would score the same)",
        )

    def to_critic_config(self, k: int) -> CriticConfig:
        """The trainer's critic section for this judge with ``k`` critiques per response."""
        return CriticConfig(
            backend=self.backend, k=k, use_reference_answer=self.use_reference_answer,
            model_path=self.model_path, num_engines=self.num_engines, temperature=self.temperature,
            max_tokens=self.max_tokens, engine=self.engine, request_timeout_s=self.request_timeout_s, flip_noise=self.flip_noise, seed=self.seed,
        )  # fmt: skip


@dataclass
class CriticEvalConfig:
    """One critic evaluation: a judge on a GSM8K step-error benchmark, every (voting rule, k)."""

    size: int = 200  # solutions in the benchmark
    error_fraction: float = 0.5  # share of them with one corrupted step
    seed: int = 0  # which solutions, which step is corrupted and how (the benchmark is a function of it)
    split: Literal["test", "train"] = "test"  # gsm8k_test.jsonl or gsm8k_train.jsonl
    data_dir: str | None = None  # default: $CAPO_DATA_DIR, else ../shared/data
    # Critiques are sampled once with max(ks) per solution; smaller k take the first k of them.
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    rules: list[str] = field(default_factory=lambda: ["intersection", "union", "majority", "average"])
    output_dir: str = "runs/critic_eval"
    run_name: str | None = None  # default: <judge label>-<timestamp>
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self) -> None:
        check(self.size >= 1, "size: must be >= 1")
        check(0.0 <= self.error_fraction <= 1.0, "error_fraction: must be in [0, 1]")
        check(bool(self.ks), "ks: empty; give the numbers of critiques to score, e.g. [1, 2, 4, 8]")
        check(all(k >= 1 for k in self.ks), f"ks: every k must be >= 1, got {self.ks}")
        check(len(set(self.ks)) == len(self.ks), f"ks: duplicates in {self.ks}")
        valid = list(VOTING_RULES)
        unknown = [r for r in self.rules if r not in VOTING_RULES]
        check(not unknown, f"rules: unknown {unknown}; valid rules: {valid}")
        check(bool(self.rules), f"rules: empty; valid rules: {valid}")
        check(len(set(self.rules)) == len(self.rules), f"rules: duplicates in {self.rules}")
        try:
            self.judge.to_critic_config(self.max_k)  # the trainer's checks apply to the judge too
        except ConfigError as err:  # name the key as this tool's users write it
            raise ConfigError(str(err).replace("critic.", "judge.", 1)) from None

    @property
    def max_k(self) -> int:
        return max(self.ks)
