"""trainer.time_budget_s: the loop stops before a step that would overrun, from measured steps."""

from __future__ import annotations

from capo_ray.driver.budget import StepBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_budget_always_allows():
    clock = Clock()
    budget = StepBudget(0, clock)
    clock.now = 1e9
    budget.record(1e6)
    assert budget.allows_another()


def test_stops_before_a_step_that_would_overrun():
    clock = Clock()
    budget = StepBudget(100, clock)
    assert budget.allows_another()  # nothing measured yet: the first step always runs
    clock.now = 40.0
    budget.record(40.0)  # first step (warm-up included)
    assert budget.allows_another()  # 40 + 40 <= 100
    clock.now = 60.0
    budget.record(20.0)
    assert budget.expected_step_s() == 20.0  # later steps only: warm-up is not the norm
    assert budget.allows_another()  # 60 + 20 <= 100
    clock.now = 85.0
    budget.record(25.0)
    assert budget.expected_step_s() == 22.5
    assert not budget.allows_another()  # 85 + 22.5 > 100
