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
from typing import Any, Literal

from capo_ray.config.components import CriticConfig
from capo_ray.config.judge_service import HybridConfig, OpenAIJudgeConfig
from capo_ray.config.engine import EngineSettings
from capo_ray.config.strict import ConfigError, check
from capo_ray.core.voting import VOTING_RULES


@dataclass
class JudgeConfig:
    """The GenPRM under test. ``backend``: ``arith`` (exact arithmetic checker, in-process),
    ``llm`` (an instruct LLM served by vLLM through ``CriticWorker``), ``openai`` (an
    OpenAI-compatible endpoint, ``judge.openai``) or ``hybrid`` (the checker with the LLM judge
    ``judge.hybrid.llm`` names, ``judge.hybrid``)."""

    backend: Literal["arith", "llm", "openai", "hybrid"] = "arith"
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
    prompt_template: str | None = None  # a critique prompt file; null: the built-in prompt
    openai: OpenAIJudgeConfig = field(default_factory=OpenAIJudgeConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
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
            self.backend == "arith" or self.temperature > 0,
            "judge.temperature: must be > 0 for an LLM judge (greedy critiques would all be identical, "
            "so every k would score the same)",
        )

    def to_critic_config(self, k: int) -> CriticConfig:
        """The trainer's critic section for this judge with ``k`` critiques per response."""
        return CriticConfig(
            backend=self.backend, k=k, use_reference_answer=self.use_reference_answer,
            model_path=self.model_path, num_engines=self.num_engines, temperature=self.temperature,
            max_tokens=self.max_tokens, engine=self.engine, request_timeout_s=self.request_timeout_s,
            flip_noise=self.flip_noise, seed=self.seed,
            prompt_template=self.prompt_template, openai=self.openai, hybrid=self.hybrid,
        )  # fmt: skip

    @property
    def fixed_voters(self) -> int:
        """Verdicts that vote with every k (the checker of a hybrid judge in voter mode)."""
        return self.hybrid.checker_votes if self.backend == "hybrid" and self.hybrid.mode == "voter" else 0


@dataclass
class StepDataConfig:
    """Outside step-labelled data instead of the built-in GSM8K benchmark (``path`` set):
    a local .jsonl / .parquet file in ProcessBench's format, or one that ``fields`` maps onto
    it (critic_eval/step_labelled.py; presets for MR-GSM8K and PRM800K-style files)."""

    path: str | None = None  # null: the GSM8K step-error benchmark (size, error_fraction, split)
    format: Literal["processbench", "mr_gsm8k", "prm800k"] = "processbench"
    # Overrides of the preset's field map: problem, steps, label, label_base, no_error,
    # step_ratings, answer (dotted names reach into nested objects).
    fields: dict[str, Any] = field(default_factory=dict)
    limit: int = 0  # first N rows (0: all)

    def __post_init__(self) -> None:
        from capo_ray.critic_eval.step_labelled import field_map

        check(self.limit >= 0, "dataset.limit: must be >= 0 (0: all rows)")
        try:
            field_map(self.format, self.fields)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"dataset.fields: {err}") from None


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
    dataset: StepDataConfig = field(default_factory=lambda: StepDataConfig())

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
