"""Random state that decides a run's future, kept so a resumed run repeats an uninterrupted one.

Two kinds: seeds derived from (run seed, stream, step), which need no saving (each step's
engine sampling seed is one), and live generator states of the driver process (Python,
NumPy, torch) and of the driver-side critic, which the checkpoint saves and a resume restores.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch


def step_seed(seed: int, stream: str, step: int) -> int:
    """A 63-bit seed for ``stream`` at ``step``: independent of everything that ran before it,
    so step s samples the same after a resume as in a run that never stopped."""
    digest = hashlib.sha256(f"{seed}:{stream}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def capture_driver_rng() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def restore_driver_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
