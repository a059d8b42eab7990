"""Run checkpoints: the learner's DeepSpeed state plus the trainer's own state (step, weight
version). A checkpoint counts only once ``trainer_state.json`` is written last, so a crash
during saving leaves the previous checkpoint as the one a resume picks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"


def save_trainer_state(ckpt_dir: Path, state: dict[str, Any]) -> None:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.rename(ckpt_dir / STATE_FILE)


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint under ``run_dir/checkpoints`` and its trainer state."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if (p / STATE_FILE).is_file())
    if not done:
        return None
    return done[-1], json.loads((done[-1] / STATE_FILE).read_text())
