"""One typed config per component, each mirrored by a Hydra group under ``conf/``.

Field defaults here are the single source of defaults: the YAML files in ``conf/`` repeat them
only so that ``--cfg job`` shows users every knob. Validation lives in ``__post_init__`` and
raises ``ConfigError`` with the full key path, before any actor starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from capo_ray.config.engine import EngineSettings
from capo_ray.config.judge_service import HybridConfig, OpenAIJudgeConfig, check_prompt_template
from capo_ray.config.strict import check


@dataclass
class ModelConfig:
    """The policy (and, frozen, the reference model). ``path`` is an HF folder or a built-in
    name: ``smollm2`` (SmolLM2-135M-Instruct, converted offline) or ``tiny`` (random, tests)."""

    path: str = "smollm2"
    dtype: Literal["float32", "bfloat16"] = "float32"  # learner weights; CPU trains in fp32
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        check(bool(self.path), "model.path: must name an HF folder or 'smollm2' / 'tiny'")


@dataclass
class RolloutConfig:
    """The vLLM rollout pool."""

    num_engines: int = 1
    n_samples: int = 4  # responses per prompt (group size G; the paper uses 16)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 96
    sync_bucket_mb: int = 64  # weight-sync bucket size
    # dtype auto: bf16 on CUDA and on CPUs with native bf16, else fp32 (capo_ray.hardware)
    engine: EngineSettings = field(default_factory=lambda: EngineSettings(dtype="auto"))

    def __post_init__(self) -> None:
        check(self.num_engines >= 1, "rollout.num_engines: must be >= 1")
        check(self.n_samples >= 2, "rollout.n_samples: group normalization needs >= 2 responses per prompt")
        check(self.temperature > 0, "rollout.temperature: must be > 0 (sampling; greedy groups carry no signal)")
        check(0 < self.top_p <= 1, "rollout.top_p: must be in (0, 1]")
        check(self.max_new_tokens >= 1, "rollout.max_new_tokens: must be >= 1")
        check(self.engine.max_model_len > self.max_new_tokens, "rollout.engine.max_model_len: must exceed max_new_tokens")
        check(self.sync_bucket_mb >= 1, "rollout.sync_bucket_mb: must be >= 1")


@dataclass
class CriticConfig:
    """The GenPRM critic. ``backend``: ``llm`` (the paper: an instruct LLM served by vLLM),
    ``arith`` (exact checker of ``a op b = c`` steps, same text format), ``openai`` (any
    OpenAI-compatible endpoint, ``critic.openai``), ``hybrid`` (checker + LLM critic,
    ``critic.hybrid``), ``none`` (GRPO)."""

    backend: Literal["llm", "arith", "openai", "hybrid", "none"] = "arith"
    k: int = 4  # critiques per response (paper default 4)
    vote: Literal["intersection", "union", "majority", "average"] = "majority"
    use_reference_answer: bool = True
    all_abstain: Literal["outcome", "drop"] = "outcome"  # when every critique fails
    cache_size: int = 10000  # critiques of identical prompts are reused (0 disables)
    # Judge cost control (docs/judge-service.md): which responses are judged, and a per-step
    # budget of estimated judge tokens (0: none) spent incorrect-first, round-robin over groups.
    critique_on: Literal["all", "incorrect", "correct"] = "all"
    token_budget: int = 0
    # The critique prompt: null is the built-in paper-style prompt; else a template file
    # (docs/judge-service.md lists its fields).
    prompt_template: str | None = None
    # llm backend
    model_path: str = "smollm2"
    num_engines: int = 1
    temperature: float = 0.7
    max_tokens: int = 256
    request_timeout_s: float = 600.0
    engine: EngineSettings = field(default_factory=lambda: EngineSettings(dtype="auto", max_model_len=2048))
    # arith backend: probability of flipping each step's verdict in each critique, to exercise
    # voting and study critic noise
    flip_noise: float = 0.0
    # arith backend: also check each step against a quoted chain question (operation, start
    # value, order, answer), as a judge who reads it would (critics/chain_steps.py)
    check_question: bool = True
    seed: int = 0
    openai: OpenAIJudgeConfig = field(default_factory=OpenAIJudgeConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)

    def __post_init__(self) -> None:
        check(self.k >= 1, "critic.k: must be >= 1")
        check(self.token_budget >= 0, "critic.token_budget: must be >= 0 (0: no limit)")
        check_prompt_template(self.prompt_template, "critic.prompt_template")
        check(self.cache_size >= 0, "critic.cache_size: must be >= 0")
        check(0.0 <= self.flip_noise <= 1.0, "critic.flip_noise: must be in [0, 1]")
        check(self.num_engines >= 1, "critic.num_engines: must be >= 1")
        check(self.temperature >= 0, "critic.temperature: must be >= 0")
        check(self.max_tokens >= 1, "critic.max_tokens: must be >= 1")
        check(self.request_timeout_s > 0, "critic.request_timeout_s: must be > 0")
        check(self.engine.max_model_len > self.max_tokens, "critic.engine.max_model_len: must exceed max_tokens")

    @property
    def uses_engines(self) -> bool:
        """Whether this critic runs vLLM critic actors in the cluster (``llm``, or ``hybrid``
        with an ``llm`` part); ``openai`` and ``arith`` run in the driver process."""
        return self.backend == "llm" or (self.backend == "hybrid" and self.hybrid.llm == "llm")


@dataclass
class AlgoConfig:
    """Credit assignment and the policy update. ``name=grpo`` is the outcome-only baseline
    through the same code with the critic stage off."""

    name: Literal["capo", "grpo"] = "capo"
    w_whole: float = 2.0  # outcome credit W_whole (paper default 2)
    w_process: float = 1.0  # step penalty W_process (paper default 1)
    # A wrong answer whose critiques flag no step gets its last step flagged (core.credit.explain_wrong_answer)
    flag_wrong_answer: bool = False
    scale_std: bool = True  # divide by the group std (uncertain in the paper: an option)
    eps: float = 1e-6
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.001
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"] = "token_mean"
    ppo_epochs: int = 1
    mini_batches: int = 1  # optimizer steps per epoch over the step's batch

    def __post_init__(self) -> None:
        check(self.w_whole >= 0, "algo.w_whole: must be >= 0")
        check(self.w_process >= 0, "algo.w_process: must be >= 0")
        check(0 < self.clip_low < 1 and self.clip_high > 0, "algo.clip_low/clip_high: need 0 < clip_low < 1, clip_high > 0")
        check(self.kl_coef >= 0, "algo.kl_coef: must be >= 0")
        check(self.ppo_epochs >= 1 and self.mini_batches >= 1, "algo.ppo_epochs/mini_batches: must be >= 1")


@dataclass
class LearnerConfig:
    """The DeepSpeed ZeRO policy learner."""

    # Two single-thread ranks, measured steadier than one two-thread rank on a busy 2-core box
    # (bench/learner_step.py): a contended thread stalls the whole rank.
    num_workers: int = 2
    zero_stage: int = 2
    lr: float = 1e-5
    warmup_steps: int = 0  # optimizer steps of linear lr warmup (a fresh Adam's first steps are sign(g) * lr)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    micro_batch_size: int = 4  # sequences per forward/backward per rank
    torch_threads: int = 0  # per rank; 0: the node's cores split over the ranks (capo_ray.hardware)
    seed: int = 0
    # Token log probs are computed from the LM head's input this many positions at a time, so
    # backward never keeps a micro-batch's full float32 logits (4 x 3k tokens x 152k vocab =
    # 7.5 GB); a micro-batch with more scored positions pays one extra LM-head forward per
    # chunk (recomputed in backward). 0: the model's full logits (the old path).
    logprob_chunk_tokens: int = 4096

    def __post_init__(self) -> None:
        check(self.num_workers >= 1, "learner.num_workers: must be >= 1")
        check(self.logprob_chunk_tokens >= 0, "learner.logprob_chunk_tokens: must be >= 0 (0: no chunking)")
        check(self.zero_stage in (1, 2, 3), f"learner.zero_stage: {self.zero_stage} is not one of [1, 2, 3]")
        check(self.lr > 0, "learner.lr: must be > 0")
        check(self.warmup_steps >= 0, "learner.warmup_steps: must be >= 0 (0: no warmup)")
        check(self.micro_batch_size >= 1, "learner.micro_batch_size: must be >= 1")
        check(self.torch_threads >= 0, "learner.torch_threads: must be >= 0 (0: cores / ranks)")


@dataclass
class DataConfig:
    """Training problems. ``name``: ``arith`` (built-in generator) or a built-in dataset
    (``gsm8k_train``, ``math_train``, ...); ``path`` overrides with a local jsonl/parquet."""

    name: str = "arith"
    path: str | None = None
    data_dir: str | None = None  # default: $CAPO_DATA_DIR, else ../shared/data
    verifier: Literal["exact", "math"] = "exact"
    verify_timeout_s: float = 5.0
    prompts_per_step: int = 4
    few_shot: bool = True
    seed: int = 0
    # arith generator knobs
    num_ops: int = 1
    operand_min: int = 1
    operand_max: int = 10
    operators: list[str] = field(default_factory=lambda: ["+", "-", "*"])
    # chain generator knobs (data=chain; it shares operand_min/operand_max/operators with arith):
    # each problem has min_ops..max_ops dependent operations, every value stays in [0, max_value]
    min_ops: int = 3
    max_ops: int = 6
    max_value: int = 99
    zero_share: float = 0.0  # share of chains with a "* 0" that cancels the steps before it

    def __post_init__(self) -> None:
        check(self.prompts_per_step >= 1, "data.prompts_per_step: must be >= 1")
        if self.name == "chain":
            check(1 <= self.min_ops <= self.max_ops, "data.min_ops/max_ops: need 1 <= min_ops <= max_ops")
            check(self.operand_min >= 0, "data.operand_min: must be >= 0 for data=chain")
            check(self.max_value >= 2 * max(self.operand_max, 1), "data.max_value: must be >= 2 * data.operand_max")
            check(0 <= self.zero_share <= 1, "data.zero_share: must be in [0, 1]")
        check(self.num_ops >= 1, "data.num_ops: must be >= 1")
        check(self.operand_min <= self.operand_max, "data.operand_min: must be <= operand_max")
        bad = [op for op in self.operators if op not in ("+", "-", "*")]
        check(not bad and bool(self.operators), f"data.operators: {bad or 'empty'}; use a subset of ['+', '-', '*']")
        check(self.verify_timeout_s > 0, "data.verify_timeout_s: must be > 0")


@dataclass
class ClusterConfig:
    """Where actors run. ``address=null`` starts a local Ray; ``auto`` joins a running cluster.
    Resources are per actor; placement goes through placement groups (one bundle per actor)."""

    address: str | None = None
    device: Literal["cpu", "cuda"] = "cpu"
    num_cpus: int | None = None  # for a local Ray started by us (None: all cores)
    learner_cpus: float = 0.5
    learner_gpus: float = 0.0
    rollout_cpus: float = 0.5
    rollout_gpus: float = 0.0  # per engine; tensor parallel engines need tp GPUs
    critic_cpus: float = 0.25
    critic_gpus: float = 0.0
    reference_cpus: float = 0.25
    reference_gpus: float = 0.0
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    startup_timeout_s: float = 600.0
    # Added to every actor's environment, e.g. NCCL_SOCKET_IFNAME / NCCL_IB_HCA /
    # GLOO_SOCKET_IFNAME on multi-homed nodes (both collectives: learner ZeRO and weight sync).
    env_vars: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("learner", "rollout", "critic", "reference"):
            cpus, gpus = getattr(self, f"{name}_cpus"), getattr(self, f"{name}_gpus")
            check(cpus >= 0 and gpus >= 0, f"cluster.{name}_cpus/{name}_gpus: must be >= 0")
        # Which roles need GPUs depends on the run (reference, critic): Config._check_gpu_roles.
        check(self.startup_timeout_s > 0, "cluster.startup_timeout_s: must be > 0")


@dataclass
class LoggingConfig:
    wandb: Literal["offline", "online", "disabled"] = "offline"
    project: str = "capo-ray"
    progress_bar: bool = True
    log_samples: int = 2  # responses per step written in full (critiques, votes, penalized tokens)
    # false: the terminal shows start-up stages, progress and step summaries, warnings; engine,
    # Ray and library output goes to RUN_DIR/logs/output.log. true: everything on the terminal.
    verbose: bool = False
    # PNG plots of the run's curves at the end (linked from report.md); about 1 s a plot on a
    # 2-core CPU, so tests that only exercise the loop turn them off.
    plots: bool = True


@dataclass
class TrainerConfig:
    steps: int = 6
    output_dir: str = "runs"
    run_name: str | None = None  # default: a timestamp
    save_every: int = 0  # 0: only at the end
    resume: bool = True  # resume from the run directory's last checkpoint when present
    max_step_failures: int = 2  # actor failures survived per run (restart + resume) before giving up
    # A dead rollout engine, critic engine or reference is replaced in place and the step redone
    # (driver/recovery.py), at most this many times per step and per run (0: always restart).
    max_replacements_per_step: int = 2
    max_replacements: int = 8
    # Held-out evaluation through the rollout engines every N steps (0: off); see capo-ray-eval.
    eval_every: int = 0
    eval_benchmarks: list[str] = field(default_factory=lambda: ["math500"])
    eval_limit: int = 64  # problems per benchmark
    eval_k: int = 0  # samples per problem for avg@k (0: greedy pass@1 only)
    eval_max_new_tokens: int = 512
    # With eval_every > 0, also score the starting weights before step 0 (a fresh run only);
    # logged in step 0's row as eval_start/... so every curve has its starting point.
    eval_before_train: bool = True
    # Overlap (docs/judge-service.md): the reference forward runs during the critique requests;
    # rollout_ahead=1 generates, verifies and judges step t+1's rollouts while step t trains
    # (one weight version behind; their behaviour log-probs feed the PPO ratio).
    overlap: bool = True
    rollout_ahead: int = 0
    # Wall-clock seconds for the run from its start, start-up included (0: none): stop before a
    # step that would not finish in time, judged by the steps measured so far (the demo's promise).
    time_budget_s: float = 0.0

    def __post_init__(self) -> None:
        check(self.steps >= 1, "trainer.steps: must be >= 1")
        check(self.save_every >= 0, "trainer.save_every: must be >= 0")
        check(self.time_budget_s >= 0, "trainer.time_budget_s: must be >= 0 (0: no budget)")
        check(self.max_step_failures >= 0, "trainer.max_step_failures: must be >= 0")
        check(self.max_replacements_per_step >= 0, "trainer.max_replacements_per_step: must be >= 0 (0: restart instead)")
        check(self.max_replacements >= 0, "trainer.max_replacements: must be >= 0 (0: restart instead)")
        check(self.eval_every >= 0 and self.eval_limit >= 1 and self.eval_k >= 0,
              "trainer.eval_every/eval_limit/eval_k: need eval_every >= 0, eval_limit >= 1, eval_k >= 0")
        check(bool(self.eval_benchmarks), "trainer.eval_benchmarks: name at least one benchmark")
        check(self.rollout_ahead in (0, 1), f"trainer.rollout_ahead: {self.rollout_ahead} is not one of [0, 1]")
        # The periodic eval shares the engines and the verifier with the step prepared ahead.
        check(not (self.rollout_ahead and self.eval_every),
              "trainer.rollout_ahead: 1 cannot be combined with trainer.eval_every > 0 (evaluate the checkpoints instead)")
