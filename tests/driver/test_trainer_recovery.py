"""The restart loop of ``capo_ray.train.run``: a recoverable failure that an in-place
replacement cannot fix (a dead learner rank, no dead actor to blame, the replacement bounds)
restarts every actor and resumes from the last checkpoint, up to ``trainer.max_step_failures``
times; any other failure ends the run at once. The actors are FakeActors; nothing starts Ray."""

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
    ``faults[i]``, a {(method, call): error, or the (role, index) that dies there} dict.
    Returns the list of fakes handed out."""

    def install(cfg, *faults):
        handed = []

        def start_actors(_cfg):
            actors = fake_actors(cfg)
            if len(handed) < len(faults):
                for call, fault in faults[len(handed)].items():
                    (actors.kills if isinstance(fault, tuple) else actors.faults)[call] = fault
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


def test_a_dead_learner_rank_restarts_from_the_checkpoint_and_is_counted(config, starts):
    cfg = config("trainer.steps=4", "trainer.save_every=1")
    handed = starts(cfg, {("train", 2): ("learner", 0)})  # dies in step 2
    run_dir = run(cfg)
    assert len(handed) == 2 and handed[0].replaced == []  # never replaced in place
    assert handed[1].loaded == [run_dir / "checkpoints" / "step_000001"]
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]  # step 2 once, from the resumed run
    assert [r["recovery/restarts"] for r in rows] == [0, 0, 1, 0]
    log = (run_dir / "train.log").read_text()
    assert log.count("recovering from failure 1/2 (ActorDiedError") == 1
    assert "done: 4 steps (0 actors replaced in place, 1 restarts)" in log


@pytest.mark.parametrize(
    "bound, kills, replaced, restarts",
    [  # the redo of step 1 meets a dead engine again: one replacement a step is all it gets
        ("trainer.max_replacements_per_step=1", {("generate", 1): ("rollout", 0), ("generate", 2): ("rollout", 0)},
         [0, 0, 0, 0], [0, 1, 0, 0]),
        # a second death, in step 2, is one replacement more than the run may make
        ("trainer.max_replacements=1", {("generate", 1): ("rollout", 0), ("generate", 3): ("rollout", 0)},
         [0, 1, 0, 0], [0, 0, 1, 0]),
        ("trainer.max_replacements=0", {("generate", 1): ("rollout", 0)}, [0, 0, 0, 0], [0, 1, 0, 0]),  # off
    ],
)
def test_past_a_replacement_bound_the_run_restarts_from_its_checkpoint(config, starts, bound, kills, replaced, restarts):
    cfg = config("trainer.steps=4", "trainer.save_every=1", bound)
    handed = starts(cfg, kills)
    run_dir = run(cfg)
    assert len(handed) == 2 and handed[1].replaced == []
    assert len(handed[0].replaced) == (0 if bound.endswith("=0") else 1)
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    # (a replacement in a step that then restarted is in the run's total, not in a row: that
    # step's row comes from its run after the restart)
    assert [r["recovery/replaced_rollout"] for r in rows] == replaced
    assert [r["recovery/restarts"] for r in rows] == restarts
