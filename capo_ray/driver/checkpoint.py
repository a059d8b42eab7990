"""Run checkpoints: everything that decides a run's future, so that a run killed at any point
and started again repeats, step for step, what an uninterrupted run does.

``checkpoints/step_N/`` holds
  - ``learner/``: the DeepSpeed state of every rank (weights, optimizer moments, step counters);
  - ``hf/``: an HF export of the weights (for evaluation and sharing; not read on resume);
  - ``driver_state.pkl``: the driver's random generators (Python, NumPy, torch), the
    driver-side critic's state (the arith critic's flip-noise generator) and the critique cache
    (a cache hit skips the critic, so the cache decides which draws later steps get);
  - ``trainer_state.json``: the step, the weight version the engines hold, and the data cursor
    (the next batch index). It is written last, atomically: a checkpoint counts only once it
    exists, so a crash while saving leaves the previous checkpoint as the one a resume picks.

The engines' sampling needs no saved state: each step reseeds them from (seed, step)
(driver/rng.py).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"
DRIVER_STATE_FILE = "driver_state.pkl"


def save_trainer_state(ckpt_dir: Path, state: dict[str, Any], driver_state: dict[str, Any] | None = None) -> None:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if driver_state is not None:
        tmp = ckpt_dir / (DRIVER_STATE_FILE + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(driver_state, f)
        tmp.rename(ckpt_dir / DRIVER_STATE_FILE)
    tmp = ckpt_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.rename(ckpt_dir / STATE_FILE)


def load_driver_state(ckpt_dir: Path) -> dict[str, Any] | None:
    """The driver state saved with this checkpoint; None for checkpoints written without one."""
    path = ckpt_dir / DRIVER_STATE_FILE
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        return pickle.load(f)  # our own file, written by save_trainer_state


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint under ``run_dir/checkpoints`` and its trainer state."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if (p / STATE_FILE).is_file())
    if not done:
        return None
    return done[-1], json.loads((done[-1] / STATE_FILE).read_text())


def capture_driver_state(critic: Any, cache: Any) -> dict[str, Any]:
    """What the driver process holds that decides later steps (see the module docstring)."""
    from capo_ray.driver.rng import capture_driver_rng

    state_dict = getattr(critic, "state_dict", None)  # a critic in actors keeps no driver state
    return {
        "rng": capture_driver_rng(),
        "critic": state_dict() if state_dict is not None else None,
        "critique_cache": cache.state_dict(),
    }


def restore_driver_state(state: dict[str, Any], critic: Any, cache: Any) -> None:
    from capo_ray.driver.rng import restore_driver_rng

    restore_driver_rng(state["rng"])
    if state["critic"] is not None and hasattr(critic, "load_state_dict"):
        critic.load_state_dict(state["critic"])
    cache.load_state_dict(state["critique_cache"])
