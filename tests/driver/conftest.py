"""Shared pieces of the Trainer tests: ``FakeActors``, a small config, the policy's real
tokenizer, and a Trainer wired to the fake (no Ray, no engine, no learner process).

``FakeActors`` implements every method the Trainer calls on its actors object. It is honest
where the Trainer depends on behaviour: rollouts are real token ids of the policy's tokenizer
with character offsets from the repository's own incremental detokenizer, each tagged with the
weight version the "engines" hold; a sync changes that version (unless a test makes it get
lost); checkpoints are files that a later fake loads back. What a real actor would compute
(logprobs, losses) is a fixed, visible value.

A scripted policy writes the responses: ``script(problem, sample_index) -> text``. A scripted
critic flags every step containing "oops" and names the response's first step in its text,
so a test can see which response each critique was written for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import ray.exceptions
import torch

from capo_ray.config.compose import compose_config
from capo_ray.driver.recovery import ActorLostError
from capo_ray.driver.trainer import Trainer
from capo_ray.models.smollm2 import load_tokenizer
from capo_ray.records import CritiqueResult, Problem, Rollout, TrainBatch
from capo_ray.workers.detokenize import incremental_offsets

Script = Callable[[Problem, int], str]

# Which role's actor serves each call (what a death of that role breaks).
ROLE_OF = {
    "generate": "rollout", "sync_weights": "rollout", "generate_samples": "rollout", "critique": "critic",
    "reference_logprobs": "reference", "train": "learner", "save_checkpoint": "learner", "load_checkpoint": "learner",
}  # fmt: skip


def two_steps(problem: Problem, sample: int) -> str:
    """Right answer for even samples, wrong for odd; two steps either way."""
    answer = problem.answer if sample % 2 == 0 else problem.answer + "1"
    return f"Step 1: I compute it.\nThe answer is \\boxed{{{answer}}}."


class FakeActors:
    def __init__(self, tokenizer: Any, n_samples: int, k: int, script: Script = two_steps) -> None:
        self.tokenizer = tokenizer
        self.n_samples = n_samples
        self.k = k
        self.script = script
        self.engine_version = 0  # what the "engines" were started with: the initial weights
        self.updates = 0  # optimizer steps taken: the "learner state" a checkpoint keeps
        self.lose_syncs: set[int] = set()  # versions whose sync never reaches the engines
        self.faults: dict[tuple[str, int], BaseException] = {}  # (method, call index) -> raise
        self.calls: dict[str, int] = {}
        self.generated_versions: list[int] = []
        self.critic = None  # no driver-side critic state: the scripted critic below is stateless
        self.sampling_seeds: list[int | None] = []  # the per-step engine seed of each generate call
        self.critic_requests: list[list[str]] = []  # step texts of each critique request
        self.synced: list[int] = []
        self.saved: list[Path] = []
        self.loaded: list[Path] = []
        self.batches: list[TrainBatch] = []
        self.off_policy: list[bool] = []  # per train call: trained on rollouts older than the weights
        # (method, call index) -> (role, actor index) that dies there; a call needing a dead actor's
        # role fails as the real one would, until ``replace`` starts it again.
        self.kills: dict[tuple[str, int], tuple[str, int]] = {}
        self.dead: set[tuple[str, int]] = set()
        self.replaced: list[tuple[str, int]] = []

    def _enter(self, method: str) -> None:
        index = self.calls.get(method, 0)
        self.calls[method] = index + 1
        if (method, index) in self.kills:
            self.dead.add(self.kills[(method, index)])
        role = ROLE_OF.get(method)
        if any(r == role for r, _ in self.dead):
            # The real Actors: a dead actor's call raises ActorDiedError; the critic pool
            # abstains instead and Actors.critique raises ActorLostError.
            raise ActorLostError("critic engine died") if role == "critic" else ray.exceptions.ActorDiedError()
        fault = self.faults.get((method, index))
        if fault is not None:
            raise fault

    # -- the stages the Trainer calls -----------------------------------------------------------
    def generate(self, prompt_ids: list[list[int]], problems: list[Problem], seed: int | None = None) -> list[Rollout]:
        self._enter("generate")
        self.sampling_seeds.append(seed)
        self.generated_versions.append(self.engine_version)
        out = []
        for group, (ids, problem) in enumerate(zip(prompt_ids, problems)):
            for sample in range(self.n_samples):
                text = self.script(problem, sample)
                response_ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
                decoded, offsets = incremental_offsets(self.tokenizer, response_ids)
                out.append(
                    Rollout(problem, group, list(ids), response_ids, decoded, offsets,
                            [-1.0] * len(response_ids), self.engine_version, "stop")
                )
        return out

    def critique(self, messages: list[list[dict[str, str]]], step_texts: list[list[str]]) -> list[CritiqueResult]:
        self._enter("critique")
        out = []
        for steps in step_texts:
            assert steps, "a response with no step must never reach the critic"
            self.critic_requests.append(list(steps))
            wrong = [i + 1 for i, s in enumerate(steps) if "oops" in s]
            text = f"First step: {steps[0]}\nWrong step list: {wrong}"
            out.append(CritiqueResult(texts=[text] * self.k, prompt_tokens=10, completion_tokens=5 * self.k))
        return out

    def reference_logprobs(self, batch: TrainBatch) -> torch.Tensor:
        self._enter("reference_logprobs")
        return torch.full_like(batch.advantages, -1.0) * batch.response_mask

    def train(self, batch: TrainBatch, off_policy: bool = False) -> dict[str, float]:
        self._enter("train")
        self.off_policy.append(off_policy)
        self.batches.append(batch)
        self.updates += 1
        return {"loss": float((batch.advantages * batch.response_mask).sum())}

    def sync_weights(self, version: int) -> int:
        self._enter("sync_weights")
        self.synced.append(version)
        if version not in self.lose_syncs:
            self.engine_version = version
        return version

    def generate_samples(self, *args: Any) -> list[list[Any]]:
        raise AssertionError("periodic evaluation is off in these tests")

    # -- checkpoints and bookkeeping ------------------------------------------------------------
    def save_checkpoint(self, path: Path) -> None:
        self._enter("save_checkpoint")
        (path / "learner").mkdir(parents=True, exist_ok=True)
        (path / "learner" / "fake_state.json").write_text(json.dumps({"updates": self.updates}))
        self.saved.append(path)

    def load_checkpoint(self, path: Path) -> None:
        self._enter("load_checkpoint")
        self.updates = json.loads((path / "learner" / "fake_state.json").read_text())["updates"]
        self.loaded.append(path)

    def peak_rss_gib(self) -> float:
        return 0.0

    # -- in-place replacement ---------------------------------------------------------------------
    def dead_actors(self) -> list[tuple[str, int]]:
        return sorted(self.dead)

    def replace(self, role: str, index: int) -> None:
        assert role != "learner", "a learner rank is never replaced in place"
        self.dead.discard((role, index))
        self.replaced.append((role, index))
        if role == "rollout":
            self.engine_version = 0  # a new engine starts from the initial weights

    def shutdown(self) -> None:
        self.calls["shutdown"] = self.calls.get("shutdown", 0) + 1


# -- fixtures ------------------------------------------------------------------------------------
PROMPTS, SAMPLES, K = 2, 4, 2


@pytest.fixture(scope="session")
def tokenizer():
    # The tiny model's tokenizer (it borrows SmolLM2's): real ids, chat template and EOS.
    return load_tokenizer()


@pytest.fixture
def config(tmp_path):
    def make(*extra: str):
        return compose_config([
            f"data.prompts_per_step={PROMPTS}",
            f"rollout.n_samples={SAMPLES}",
            f"critic.k={K}",
            "learner.micro_batch_size=2",
            "trainer.steps=3",
            f"trainer.output_dir={tmp_path}",
            "trainer.run_name=run",
            "logging.wandb=disabled",
            "logging.progress_bar=false",
            "logging.log_samples=0",
            "logging.plots=false",
            *extra,
        ])

    return make


@pytest.fixture
def fake_actors(tokenizer):
    """``fake_actors(cfg, **kwargs) -> FakeActors`` sized from the config."""

    def make(cfg, **kwargs):
        return FakeActors(tokenizer, cfg.rollout.n_samples, cfg.critic.k, **kwargs)

    return make


@pytest.fixture
def trainer(tmp_path, tokenizer, fake_actors):
    """``trainer(cfg, **fake_kwargs) -> (Trainer, FakeActors)``."""

    def make(cfg, **fake_kwargs):
        actors = fake_actors(cfg, **fake_kwargs)
        run_dir = tmp_path / cfg.trainer.run_name
        run_dir.mkdir(parents=True, exist_ok=True)
        return Trainer(cfg, actors, tokenizer, run_dir), actors

    return make
