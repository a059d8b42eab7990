"""Which failures a run survives, and how (docs/operations.md, "When an actor dies").

Two ways back, cheapest first:

- In place (``ActorRecovery.run``): a dead rollout engine, critic engine or reference actor
  holds nothing the run cannot rebuild (the engines get the learner's weights by a sync, the
  critic and the reference load frozen weights). The trainer finds which actors died, starts
  each again where it ran (same placement bundle, options and name) and redoes what failed:
  the step from its start when the learner had not updated yet, else only the weight sync or
  the evaluation. The learner and the other actors keep running. Bounded per step and per run
  (``trainer.max_replacements_per_step``, ``trainer.max_replacements``).
- Restart (``capo_ray.train``): a dead learner rank (its optimizer state lives only in its
  process), a failure no dead actor explains (a weight-sync timeout, a stale rollout), or one
  past the bounds: every actor is torn down and started again, and the run resumes from the
  newest complete checkpoint, up to ``trainer.max_step_failures`` times.

Configuration and resource errors are not retried either way: they would fail the same way.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("capo_ray")

T = TypeVar("T")

# The roles an in-place replacement can rebuild, with the words the log uses for them.
REPLACEABLE = {"rollout": "rollout engine", "critic": "critic engine", "reference": "reference model"}


class ActorLostError(RuntimeError):
    """An actor died where its caller carried on without it (the critic pool abstains for a
    dead critic engine): raised so the step is redone with a replacement instead."""


def is_recoverable(err: BaseException) -> bool:
    import ray.exceptions as rex

    from capo_ray.driver.trainer import StaleRolloutError
    from capo_ray.workers.weight_sync import WeightSyncError

    recoverable = (
        rex.RayActorError,
        rex.WorkerCrashedError,
        rex.NodeDiedError,
        rex.ObjectLostError,
        rex.OutOfMemoryError,
        rex.GetTimeoutError,
        WeightSyncError,
        StaleRolloutError,
        ActorLostError,
    )
    if isinstance(err, recoverable):
        return True
    # A task error wraps the actor's own exception: judge by the cause.
    cause = getattr(err, "cause", None)
    return cause is not None and cause is not err and is_recoverable(cause)


def find_dead(handles: dict[str, list[Any]], timeout_s: float = 10.0) -> list[tuple[str, int]]:
    """(role, index) of every actor in ``handles`` (role -> actor handles) that Ray reports
    dead. The probe is an empty call queued behind the actor's current task: a dead actor
    answers at once with RayActorError, one still busy after ``timeout_s`` is alive."""
    import ray

    probes = [(role, i, h.__ray_ready__.remote()) for role, hs in handles.items() for i, h in enumerate(hs)]
    if not probes:
        return []
    ready, _ = ray.wait([ref for _, _, ref in probes], num_returns=len(probes), timeout=timeout_s)
    answered = set(ready)
    dead = []
    for role, i, ref in probes:
        if ref in answered:
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError:
                dead.append((role, i))
    return dead


class ActorRecovery:
    """In-place replacements, bounded, and the per-step counts of both ways back. One object
    lives for the whole run (``capo_ray.train`` hands it to every Trainer it starts), so the
    per-run bound and the restart count survive restarts."""

    def __init__(self, per_step: int, per_run: int) -> None:
        self.per_step, self.per_run = per_step, per_run
        self.replaced = 0  # in-place replacements in this run, across restarts
        self.restarts = 0  # restarts from a checkpoint in this run
        self._step: Counter[str] = Counter()
        self._step_seconds = 0.0
        self._unreported_restarts = 0

    @classmethod
    def from_config(cls, trainer_cfg: Any) -> "ActorRecovery":
        return cls(trainer_cfg.max_replacements_per_step, trainer_cfg.max_replacements)

    def restarted(self) -> None:
        """A restart from the last checkpoint: reported by the next step that is logged."""
        self.restarts += 1
        self._unreported_restarts += 1

    def begin_step(self) -> None:
        self._step.clear()
        self._step_seconds = 0.0

    def step_metrics(self) -> dict[str, float]:
        """This step's replacements by role, the restarts that led to it, and the seconds the
        replacements took (also inside ``time/step``)."""
        out = {f"recovery/replaced_{role}": float(self._step[role]) for role in REPLACEABLE}
        out["recovery/restarts"] = float(self._unreported_restarts)
        out["recovery/seconds"] = self._step_seconds
        self._unreported_restarts = 0
        return out

    def run(
        self, step: int, redoing: str, attempt: Callable[[], T], actors: Any,
        settle: Callable[[], None], redo: Callable[[set[str]], None],
    ) -> T:
        """``attempt()``, again after replacing the actors whose death made it fail.
        ``settle()`` runs first on a failure (stop work in flight, e.g. the rollouts prepared
        ahead, so no call races the replacement); ``redo(roles)`` after the replacements,
        before the next attempt (e.g. sync the learner's weights to a new engine). A failure
        this cannot handle is raised as it came: ``capo_ray.train`` then restarts the run."""
        replaced: set[str] | None = None
        while True:
            try:
                if replaced is not None:
                    redo(replaced)
                return attempt()
            except Exception as err:
                if not is_recoverable(err):
                    raise
                settle()
                dead = actors.dead_actors()
                refusal = self._refusal(dead)
                if refusal is not None:
                    log.info("step %d: %s (%s): the run restarts from its last checkpoint", step, refusal,
                             type(err).__name__)
                    raise
                replaced = self._replace(step, redoing, dead, actors, err)

    def _refusal(self, dead: list[tuple[str, int]]) -> str | None:
        if not dead:
            return "no dead actor explains the failure"
        roles = sorted({role for role, _ in dead if role not in REPLACEABLE})
        if roles:
            return f"a {'/'.join(roles)} actor died"
        if sum(self._step.values()) + len(dead) > self.per_step:
            return f"over trainer.max_replacements_per_step = {self.per_step}"
        if self.replaced + len(dead) > self.per_run:
            return f"over trainer.max_replacements = {self.per_run}"
        return None

    def _replace(self, step: int, redoing: str, dead: list[tuple[str, int]], actors: Any, err: Exception) -> set[str]:
        for role, index in dead:
            start = time.perf_counter()
            actors.replace(role, index)
            seconds = time.perf_counter() - start
            self._step_seconds += seconds
            self._step[role] += 1
            self.replaced += 1
            log.warning(
                "%s %d died in step %d (%s): replaced in place in %.0f s (%d this step, %d of at most %d "
                "this run); %s", REPLACEABLE[role], index, step, type(err).__name__, seconds,
                sum(self._step.values()), self.replaced, self.per_run, redoing,
            )
        return {role for role, _ in dead}
