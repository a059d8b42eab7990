"""Save cadence, resume, and the metrics rows a resume drops: the Trainer against FakeActors."""

from __future__ import annotations

import json

import pytest
import ray.exceptions

from capo_ray.driver.checkpoint import STATE_FILE
from capo_ray.driver.rng import step_seed


def steps_in(path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]


def saved_steps(actors) -> list[int]:
    return [int(p.name.removeprefix("step_")) for p in actors.saved]


@pytest.mark.parametrize(
    "steps, save_every, expected",
    [
        (5, 2, [1, 3, 4]),  # every 2nd step, and always the last one
        (3, 0, [2]),  # 0 = only at the end
        (3, 1, [0, 1, 2]),
        (4, 4, [3]),  # the cadence and the last step coincide: saved once
    ],
)
def test_save_cadence(config, trainer, steps, save_every, expected):
    t, actors = trainer(config(f"trainer.steps={steps}", f"trainer.save_every={save_every}"))
    t.fit()
    assert saved_steps(actors) == expected
    # The trainer's state is written beside the learner's, last, with the version the engines
    # hold and the data cursor (the next batch index).
    for path, step in zip(actors.saved, expected):
        assert json.loads((path / STATE_FILE).read_text()) == {"step": step, "weight_version": step + 1, "next_batch": step + 1}
        assert (path / "driver_state.pkl").is_file()
    # every step's engines were reseeded from (seed, step): a resumed step samples the same
    assert actors.sampling_seeds == [step_seed(0, "rollout", s) for s in range(steps)]


def test_resume_redoes_the_steps_after_the_checkpoint_and_drops_their_rows(config, trainer, tmp_path):
    cfg = config("trainer.steps=4", "trainer.save_every=2", "logging.log_samples=1")
    first, actors = trainer(cfg)
    # The learner dies in step 3: steps 0-2 are logged, but only step 1 was checkpointed.
    actors.faults[("train", 3)] = ray.exceptions.RayActorError()
    with pytest.raises(ray.exceptions.RayActorError):
        first.fit()
    run_dir = tmp_path / "run"
    assert steps_in(run_dir / "metrics.jsonl") == [0, 1, 2]
    assert saved_steps(actors) == [1]

    second, fresh = trainer(cfg)
    history = second.fit()
    # Step 2's first row came from weights the run no longer has: it is replaced, not kept.
    assert [row["step"] for row in history] == [0, 1, 2, 3]
    assert steps_in(run_dir / "samples.jsonl") == [0, 1, 2, 3]
    assert fresh.loaded == [run_dir / "checkpoints" / "step_000001"]
    assert fresh.updates == 2 + 2  # two updates restored from the checkpoint, two redone
    # The restarted engines hold the initial weights: the checkpoint's version is pushed to them
    # before the first rollout, and the versions carry on from there.
    assert fresh.synced == [2, 3, 4]
    assert fresh.generated_versions == [2, 3]
    assert fresh.sampling_seeds[0] == actors.sampling_seeds[2]  # the redone step samples the same
    assert [row["weight_version"] for row in history] == [1, 2, 3, 4]


def test_a_run_with_resume_off_starts_over_and_clears_old_rows(config, trainer, tmp_path):
    first, _ = trainer(config("trainer.steps=2", "trainer.save_every=1"))
    first.fit()
    second, fresh = trainer(config("trainer.steps=1", "trainer.resume=false"))
    history = second.fit()
    assert fresh.loaded == [] and fresh.synced == [1]
    assert [row["step"] for row in history] == [0]


def test_a_finished_run_resumed_does_no_more_steps(config, trainer):
    first, _ = trainer(config("trainer.steps=2"))
    first.fit()
    second, fresh = trainer(config("trainer.steps=2"))
    history = second.fit()
    assert [row["step"] for row in history] == [0, 1]
    assert fresh.calls.get("generate", 0) == 0 and fresh.synced == [2]


def test_an_incomplete_checkpoint_is_never_resumed_from(config, trainer, tmp_path):
    first, _ = trainer(config("trainer.steps=3", "trainer.save_every=1"))
    first.fit()
    # A crash while saving step 2 leaves its folder without the trainer state (written last).
    (tmp_path / "run" / "checkpoints" / "step_000002" / STATE_FILE).unlink()
    second, fresh = trainer(config("trainer.steps=3"))
    history = second.fit()
    assert fresh.loaded == [tmp_path / "run" / "checkpoints" / "step_000001"]
    assert [row["step"] for row in history] == [0, 1, 2]
