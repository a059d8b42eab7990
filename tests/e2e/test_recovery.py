"""Runs survive dead actors, in one real run of the tiny model: the rollout engine is killed in
step 1 and the reference in step 2 (each replaced in place, the step redone, nothing else
restarted), a learner rank in step 3 (every actor restarted, the run resumed from the step-2
checkpoint). The run finishes with each step logged exactly once and each case counted.

The kills are ray.kill on the real actors, made right before the driver's call that needs
them, so each lands in its chosen step whatever the machine's speed. (The critic engine's
replacement is tested on Ray in tests/workers/test_critic_llm.py: an LLM critic here would add
three vLLM engine starts to the run.)"""

import json

import pytest
import ray

from capo_ray.driver.actors import Actors
from capo_ray.train import run

pytestmark = pytest.mark.slow


def _kill_before(monkeypatch, method: str, call: int, victim, killed: list) -> None:
    """Make ``Actors.<method>``'s ``call``-th call (0-based, over the whole run) ray.kill
    ``victim(actors)`` first, and note it in ``killed``."""
    original, calls = getattr(Actors, method), [0]

    def wrapped(self, *args, **kwargs):
        if calls[0] == call:
            ray.kill(victim(self))
            killed.append(method)
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Actors, method, wrapped)


def test_dead_engine_and_reference_are_replaced_a_dead_learner_restarts(tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config("trainer.steps=4", "trainer.save_every=1", "trainer.max_step_failures=1")
    killed: list = []
    _kill_before(monkeypatch, "generate", 1, lambda a: a.engines[0], killed)  # step 1
    _kill_before(monkeypatch, "reference_logprobs", 2, lambda a: a.reference, killed)  # step 2
    _kill_before(monkeypatch, "train", 3, lambda a: a.learner.actors[1], killed)  # step 3
    run_dir = run(cfg)
    assert killed == ["generate", "reference_logprobs", "train"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    # A new engine got the learner's version-1 weights before it served (the redone step 1
    # passed the staleness check); the restart pushed the step-2 checkpoint's version 3.
    assert [r["weight_version"] for r in rows] == [1, 2, 3, 4]
    assert [r["recovery/replaced_rollout"] for r in rows] == [0, 1, 0, 0]
    assert [r["recovery/replaced_reference"] for r in rows] == [0, 0, 1, 0]
    assert [r["recovery/restarts"] for r in rows] == [0, 0, 0, 1]
    log = (run_dir / "train.log").read_text()
    assert log.count("rollout engine 0 died in step 1 (ActorDiedError): replaced in place") == 1
    assert log.count("reference model 0 died in step 2 (ActorDiedError): replaced in place") == 1
    assert log.count("recovering from failure 1/1 (ActorDiedError") == 1 and "resuming from" in log
    assert "done: 4 steps (2 actors replaced in place, 1 restarts)" in log
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [f"step_00000{i}" for i in range(4)]
