"""What a checkpoint restores beyond the learner: the driver's generators, the arith critic's
flip noise and the critique cache, so the steps after a resume repeat an uninterrupted run.
Also: per-step engine seeds, and a metrics log with a torn last line (a killed driver)."""

import json
import random

import numpy as np
import pytest
import torch

from capo_ray.critics.arith import ArithCritic
from capo_ray.critics.cache import CritiqueCache
from capo_ray.driver.checkpoint import (
    capture_driver_state, latest_checkpoint, load_driver_state, restore_driver_state, save_trainer_state,
)
from capo_ray.driver.logger import read_metrics, truncate_metrics
from capo_ray.driver.rng import step_seed

STEPS = [["2 + 3 = 5", "5 * 2 = 11", "\\boxed{11}"], ["1 + 1 = 2"], ["4 - 1 = 3", "3 * 3 = 9"]]


def _msgs(steps):
    return [{"role": "user", "content": "\n".join(steps)}]


def _judge_step(critic, cache, step):
    # a repeat of earlier responses (cache hits) plus one the critic has not seen (fresh draws)
    batch = STEPS + [[f"{step} + 1 = {step + 1}", "\\boxed{0}"]]
    results = cache.critique(critic, [_msgs(s) for s in batch], batch)
    return [r.texts for r in results]


def test_resumed_critic_and_cache_repeat_the_uninterrupted_run(tmp_path):
    critic, cache = ArithCritic(k=4, flip_noise=0.3, seed=0), CritiqueCache(100)
    _judge_step(critic, cache, 0)
    random.random(), np.random.rand(), torch.rand(1)
    save_trainer_state(tmp_path / "step_000000", {"step": 0, "weight_version": 1, "next_batch": 1},
                       capture_driver_state(critic, cache))
    later = [_judge_step(critic, cache, step) for step in (1, 2, 3)]  # uninterrupted
    after = (random.random(), float(np.random.rand()), float(torch.rand(1)))

    fresh_critic, fresh_cache = ArithCritic(k=4, flip_noise=0.3, seed=0), CritiqueCache(100)
    restore_driver_state(load_driver_state(tmp_path / "step_000000"), fresh_critic, fresh_cache)
    assert [_judge_step(fresh_critic, fresh_cache, step) for step in (1, 2, 3)] == later
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == after
    # the noise is real: a critic restarted without the state flips other verdicts
    other, other_cache = ArithCritic(k=4, flip_noise=0.3, seed=0), CritiqueCache(100)
    assert [_judge_step(other, other_cache, step) for step in (1, 2, 3)] != later


def test_cache_hits_are_part_of_the_state():
    critic, cache = ArithCritic(k=2, flip_noise=0.5, seed=1), CritiqueCache(10)
    first = cache.critique(critic, [_msgs(STEPS[0])], [STEPS[0]])
    restored = CritiqueCache(10)
    restored.load_state_dict(json.loads(json.dumps(cache.state_dict())))
    again = restored.critique(ArithCritic(k=2, flip_noise=0.5, seed=99), [_msgs(STEPS[0])], [STEPS[0]])
    hits = sum(r.cached for r in again)  # the hit count travels on the results
    assert hits == 1 and again[0].texts == first[0].texts


def test_critic_state_survives_json():
    critic = ArithCritic(k=3, flip_noise=0.4, seed=5)
    critic.critique(None, STEPS)
    copy = ArithCritic(k=3, flip_noise=0.4, seed=0)
    copy.load_state_dict(json.loads(json.dumps(critic.state_dict())))
    assert copy.critique(None, STEPS) == critic.critique(None, STEPS)


def test_checkpoint_counts_once_trainer_state_is_written(tmp_path):
    run = tmp_path / "run"
    save_trainer_state(run / "checkpoints" / "step_000000", {"step": 0, "weight_version": 1})
    (run / "checkpoints" / "step_000001").mkdir()  # a save the driver died during
    (run / "checkpoints" / "step_000001" / "driver_state.pkl").write_bytes(b"")
    path, state = latest_checkpoint(run)
    assert path.name == "step_000000" and state == {"step": 0, "weight_version": 1}
    assert load_driver_state(path) is None  # an older checkpoint without driver state


def test_step_seeds_depend_only_on_seed_stream_and_step():
    assert step_seed(0, "rollout", 3) == step_seed(0, "rollout", 3)
    seeds = {step_seed(s, r, t) for s in (0, 1) for r in ("rollout", "eval") for t in range(50)}
    assert len(seeds) == 200 and all(0 <= x < 2**63 for x in seeds)


def test_torn_last_line_is_dropped_and_rows_after_the_checkpoint_too(tmp_path):
    rows = [{"step": s, "x": s} for s in range(3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "x"')
    assert read_metrics(tmp_path) == rows
    truncate_metrics(tmp_path, last_step=1)
    assert read_metrics(tmp_path) == rows[:2]


def test_a_bad_line_inside_the_log_names_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\nnot json\n{"step": 1}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON row"):
        read_metrics(tmp_path)
