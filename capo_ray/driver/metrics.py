"""Per-step metrics computed from the stage records (pure), so each number has one definition.

Judge cost (docs/algorithm.md, reviewers' "cost" point) is reported every step: critic prompt and
completion tokens, critiques per response, and judge tokens per policy token.
"""

from __future__ import annotations

from collections.abc import Sequence

from capo_ray.driver.records import Credit, Judgement, Steps
from capo_ray.records import FAILURE_CAUSES, Rollout
from capo_ray.rewards.verdict import Verdict

# Flagged rate per step position: one bucket for each of positions 1..7 and one, named
# "8plus", pooling every step at position 8 or later (long responses are rare; their steps
# share one rate so that no step falls outside every bucket).
LAST_STEP_BUCKET = 8


def _rate(num: float, den: float) -> float:
    return float(num) / den if den else 0.0


def rollout_metrics(rollouts: Sequence[Rollout], outcomes: Sequence[Verdict]) -> dict[str, float]:
    n = len(rollouts)
    tokens = sum(len(r.response_ids) for r in rollouts)
    return {
        "outcome/accuracy": _rate(sum(o.correct for o in outcomes), n),
        "outcome/no_answer_rate": _rate(sum(o.status == "no_answer" for o in outcomes), n),
        "outcome/verify_failures": float(sum(o.status in ("timeout", "error") for o in outcomes)),
        "rollout/responses": float(n),
        "rollout/policy_tokens": float(tokens),
        "rollout/mean_response_tokens": _rate(tokens, n),
        "rollout/truncated_rate": _rate(sum(r.finish_reason == "length" for r in rollouts), n),
    }


def critic_metrics(
    steps: Sequence[Steps], judgements: Sequence[Judgement], policy_tokens: int
) -> dict[str, float]:
    judged = [j for j in judgements if j.critique is not None]
    critiques = [v for j in judged for v in j.verdicts]
    failed = sum(t is None for j in judged for t in j.critique.texts)
    parsed = sum(v is not None for v in critiques)
    prompt_tok = sum(j.critique.prompt_tokens for j in judged)
    completion_tok = sum(j.critique.completion_tokens for j in judged)
    out = {
        "critic/responses_judged": float(len(judged)),
        "critic/critiques_per_response": _rate(len(critiques), len(judged)),
        "critic/parse_rate": _rate(parsed, len(critiques)),
        "critic/failed_requests": float(sum(j.critique.error is not None for j in judged)),
        "critic/failed_critiques": float(failed),
        "critic/abstain_rate": _rate(sum(j.abstained for j in judged), len(judged)),
        "critic/flagged_response_rate": _rate(sum(j.flagged for j in judged), len(judged)),
        "critic/flagged_step_rate": _rate(
            sum(sum(p > 0 for p in j.step_penalty) for j in judged if j.step_penalty),
            sum(len(s.texts) for s, j in zip(steps, judgements) if j.step_penalty),
        ),
        "critic/prompt_tokens": float(prompt_tok),
        "critic/completion_tokens": float(completion_tok),
        "critic/judge_tokens_per_policy_token": _rate(prompt_tok + completion_tok, policy_tokens),
        # Judge throughput per engine-second (a result's seconds are its share of its engine's
        # wall time): how close the critic engines run to saturation.
        "critic/critiques_per_engine_s": _rate(sum(t is not None for j in judged for t in j.critique.texts),
                                               sum(j.critique.seconds for j in judged)),
        "critic/tokens_per_engine_s": _rate(prompt_tok + completion_tok, sum(j.critique.seconds for j in judged)),
        "steps/mean_per_response": _rate(sum(len(s.texts) for s in steps), len(steps)),
        "critic/retries": float(sum(j.critique.retries for j in judged)),
    }
    # Why critiques failed (openai backend: docs/judge-service.md); every cause is reported,
    # zeros included, so a dashboard shows a flat line rather than a missing series.
    for cause in FAILURE_CAUSES:
        out[f"critic/failed/{cause}"] = float(sum(j.critique.failures.get(cause, 0) for j in judged))
    out["critic/cache_hits"] = float(sum(j.critique.cached for j in judged))
    out.update(flagged_by_position(judged))
    return out


def flagged_by_position(judgements: Sequence[Judgement]) -> dict[str, float]:
    """Step-error evidence over training (docs/algorithm.md, "Evidence beyond scores"): the
    share of voted steps at each position that the vote flagged. Keys
    ``critic/flagged_at_step_1`` .. ``_7`` and ``critic/flagged_at_step_8plus``; a bucket no
    step reached this batch is absent rather than 0."""
    flagged: dict[int, list[bool]] = {}
    for j in judgements:
        for index, penalty in enumerate(j.step_penalty or []):
            flagged.setdefault(min(index + 1, LAST_STEP_BUCKET), []).append(penalty > 0)
    return {
        f"critic/flagged_at_step_{pos}{'plus' if pos == LAST_STEP_BUCKET else ''}": _rate(sum(at), len(at))
        for pos, at in sorted(flagged.items())
    }


def credit_metrics(credits: Sequence[Credit]) -> dict[str, float]:
    tokens = sum(c.rewards.numel() for c in credits)
    return {
        "credit/mean_token_reward": _rate(sum(float(c.rewards.sum()) for c in credits), tokens),
        "credit/dropped_responses": float(sum(not c.trained for c in credits)),
    }
