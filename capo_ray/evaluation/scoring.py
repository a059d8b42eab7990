"""Scores from per-sample verdicts: pass@1, avg@k, pass@k and verdict-status counts."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from capo_ray.evaluation.results import STATUSES, BenchmarkScore, ModeScore, ProblemRecord, SampleSet


def score_mode(sets: Sequence[SampleSet]) -> ModeScore:
    """Scores of one mode over a benchmark's problems (every problem has the same sample count).

    accuracy = correct samples / all samples (greedy: pass@1; k samples: avg@k);
    pass_at_k = problems with at least one correct sample / problems. With exactly k samples
    per problem this is the unbiased pass@k estimator of Chen et al. (2021) at n = k.
    """
    if not sets:
        raise ValueError("score_mode: no problems to score")
    counts = {len(s.correct) for s in sets}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"score_mode: problems have differing or zero sample counts {sorted(counts)}")
    n = counts.pop()
    statuses = Counter(status for s in sets for status in s.statuses)
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise ValueError(f"score_mode: unknown verdict statuses {unknown}; valid: {list(STATUSES)}")
    correct = sum(sum(s.correct) for s in sets)
    solved = sum(any(s.correct) for s in sets)
    return ModeScore(
        num_problems=len(sets),
        samples_per_problem=n,
        accuracy=correct / (n * len(sets)),
        pass_at_k=solved / len(sets),
        status_counts={status: statuses.get(status, 0) for status in STATUSES},
    )


def score_benchmark(benchmark: str, records: Sequence[ProblemRecord]) -> BenchmarkScore:
    """Both modes' scores of one benchmark; a mode that did not run scores None."""
    greedy = [r.greedy for r in records if r.greedy is not None]
    sampled = [r.sampled for r in records if r.sampled is not None]
    for name, sets in (("greedy", greedy), ("sampled", sampled)):
        if sets and len(sets) != len(records):
            raise ValueError(f"score_benchmark({benchmark}): {name} samples missing for some problems")
    return BenchmarkScore(
        benchmark=benchmark,
        num_problems=len(records),
        greedy=score_mode(greedy) if greedy else None,
        sampled=score_mode(sampled) if sampled else None,
    )
