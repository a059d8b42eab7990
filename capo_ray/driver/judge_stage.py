"""The critic stage of a step: who is judged (``critic.critique_on``, ``critic.token_budget``),
their critique prompts (``critic.prompt_template``), identical prompts judged once (the
critique cache), then parse and vote (credit_stage.judge).

Responses left out (no steps, filtered, over budget) get no critique: they keep their outcome
credit, as under GRPO, and are counted in the step metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from capo_ray.config.components import CriticConfig
from capo_ray.critics.cache import CritiqueCache, prompt_key
from capo_ray.critics.prompt_template import PromptTemplate
from capo_ray.critics.selection import estimate_tokens, select_for_judging
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.records import Judgement, Steps
from capo_ray.records import Rollout
from capo_ray.rewards.verdict import Verdict


class JudgeStage:
    def __init__(self, c: CriticConfig, enabled: bool) -> None:
        self.c, self.enabled = c, enabled
        self.cache = CritiqueCache(c.cache_size)
        self.template = PromptTemplate.load(c.prompt_template)

    def run(
        self, critic: Any, rollouts: Sequence[Rollout], steps: Sequence[Steps], outcomes: Sequence[Verdict]
    ) -> tuple[list[Judgement], dict[str, float]]:
        """Judgements in batch order and the stage's cost metrics. ``critic``: anything with
        the backends' ``critique(messages, step_texts)`` call."""
        c = self.c
        if not self.enabled:
            return cs.judge([None] * len(rollouts), steps, c.vote), {}
        # A response with no step has nothing to critique: it keeps its outcome credit.
        candidates = [i for i, s in enumerate(steps) if s.texts]
        built = cs.critique_messages([rollouts[i] for i in candidates], [steps[i] for i in candidates],
                                     c.use_reference_answer, self.template)  # fmt: skip
        messages = dict(zip(candidates, built))
        keys = [prompt_key(messages[i]) if i in messages else "" for i in range(len(rollouts))]
        costs = [
            0.0 if i not in messages or keys[i] in self.cache
            else estimate_tokens(sum(len(m["content"]) for m in messages[i]), c.k, c.max_tokens)
            for i in range(len(rollouts))
        ]  # fmt: skip
        chosen = select_for_judging(candidates, [o.correct for o in outcomes], [r.group for r in rollouts],
                                    costs, keys, c.critique_on, c.token_budget)  # fmt: skip
        todo = chosen.judged
        results = self.cache.critique(critic, [messages[i] for i in todo], [steps[i].texts for i in todo])
        per_response: list[Any] = [None] * len(rollouts)
        for i, result in zip(todo, results):
            per_response[i] = result
        metrics = {
            # of critic/cache_hits (critic_metrics), the repeats of a response in this same step
            "critic/repeats_in_step": float(len(todo) - len({keys[i] for i in todo})),
            "critic/skipped_no_steps": float(len(rollouts) - len(candidates)),
            "critic/skipped_by_filter": float(chosen.skipped_by_filter),
            "critic/skipped_by_budget": float(chosen.skipped_by_budget),
            "critic/budget_estimated_tokens": chosen.estimated_tokens,
        }
        return cs.judge(per_response, steps, c.vote), metrics
