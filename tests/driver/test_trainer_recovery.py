"""The restart loop of ``capo_ray.train.run``: a recoverable failure restarts every actor and
resumes from the last checkpoint, up to ``trainer.max_step_failures`` times; any other failure
ends the run at once. The actors are FakeActors; nothing starts Ray."""

from __future__ import annotations

import pytest
import ray.exceptions

import capo_ray.driver.cluster
import capo_ray.models.resolve
from capo_ray.driver.logger import read_metrics
from capo_ray.train import run


@pytest.fixture
def starts(monkeypatch, tokenizer, fake_actors):
    """``starts(cfg, *faults)``: each (re)start hands out a new FakeActors; the i-th start gets
    ``faults[i]`` (a {(method, call): error} dict). Returns the list of fakes handed out."""

    def install(cfg, *faults):
        handed = []

        def start_actors(_cfg):
            actors = fake_actors(cfg)
            if len(handed) < len(faults):
                actors.faults.update(faults[len(handed)])
            handed.append(actors)
            return actors

        monkeypatch.setattr(capo_ray.driver.cluster, "start_actors", start_actors)
        monkeypatch.setattr(capo_ray.models.resolve, "load_policy_tokenizer", lambda _name: tokenizer)
        return handed

    return install


def test_a_dead_actor_restarts_the_run_from_its_last_checkpoint(config, starts):
    cfg = config("trainer.steps=4", "trainer.save_every=2")
    handed = starts(cfg, {("train", 3): ray.exceptions.RayActorError()})
    run_dir = run(cfg)
    assert len(handed) == 2 and all(a.calls["shutdown"] == 1 for a in handed)
    assert handed[1].loaded == [run_dir / "checkpoints" / "step_000001"]
    assert [row["step"] for row in read_metrics(run_dir)] == [0, 1, 2, 3]
    assert "recovering from failure 1/2 (RayActorError" in (run_dir / "train.log").read_text()


def test_a_failure_a_restart_cannot_fix_ends_the_run_at_once(config, starts):
    cfg = config("trainer.steps=2")
    handed = starts(cfg, {("train", 0): ValueError("bad batch")})
    with pytest.raises(ValueError, match="bad batch"):
        run(cfg)
    assert len(handed) == 1 and handed[0].calls["shutdown"] == 1


def test_recovery_gives_up_after_max_step_failures(config, starts):
    cfg = config("trainer.steps=2", "trainer.max_step_failures=1")
    dies = {("generate", 0): ray.exceptions.RayActorError()}
    handed = starts(cfg, dies, dies, dies)
    with pytest.raises(ray.exceptions.RayActorError):
        run(cfg)
    assert len(handed) == 2  # the first start and one retry
