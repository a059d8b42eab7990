"""Wall-clock time per stage, and peak memory, for the step metrics and the report."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from typing import Iterator


class StageTimer:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.inner: set[str] = set()  # stages timed inside another (concurrent) stage

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    def metrics(self, tokens: float) -> dict[str, float]:
        total = time.perf_counter() - self.start
        out = {f"time/{k}": v for k, v in self.seconds.items()}
        # driver_other: what the loop itself costs beyond the timed stages (target < 5%).
        # Stages that ran concurrently inside an outer one count once, through the outer one.
        outer = sum(v for k, v in self.seconds.items() if k not in self.inner)
        out["time/driver_other"] = max(0.0, total - outer)
        out["time/step"] = total
        out["time/policy_tokens_per_s"] = tokens / total if total else 0.0
        return out


def peak_rss_gib() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 30) if sys.platform == "darwin" else rss / (1 << 20)
