"""Shared settings for end-to-end runs: the tiny random model and a batch small enough that a
step takes seconds on 2 cores. Every e2e test is marked slow."""

import pytest

from capo_ray.config.compose import compose_config


def tiny_overrides(tmp_path, *extra: str) -> list[str]:
    return [
        "model=tiny",
        "rollout.n_samples=2",
        "rollout.max_new_tokens=16",
        "rollout.engine.max_model_len=512",
        "rollout.engine.dtype=float32",  # so the engine's greedy output can equal HF's exactly
        "data.prompts_per_step=2",
        "learner.micro_batch_size=2",
        "learner.lr=1e-3",  # large enough that 2 steps visibly move a random model
        "trainer.steps=2",
        f"trainer.output_dir={tmp_path}",
        "trainer.run_name=run",
        "logging.wandb=disabled",
        "logging.progress_bar=false",
        *extra,
    ]


@pytest.fixture
def tiny_config(tmp_path):
    def make(*extra: str):
        return compose_config(tiny_overrides(tmp_path, *extra))

    return make



@pytest.fixture(scope="session")
def tiny_overrides_for():
    """``tiny_overrides`` itself, for fixtures wider than one test (runs in a subprocess)."""
    return tiny_overrides
