"""Full records of a few responses per step: what each critique said, how the vote went and
which tokens were penalized — so a user can audit the judge instead of trusting a mean.

Each record also carries the response as the policy's own tokens (their text pieces), which
step each token belongs to, and each token's reward and advantage: what the credit inspector
(capo-ray-inspect) draws its heat map from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from capo_ray.driver.records import Credit, Judgement, Steps
from capo_ray.records import Rollout
from capo_ray.rewards.verdict import Verdict


def _round(values: Sequence[float]) -> list[float]:
    return [round(float(v), 5) for v in values]


def token_view(r: Rollout, s: Steps, c: Credit, advantages: Sequence[float] | None) -> dict[str, Any]:
    """The response token by token: text piece, step index (-1: between steps), reward, advantage."""
    step_of = [-1] * len(r.response_ids)
    for k, (lo, hi) in enumerate(s.token_spans):
        for t in range(lo, min(hi, len(step_of))):
            step_of[t] = k
    return {
        "tokens": [r.response_text[a:b] for a, b in r.token_offsets],
        "token_step": step_of,
        "token_rewards": _round(c.rewards.tolist()),
        "token_advantages": None if advantages is None else _round(advantages),
        "step_token_spans": [list(span) for span in s.token_spans],
    }


def sample_record(
    r: Rollout, o: Verdict, s: Steps, j: Judgement, c: Credit, advantages: Sequence[float] | None = None
) -> dict[str, Any]:
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
        "group": r.group,
        "flagged": j.flagged,
        "abstained": j.abstained,
        **token_view(r, s, c, advantages),
    }


def pick_samples(
    rollouts: Sequence[Rollout],
    outcomes: Sequence[Verdict],
    steps: Sequence[Steps],
    judgements: Sequence[Judgement],
    credits: Sequence[Credit],
    limit: int,
    advantages: torch.Tensor | None = None,
) -> list[dict[str, Any]]:
    """Prefer responses the critic flagged (the interesting ones), then the rest, in order.
    ``advantages``: the batch's [B, L] advantages (prompt + response positions, as TrainBatch)."""
    order = sorted(range(len(rollouts)), key=lambda i: (not judgements[i].flagged, i))[:limit]
    return [
        sample_record(rollouts[i], outcomes[i], steps[i], judgements[i], credits[i], _response_row(advantages, rollouts[i], i))
        for i in order
    ]


def _response_row(advantages: torch.Tensor | None, r: Rollout, i: int) -> list[float] | None:
    if advantages is None:
        return None
    p = len(r.prompt_ids)
    return advantages[i, p : p + len(r.response_ids)].tolist()
