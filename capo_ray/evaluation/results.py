"""Typed records of one evaluation: what each problem got (``ProblemRecord``), the scores per
benchmark (``BenchmarkScore``) and the whole run (``EvalResult``).

Two decoding modes, each optional:
- ``greedy``: one sample at temperature 0 per problem; its accuracy is **pass@1**;
- ``sampled``: k samples at the configured temperature; mean accuracy over all samples is
  **avg@k**, the fraction of problems with at least one correct sample is **pass@k**.

Verdict statuses (``capo_ray.rewards.verdict.Status``) are kept per sample and counted per
benchmark: a check that timed out or crashed is not correct, and it is always reported next to
the score it lowered (docs/algorithm.md: a failed check must be visible).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["greedy", "sampled"]
MODES: tuple[Mode, ...] = ("greedy", "sampled")
STATUSES: tuple[str, ...] = ("ok", "no_answer", "timeout", "error")
FAILURE_STATUSES: tuple[str, ...] = ("timeout", "error")  # the verifier failed, not the model


@dataclass
class SampleSet:
    """All samples of one problem in one mode; every list has one entry per sample."""

    responses: list[str]
    extracted: list[str | None]  # final answer as the verifier extracted it
    statuses: list[str]  # "ok" | "no_answer" | "timeout" | "error"
    correct: list[bool]

    def __post_init__(self) -> None:
        n = len(self.responses)
        if not (len(self.extracted) == len(self.statuses) == len(self.correct) == n):
            raise ValueError("SampleSet: responses, extracted, statuses and correct differ in length")


@dataclass
class ProblemRecord:
    """One problem and what the policy answered, for inspection (one jsonl line)."""

    benchmark: str
    uid: str
    source: str  # "<file>:<line>"
    question: str
    reference: str
    greedy: SampleSet | None
    sampled: SampleSet | None


@dataclass
class ModeScore:
    """Scores of one decoding mode on one benchmark."""

    num_problems: int
    samples_per_problem: int
    accuracy: float  # correct samples / all samples: pass@1 (greedy) or avg@k (sampled)
    pass_at_k: float  # problems with >= 1 correct sample / problems (k = samples_per_problem)
    status_counts: dict[str, int]  # samples per verdict status, every status in STATUSES

    @property
    def verifier_failures(self) -> int:
        return sum(self.status_counts.get(s, 0) for s in FAILURE_STATUSES)


@dataclass
class BenchmarkScore:
    benchmark: str
    num_problems: int
    greedy: ModeScore | None
    sampled: ModeScore | None


@dataclass(frozen=True)
class EvalSettings:
    """How the samples were drawn (written next to the scores so tables are comparable)."""

    greedy: bool
    k: int  # samples per problem in the sampled mode; 0 = mode off
    temperature: float  # sampled mode
    max_new_tokens: int


@dataclass
class EvalResult:
    """One model on a set of benchmarks. ``scores`` and ``problems`` are keyed by benchmark,
    in the order the benchmarks were given."""

    model: str  # row label in the results table
    settings: EvalSettings
    scores: dict[str, BenchmarkScore]
    problems: dict[str, list[ProblemRecord]] = field(default_factory=dict)

    def metric_names(self) -> list[str]:
        """The metrics this run has, in table order: pass@1, avg@k, pass@k."""
        names = ["pass@1"] if self.settings.greedy else []
        if self.settings.k > 0:
            names += [f"avg@{self.settings.k}", f"pass@{self.settings.k}"]
        return names

    def metric(self, name: str) -> dict[str, float]:
        """Benchmark -> value of metric ``name`` (one of ``metric_names()``)."""
        if name not in self.metric_names():
            raise ValueError(f"unknown metric {name!r}; this result has {self.metric_names()}")
        out = {}
        for bench, score in self.scores.items():
            if name == "pass@1":
                assert score.greedy is not None
                out[bench] = score.greedy.accuracy
            else:
                assert score.sampled is not None
                out[bench] = score.sampled.accuracy if name.startswith("avg@") else score.sampled.pass_at_k
        return out

    def average(self, name: str) -> float:
        """Unweighted mean over benchmarks (the papers' "Avg." column: each benchmark counts
        once, whatever its size)."""
        values = list(self.metric(name).values())
        return sum(values) / len(values)

    def flat_metrics(self, prefix: str = "eval") -> dict[str, float]:
        """``{prefix}/{benchmark|avg}/{metric}`` plus verifier-failure counts, for a logger."""
        out: dict[str, float] = {}
        for name in self.metric_names():
            for bench, value in self.metric(name).items():
                out[f"{prefix}/{bench}/{name}"] = value
            out[f"{prefix}/avg/{name}"] = self.average(name)
        for bench, score in self.scores.items():
            modes = [m for m in (score.greedy, score.sampled) if m is not None]
            out[f"{prefix}/{bench}/verifier_failures"] = float(sum(m.verifier_failures for m in modes))
        return out
