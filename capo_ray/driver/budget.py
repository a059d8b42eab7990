"""A wall-clock budget for the training loop (``trainer.time_budget_s``): the run stops before a
step it would not finish in time, judged by the steps measured so far on this machine.

This is how the CPU demo keeps its time promise on any machine: a fast CPU runs all
``trainer.steps``, a slow or busy one runs as many as fit and says so (docs/performance.md).
"""

from __future__ import annotations

import time

class StepBudget:
    def __init__(self, seconds: float, clock=time.monotonic, start: float | None = None) -> None:
        self.seconds = seconds  # 0: no budget
        self.clock = clock
        self.start = clock() if start is None else start
        self.steps: list[float] = []

    def record(self, seconds: float) -> None:
        self.steps.append(seconds)

    def expected_step_s(self) -> float:
        """The next step's expected time: the mean of the steps after the first (which also
        pays warm-up costs), or the first while it is the only one."""
        later = self.steps[1:] or self.steps
        return sum(later) / len(later) if later else 0.0

    def allows_another(self) -> bool:
        if self.seconds <= 0 or not self.steps:
            return True
        return self.clock() - self.start + self.expected_step_s() <= self.seconds
