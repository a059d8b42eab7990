"""Runs survive crashes: an engine killed mid-run makes the driver restart every actor and
resume from the last checkpoint; the finished run's log shows each step exactly once."""

import json
import threading
import time

import pytest
import ray

from capo_ray.train import run

pytestmark = pytest.mark.slow


def _kill_engine_after_first_step(metrics_path, stop: threading.Event, killed: list) -> None:
    while not stop.is_set():
        if metrics_path.exists() and metrics_path.read_text().count("\n") >= 1:
            try:
                ray.kill(ray.get_actor("rollout-engine-0"))
                killed.append(time.monotonic())
            except Exception:  # noqa: BLE001 - not up yet or already gone: try again
                time.sleep(0.2)
                continue
            return
        time.sleep(0.2)


def test_engine_crash_recovers_from_checkpoint(tiny_config, tmp_path):
    cfg = tiny_config("trainer.steps=3", "trainer.save_every=1", "trainer.max_step_failures=1")
    metrics_path = tmp_path / "run" / "metrics.jsonl"
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_engine_after_first_step, args=(metrics_path, stop, killed), daemon=True)
    killer.start()
    try:
        run_dir = run(cfg)
    finally:
        stop.set()
        killer.join(timeout=5)
    assert killed, "the engine was never killed: the test did not exercise recovery"
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    # weights are versioned across the restart: the resumed engines got the checkpoint's
    # version-1 weights first, so step 1 ends at version 2
    assert [r["weight_version"] for r in rows] == [1, 2, 3]
    log = (run_dir / "train.log").read_text()
    assert "recovering from failure 1/1" in log and "resuming from" in log
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_000000", "step_000001", "step_000002"]
