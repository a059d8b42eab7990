"""One step of the Trainer against FakeActors: the stale-rollout check, which critique lands on
which response, the cache-hit count, and which failures a run recovers from."""

from __future__ import annotations

import json

import pytest
import ray.exceptions

from capo_ray.config import ConfigError
from capo_ray.driver.placement import ResourceError
from capo_ray.driver.recovery import is_recoverable
from capo_ray.driver.trainer import StaleRolloutError
from capo_ray.workers.weight_sync import WeightSyncError


def samples(tmp_path) -> list[dict]:
    path = tmp_path / "run" / "samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_rollout_from_weights_a_sync_never_delivered_stops_the_step(config, trainer):
    t, actors = trainer(config("trainer.steps=3"))
    actors.lose_syncs = {1}  # the sync after step 0 "succeeds" but the engines keep version 0
    with pytest.raises(StaleRolloutError, match=r"8 rollouts .* version \[0\].* learner is at version 1"):
        t.fit()
    assert actors.calls["train"] == 1  # step 1 never reached the learner
    assert is_recoverable(StaleRolloutError("x"))


def mixed(problem, sample):
    """Per group: an empty response (no step), a clean right one, a flawed right one, a repeat."""
    return [
        "",
        f"Step 1: fine.\nThe answer is \\boxed{{{problem.answer}}}.",
        f"Step 1: oops.\nStep 2: fine.\nThe answer is \\boxed{{{problem.answer}}}.",
        f"Step 1: fine.\nThe answer is \\boxed{{{problem.answer}}}.",
    ][sample]


def test_critiques_land_on_their_own_responses_when_some_have_no_steps(config, trainer, tmp_path):
    t, actors = trainer(config("trainer.steps=1", "logging.log_samples=8"), script=mixed)
    metrics = t.train_step(0)
    # Only responses with steps reach the critic (the repeat in each group is a cache hit).
    assert sorted(steps[0] for steps in actors.critic_requests) == ["Step 1: fine."] * 2 + ["Step 1: oops."] * 2
    rows = samples(tmp_path)
    assert len(rows) == 8
    by_first_line: dict[str, list[dict]] = {}
    for row in rows:
        by_first_line.setdefault(row["response"].split("\n")[0], []).append(row)
    assert sorted(len(v) for v in by_first_line.values()) == [2, 2, 4]
    for row in by_first_line[""]:  # no step: no critique, no vote, outcome credit only (wrong: 0)
        assert row["steps"] == [] and row["critiques"] is None and row["step_penalty"] is None
        assert row["token_reward_min"] == row["token_reward_max"] == 0.0
    for row in by_first_line["Step 1: fine."]:
        # the critique the fake wrote for this very response, also when served from the cache
        assert row["critiques"] == ["First step: Step 1: fine.\nWrong step list: []"] * 2
        assert row["step_penalty"] == [0.0, 0.0] and row["token_reward_min"] == 2.0
    for row in by_first_line["Step 1: oops."]:
        assert row["critiques"] == ["First step: Step 1: oops.\nWrong step list: [1]"] * 2
        assert row["step_penalty"] == [1.0, 0.0, 0.0]
        assert [p["step"] for p in row["penalized"]] == [1]
        # right answer: 2 on every token, 2 - 1 = 1 on step 1's tokens
        assert (row["token_reward_min"], row["token_reward_max"]) == (1.0, 2.0)
    assert metrics["critic/responses_judged"] == 6.0
    assert metrics["critic/flagged_response_rate"] == pytest.approx(2 / 6)
    assert metrics["critic/flagged_at_step_1"] == pytest.approx(2 / 6)


def test_cache_hits_are_counted_from_the_judgements_and_cost_no_tokens(config, trainer):
    t, actors = trainer(config("trainer.steps=1"), script=mixed)
    metrics = t.train_step(0)
    # 2 groups x (1 fresh clean + 1 flawed + 1 repeat of the clean one): 4 requests, 2 hits.
    assert len(actors.critic_requests) == 4
    assert metrics["critic/cache_hits"] == 2.0
    assert metrics["critic/prompt_tokens"] == 4 * 10  # the hits cost nothing
    assert metrics["critic/critiques_per_response"] == 2.0  # hits still carry all k critiques


def test_grpo_never_calls_the_critic(config, trainer):
    t, actors = trainer(config("algo=grpo", "trainer.steps=1"), script=mixed)
    metrics = t.train_step(0)
    assert "critique" not in actors.calls and actors.critic_requests == []
    assert metrics["critic/responses_judged"] == 0.0 and metrics["critic/cache_hits"] == 0.0


@pytest.mark.parametrize(
    "err, recoverable",
    [
        (ray.exceptions.RayActorError(), True),  # an actor died (OOM kill, crashed engine)
        (ray.exceptions.NodeDiedError("node lost"), True),
        (ray.exceptions.OutOfMemoryError("memory monitor killed the worker"), True),
        (ray.exceptions.GetTimeoutError("no reply"), True),
        (WeightSyncError("broadcast failed"), True),
        (StaleRolloutError("stale"), True),
        # a task error is judged by the exception it wraps
        (ray.exceptions.RayTaskError("train", "tb", WeightSyncError("x")), True),
        (ray.exceptions.RayTaskError("train", "tb", ValueError("bad shape")), False),
        # a restart would fail the same way
        (ConfigError("critic.k: must be >= 1"), False),
        (ResourceError("needs 4 GPUs"), False),
        (ValueError("bad input"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_which_failures_a_run_recovers_from(err, recoverable):
    assert is_recoverable(err) is recoverable
