"""Full records of a few responses per step: what each critique said, how the vote went and
which tokens were penalized — so a user can audit the judge instead of trusting a mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from capo_ray.driver.records import Credit, Judgement, Steps
from capo_ray.records import Rollout
from capo_ray.rewards.verdict import Verdict


def sample_record(r: Rollout, o: Verdict, s: Steps, j: Judgement, c: Credit) -> dict[str, Any]:
    penalized = [
        {"step": k + 1, "tokens": list(s.token_spans[k]), "text": s.texts[k], "penalty": j.step_penalty[k]}
        for k in range(len(s.texts))
        if j.step_penalty and j.step_penalty[k] > 0
    ]
    return {
        "problem": r.problem.question,
        "reference": r.problem.answer,
        "response": r.response_text,
        "weight_version": r.weight_version,
        "correct": o.correct,
        "verify_status": o.status,
        "extracted": o.extracted,
        "steps": s.texts,
        "critiques": None if j.critique is None else j.critique.texts,
        "critic_error": None if j.critique is None else j.critique.error,
        "verdicts": [None if v is None else sorted(v) for v in j.verdicts],
        "step_penalty": j.step_penalty,
        "penalized": penalized,
        "trained": c.trained,
        "token_reward_min": float(c.rewards.min()) if c.rewards.numel() else None,
        "token_reward_max": float(c.rewards.max()) if c.rewards.numel() else None,
    }


def pick_samples(
    rollouts: Sequence[Rollout],
    outcomes: Sequence[Verdict],
    steps: Sequence[Steps],
    judgements: Sequence[Judgement],
    credits: Sequence[Credit],
    limit: int,
) -> list[dict[str, Any]]:
    """Prefer responses the critic flagged (the interesting ones), then the rest, in order."""
    order = sorted(range(len(rollouts)), key=lambda i: (not judgements[i].flagged, i))[:limit]
    return [sample_record(rollouts[i], outcomes[i], steps[i], judgements[i], credits[i]) for i in order]
