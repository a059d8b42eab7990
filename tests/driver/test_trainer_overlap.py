"""Overlap in the Trainer against FakeActors: the reference forward runs while the critic judges,
and rollout_ahead=1 generates step t+1 during step t, exactly one weight version behind."""

from __future__ import annotations

import threading

import pytest

from capo_ray.driver.trainer import StaleRolloutError


def engines_in_call_order(actors, steps: int) -> None:
    """Make the fake's engines behave like Ray actors: a call runs only after the calls made
    before it. Step t's sync must find step t+1's generation (asked for before it) done; the
    in-process fake has no queue, so its sync waits for that generation here."""
    generate, sync = actors.generate, actors.sync_weights
    done = threading.Condition()
    finished = [0]

    def generate_in_order(*args, **kwargs):
        out = generate(*args, **kwargs)
        with done:
            finished[0] += 1
            done.notify_all()
        return out

    def sync_after_pending_generation(version):
        with done:  # sync of step t (version t + 1) comes after generation t + 1 was asked
            assert done.wait_for(lambda: finished[0] >= min(version + 1, steps), timeout=10)
        return sync(version)

    actors.generate, actors.sync_weights = generate_in_order, sync_after_pending_generation


def test_rollout_ahead_trains_one_version_behind_with_behaviour_logprobs(config, trainer):
    t, actors = trainer(config("trainer.steps=3", "trainer.rollout_ahead=1"))
    engines_in_call_order(actors, steps=3)
    history = t.fit()
    # step 0: generated now at v0; step 1: generated during step 0 (engines still at v0);
    # step 2: generated during step 1, after step 0's sync (v1).
    assert actors.generated_versions == [0, 0, 1]
    assert [row["weight_version"] for row in history] == [1, 2, 3]
    # only step 0 is on-policy; the lagged steps must use the engine's behaviour log-probs
    assert actors.off_policy == [False, True, True]
    assert actors.calls["generate"] == 3  # nothing generated for a step that never runs


def test_without_rollout_ahead_every_step_is_on_policy(config, trainer):
    t, actors = trainer(config("trainer.steps=3"))
    t.fit()
    assert actors.generated_versions == [0, 1, 2] and actors.off_policy == [False, False, False]


def test_staleness_check_allows_exactly_the_configured_lag(config, trainer):
    t, actors = trainer(config("trainer.steps=3", "trainer.rollout_ahead=1"))
    engines_in_call_order(actors, steps=3)
    actors.lose_syncs = {1}  # the engines miss step 0's update: step 2's rollouts are 2 behind
    with pytest.raises(StaleRolloutError, match=r"version \[0\].* learner is at version 2 .*allows 1\.\.2"):
        t.fit()
    assert actors.calls["train"] == 2  # steps 0 and 1 (lag 1) trained; step 2 (lag 2) refused


def test_rollout_ahead_must_be_0_or_1(config):
    from capo_ray.config import ConfigError

    with pytest.raises(ConfigError, match="trainer.rollout_ahead: 2 is not one of"):
        config("trainer.rollout_ahead=2")


def test_reference_runs_while_the_critic_judges(config, trainer):
    t, actors = trainer(config("trainer.steps=1"))
    started = threading.Event()
    critique, reference = actors.critique, actors.reference_logprobs

    def reference_then_signal(batch):
        started.set()
        return reference(batch)

    def critique_waiting_for_reference(messages, step_texts):
        # Returns only once the reference forward has begun: sequential stages would time out.
        assert started.wait(timeout=10), "the reference did not start while the critic was judging"
        return critique(messages, step_texts)

    actors.reference_logprobs, actors.critique = reference_then_signal, critique_waiting_for_reference
    metrics = t.train_step(0)
    assert metrics["time/critic_and_reference"] >= max(metrics["time/critic"], metrics["time/reference"])
    assert actors.batches[0].ref_logprobs is not None
