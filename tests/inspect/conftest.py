"""``fake_run``: a run directory written by the trainer's own code paths without Ray or
engines (rollouts with word-level token offsets go through segment -> arith critic -> vote ->
credit -> advantages; RunLogger writes metrics.jsonl and samples.jsonl as a training run does).
The browser fixtures are in tests/conftest.py (the e2e tests use them too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capo_ray.critics.arith import ArithCritic
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.logger import RunLogger
from capo_ray.driver.metrics import credit_metrics, critic_metrics, rollout_metrics
from capo_ray.driver.samples import pick_samples
from capo_ray.records import Problem, Rollout
from capo_ray.rewards.verdict import Verdict

PROBLEM = Problem(uid="p", question="Compute 3 + 4 * 5.", answer="23")
RESPONSES = (
    "4 * 5 = 21\n3 + 21 = 24\nThe answer is \\boxed{24}.",  # step 1 wrong
    "4 * 5 = 20\n3 + 20 = 23\nThe answer is \\boxed{23}.",  # all right
    "4 * 5 = 20\n3 + 20 = 25\nThe answer is \\boxed{25}.",  # step 2 wrong
    "I think it is \\boxed{23} <b>bold</b>",  # one step, nothing to check; HTML must be escaped
)


def make_rollout(text: str, group: int) -> Rollout:
    offsets, pos = [], 0
    for piece in text.split(" "):
        end = pos + len(piece)
        offsets.append((pos, min(end + 1, len(text))))
        pos = end + 1
    n = len(offsets)
    return Rollout(PROBLEM, group, [100, 101], list(range(n)), text, offsets, [-0.5] * n, 0, "stop")


def write_run(run_dir: Path, steps: int = 2, flip_noise: float = 0.0) -> list[dict]:
    """Returns the logged samples (with their step)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"algo": {"name": "capo"}, "critic": {"backend": "arith"}}))
    logger = RunLogger(run_dir, "disabled", "p", {})
    critic = ArithCritic(k=3, flip_noise=flip_noise, seed=0)
    logged = []
    for step in range(steps):
        rollouts = [make_rollout(t, group=i // 2) for i, t in enumerate(RESPONSES)]
        outcomes = [Verdict("\\boxed{23}" in t, "ok", "23" if "\\boxed{23}" in t else "x") for t in RESPONSES]
        segs = cs.segment(rollouts)
        judgements = cs.judge(critic.critique(None, [s.texts for s in segs]), segs, "majority")
        credits = cs.assign_credit(rollouts, outcomes, segs, judgements, 2.0, 1.0, "outcome")
        batch = cs.build_batch(rollouts, credits, "capo", True, 1e-6, 0)
        metrics = {"weight_version": step + 1, "learner/kl": 0.01 * step, "learner/grad_norm": 1.0,
                   "time/step": 2.0, "time/rollout": 1.0, "time/learner": 0.5}
        metrics.update(rollout_metrics(rollouts, outcomes))
        metrics.update(critic_metrics(segs, judgements, metrics["rollout/policy_tokens"]))
        metrics.update(credit_metrics(credits))
        logger.log_step(step, metrics)
        samples = pick_samples(rollouts, outcomes, segs, judgements, credits, len(rollouts), batch.advantages)
        logger.log_samples(step, samples)
        logged += [{"step": step, **s} for s in samples]
    logger.close()
    return logged


@pytest.fixture
def fake_run(tmp_path):
    run_dir = tmp_path / "run"
    return run_dir, write_run(run_dir)
