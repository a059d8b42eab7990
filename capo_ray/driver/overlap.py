"""Overlapping the stages of a step that do not depend on each other (docs/judge-service.md).

- ``trainer.overlap``: the reference forward needs only the rollouts' token ids, the critique
  requests only their text, so they run at the same time (the critic stage in a driver thread;
  both wait on other processes: Ray actors or an HTTP judge).
- ``trainer.rollout_ahead = 1``: step t+1's rollouts are generated, verified and judged (none
  of which needs the new weights) while step t's reference forward, update and weight sync
  run. They are sampled with the weights of before step t's update, one version behind
  the learner when they are trained on; their behaviour log-probs (from the engine) then feed
  the PPO ratio instead of the on-policy shortcut, and the staleness check allows exactly
  that lag. Each engine runs one call at a time, so step t's weight sync simply waits until
  the prefetch's generation is done.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from capo_ray.driver.records import Judgement, Steps
from capo_ray.records import Rollout
from capo_ray.rewards.verdict import Verdict

T = TypeVar("T")


@dataclass(frozen=True)
class Prepared:
    """A step's work that needs no policy weights, done ahead of its training (or just now)."""

    rollouts: list[Rollout]
    outcomes: list[Verdict]
    steps: list[Steps]
    judgements: list[Judgement]
    judge_metrics: dict[str, float]
    seconds: dict[str, float]  # stage -> seconds spent preparing


class RolloutPrefetch:
    """At most one step's rollouts generated ahead, in one background thread."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rollout-ahead")
        self._pending: tuple[int, concurrent.futures.Future] | None = None

    def start(self, step: int, prepare: Callable[[threading.Event], Any]) -> None:
        """Run ``prepare(entered)`` in the background; return once it set ``entered`` (right
        before asking the engines to generate) or ended. So the generation is queued on the
        engines before this step's weight sync: the rollouts are exactly one version behind."""
        if self._pending is not None:
            raise RuntimeError(f"rollouts for step {self._pending[0]} are still pending")
        entered = threading.Event()
        future = self._pool.submit(prepare, entered)
        while not entered.wait(0.05) and not future.done():
            pass
        self._pending = (step, future)

    def take(self, step: int) -> Any | None:
        """The rollouts generated ahead for ``step`` (waits for them), or None when none were.
        A failure in the generation is raised here, in the step that needed them."""
        if self._pending is None:
            return None
        pending_step, future = self._pending
        self._pending = None
        if pending_step != step:
            future.cancel()
            return None
        return future.result()

    def discard(self) -> None:
        """Drop a pending generation (after an error); waits for it to finish, so no engine
        call outlives the run's actors or races an actor's replacement."""
        if self._pending is not None:
            _, future = self._pending
            self._pending = None
            try:
                future.result()
            except Exception:  # noqa: BLE001 - its step never ran; the error belongs to no step
                pass

    def close(self) -> None:
        """``discard``, and stop the thread (at the end of the run)."""
        self.discard()
        self._pool.shutdown(wait=True)


def concurrently(background: Callable[[], T], foreground: Callable[[], Any]) -> tuple[T, Any]:
    """(background(), foreground()) with the first run in a thread while the second runs here.
    Both always finish before this returns; an error of either is raised after both ended."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="critic") as pool:
        future = pool.submit(background)
        try:
            front = foreground()
        finally:
            concurrent.futures.wait([future])
        return future.result(), front
