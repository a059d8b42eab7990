"""In-place recovery inside the Trainer (driver/recovery.py): a dead rollout engine, critic
engine or reference is replaced, and the step is redone from its start (or, after the update,
only its weight sync), without a restart; each case is counted in the step's metrics and
logged once. The actors are FakeActors; nothing starts Ray. The runs to a restart (a dead
learner, the bounds) are in test_trainer_recovery.py."""

from __future__ import annotations

import logging

import pytest

from capo_ray.config.strict import ConfigError
from capo_ray.driver.logger import read_metrics
from capo_ray.driver.rng import step_seed

REPLACED = ("recovery/replaced_rollout", "recovery/replaced_critic", "recovery/replaced_reference")


def _fit(trainer, cfg, kills=None):
    t, actors = trainer(cfg)
    actors.kills.update(kills or {})
    t.fit()
    return read_metrics(t.run_dir), actors


def _same_run(rows, baseline) -> None:
    """Every step logged once, each metric (but timings and the recovery counts) equal to an
    uninterrupted run's: the redo drew what the first attempt did."""
    assert [r["step"] for r in rows] == [r["step"] for r in baseline]
    for row, base in zip(rows, baseline):
        keep = lambda d: {k: v for k, v in d.items() if not k.startswith(("time/", "recovery/"))}  # noqa: E731
        assert keep(row) == keep(base), f"step {row['step']} differs from the uninterrupted run"


@pytest.mark.parametrize(
    "method, role",
    [("generate", "rollout"), ("reference_logprobs", "reference"), ("critique", "critic")],
)
def test_a_dead_actor_is_replaced_and_its_step_redone_as_it_first_ran(config, trainer, tmp_path, caplog, method, role):
    baseline, _ = _fit(trainer, config("trainer.run_name=baseline"))
    with caplog.at_level(logging.INFO, logger="capo_ray"):
        rows, actors = _fit(trainer, config(), {(method, 1): (role, 0)})  # dies in step 1
    assert actors.replaced == [(role, 0)]
    _same_run(rows, baseline)
    assert [r[f"recovery/replaced_{role}"] for r in rows] == [0, 1, 0]
    assert all(r[k] == 0 for r in rows for k in REPLACED if k != f"recovery/replaced_{role}")
    assert all(r["recovery/restarts"] == 0 for r in rows)
    assert actors.updates == 3 and actors.calls.get("shutdown", 0) == 0  # nothing was torn down
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"0 died in step 1 ({'ActorLostError' if role == 'critic' else 'ActorDiedError'})" \
        in warnings[0] and "redoing the step" in warnings[0]


def test_a_new_engine_gets_the_learners_weights_before_it_serves(config, trainer):
    cfg = config()
    rows, actors = _fit(trainer, cfg, {("generate", 1): ("rollout", 0)})
    # v1 again for the new engine (it started from the initial weights), then the step's sync
    assert actors.synced == [1, 1, 2, 3]
    # (the failed call samples nothing) the redo sampled with the learner's weights, with the step's seed
    assert actors.generated_versions == [0, 1, 2]
    assert actors.sampling_seeds == [step_seed(cfg.seed, "rollout", s) for s in range(3)]
    assert [r["weight_version"] for r in rows] == [1, 2, 3]


def test_an_engine_lost_in_the_weight_sync_redoes_only_the_sync(config, trainer):
    baseline, _ = _fit(trainer, config("trainer.run_name=baseline"))
    rows, actors = _fit(trainer, config(), {("sync_weights", 1): ("rollout", 0)})  # step 1's sync
    assert actors.updates == 3 and len(actors.batches) == 3  # the update was never repeated
    assert actors.synced == [1, 2, 3] and actors.engine_version == 3
    _same_run(rows, baseline)
    assert [r["recovery/replaced_rollout"] for r in rows] == [0, 1, 0]


def test_a_death_while_the_next_step_is_prepared_ahead(config, trainer):
    """rollout_ahead = 1: the engine dies generating step 1's rollouts during step 0. Whichever
    call meets the dead engine first (step 0's sync or step 1 taking the rollouts), the
    prepared work is dropped, the engine replaced, and step 1 made afresh with current weights."""
    rows, actors = _fit(trainer, config("trainer.rollout_ahead=1"), {("generate", 1): ("rollout", 0)})
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert sum(r["recovery/replaced_rollout"] for r in rows) == 1 and actors.replaced == [("rollout", 0)]
    assert actors.updates == 3 and [r["weight_version"] for r in rows] == [1, 2, 3]


def test_two_deaths_in_one_step_are_both_replaced_within_the_bound(config, trainer):
    kills = {("generate", 1): ("rollout", 0), ("reference_logprobs", 1): ("reference", 0)}  # in the redo
    rows, actors = _fit(trainer, config("trainer.overlap=false"), kills)
    assert actors.replaced == [("rollout", 0), ("reference", 0)]
    assert rows[1]["recovery/replaced_rollout"] == 1 and rows[1]["recovery/replaced_reference"] == 1


def test_past_the_per_step_bound_the_failure_goes_to_the_restart_path(config, trainer):
    import ray.exceptions

    t, actors = trainer(config("trainer.max_replacements_per_step=1"))
    actors.kills.update({("generate", 1): ("rollout", 0), ("generate", 2): ("rollout", 0)})  # the redo dies too
    with pytest.raises(ray.exceptions.ActorDiedError):
        t.fit()
    assert actors.replaced == [("rollout", 0)]
    assert [r["step"] for r in read_metrics(t.run_dir)] == [0]


@pytest.mark.parametrize("key", ["max_replacements", "max_replacements_per_step"])
def test_a_negative_bound_fails_at_load_naming_the_key(config, key):
    with pytest.raises(ConfigError, match=f"trainer.{key}: must be >= 0"):
        config(f"trainer.{key}=-1")
