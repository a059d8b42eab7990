"""The problems of each requested benchmark, optionally cut to the first ``limit``."""

from __future__ import annotations

from typing import Sequence

from capo_ray.data.datasets import load_problems
from capo_ray.evaluation.config import valid_benchmarks
from capo_ray.records import Problem


def load_benchmarks(names: Sequence[str], limit: int | None, data_dir: str | None) -> dict[str, list[Problem]]:
    """Benchmark name -> problems, in the order given. ``limit`` keeps the first N of each file
    (deterministic, so quick runs compare across checkpoints; not a random sample)."""
    valid = valid_benchmarks()
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; valid benchmarks: {valid}")
    out = {}
    for name in names:
        problems = load_problems(name, data_dir=data_dir)
        out[name] = problems[:limit] if limit is not None else problems
    return out
