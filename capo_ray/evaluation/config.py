"""Typed config of ``capo-ray-eval``, mirrored field for field by ``conf/eval.yaml`` and loaded
with ``capo_ray.config.strict.from_dict`` (an unknown or misspelled key is an error).

Field defaults are the single source of defaults; the YAML repeats them so ``--cfg job`` shows
every knob. Validation runs on load, before any engine starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from capo_ray.config.engine import EngineSettings
from capo_ray.config.strict import check
from capo_ray.data.datasets import BUILTIN_DATASETS
from capo_ray.data.prompts import DATASET_TEMPLATES

# The paper's math benchmarks (docs/algorithm.md: MATH500, AIME24, AMC23, Minerva, OlympiadBench).
PAPER_BENCHMARKS = ["math500", "aime24", "amc23", "minerva_math", "olympiadbench"]


def valid_benchmarks() -> list[str]:
    """Built-in datasets that also have a prompt template."""
    return sorted(set(BUILTIN_DATASETS) & set(DATASET_TEMPLATES))


@dataclass
class EvalConfig:
    """One evaluation run: a policy on a set of benchmarks, greedy pass@1 and/or avg@k."""

    # Built-in name (smollm2, tiny), HF folder or hub name, checkpoint dir (<ckpt>/hf) or run dir
    # (its latest checkpoint). Not called "model": conf/model/ is a config group, and Hydra
    # would read `model=...` on the command line as a group choice.
    policy: str = "smollm2"
    name: str = ""  # row label in the results table; "" = derived from the policy
    benchmarks: list[str] = field(default_factory=lambda: list(PAPER_BENCHMARKS))
    limit: int | None = None  # first N problems of each benchmark (quick runs); null = all
    data_dir: str | None = None  # default: $CAPO_DATA_DIR, else ../shared/data
    few_shot: bool = True  # the trainer's step demos before each question (DataConfig.few_shot)
    greedy: bool = True  # pass@1 with greedy decoding
    k: int = 4  # samples per problem for avg@k and pass@k; 0 = no sampling
    temperature: float = 1.0  # sampling mode only (the rollout temperature)
    max_new_tokens: int = 1024
    seed: int = 0  # engine-level seed (per-request seeds crash the CPU engine)
    verifier: Literal["math", "exact"] = "math"
    verify_timeout_s: float = 5.0  # per check; a timeout is counted and reported
    verify_workers: int = 1
    output_dir: str = "runs/eval"
    run_name: str | None = None  # default: <model label>-<timestamp>
    compare: list[str] = field(default_factory=list)  # earlier results.json (or dirs): extra table rows
    # No learner shares the device here, so the engine may take most of a GPU.
    engine: EngineSettings = field(
        default_factory=lambda: EngineSettings(max_model_len=2048, gpu_memory_utilization=0.8)
    )

    def __post_init__(self) -> None:
        check(bool(self.policy), "policy: must name a model (built-in name, HF folder, checkpoint or run dir)")
        valid = valid_benchmarks()
        unknown = [b for b in self.benchmarks if b not in valid]
        check(not unknown, f"benchmarks: unknown {unknown}; valid benchmarks: {valid}")
        check(bool(self.benchmarks), f"benchmarks: empty; valid benchmarks: {valid}")
        check(len(set(self.benchmarks)) == len(self.benchmarks), f"benchmarks: duplicates in {self.benchmarks}")
        check(self.limit is None or self.limit >= 1, "limit: must be >= 1 or null (all problems)")
        check(self.k >= 0, "k: must be >= 0 (0 turns sampling off)")
        check(self.greedy or self.k > 0, "greedy is false and k = 0: nothing to evaluate")
        check(self.k == 0 or self.temperature > 0, "temperature: must be > 0 when sampling (k > 0)")
        check(self.max_new_tokens >= 1, "max_new_tokens: must be >= 1")
        check(
            self.engine.max_model_len > self.max_new_tokens,
            f"engine.max_model_len ({self.engine.max_model_len}) must exceed max_new_tokens "
            f"({self.max_new_tokens}): prompts need room too",
        )
        check(self.verify_timeout_s > 0, "verify_timeout_s: must be > 0")
        check(self.verify_workers >= 1, "verify_workers: must be >= 1")
