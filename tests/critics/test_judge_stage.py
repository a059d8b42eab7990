"""The trainer's critic stage: who is judged, repeats judged once, what is counted."""

from capo_ray.config.components import CriticConfig
from capo_ray.critics.arith import ArithCritic
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.judge_stage import JudgeStage
from capo_ray.records import Problem, Rollout
from capo_ray.rewards.verdict import Verdict

PROBLEM = Problem(uid="p", question="Compute 4 * 5 + 1.", answer="21")


def rollout(text: str, group: int) -> Rollout:
    offsets = [(i, i + 1) for i in range(len(text))]  # one token per character
    return Rollout(PROBLEM, group, [1], list(range(len(text))), text, offsets, [-0.1] * len(text), 0, "stop")


class CountingCritic(ArithCritic):
    def __init__(self):
        super().__init__(k=2, flip_noise=0.0, seed=0)
        self.asked = []

    def critique(self, messages, step_texts):
        self.asked.append(len(messages))
        return super().critique(messages, step_texts)


WRONG = "4 * 5 = 21\n21 + 1 = 22"  # step 1 is wrong; answer 22 is incorrect
RIGHT = "4 * 5 = 20\n20 + 1 = 21"


def _run(texts_groups, correct, **cfg):
    rollouts = [rollout(t, g) for t, g in texts_groups]
    steps = cs.segment(rollouts)
    outcomes = [Verdict(ok, "ok", None) for ok in correct]
    stage = JudgeStage(CriticConfig(k=2, **cfg), enabled=True)
    critic = CountingCritic()
    judgements, metrics = stage.run(critic, rollouts, steps, outcomes)
    return judgements, metrics, critic, stage, (rollouts, steps, outcomes)


def test_identical_responses_are_judged_once_and_then_cached():
    judgements, m, critic, stage, (rollouts, steps, outcomes) = _run(
        [(WRONG, 0), (WRONG, 0), (RIGHT, 0), ("", 1), (RIGHT, 1)], [False, False, True, False, True]
    )
    # 5 responses: one has no steps; of the 4 others, two pairs are identical -> 2 prompts sent
    assert critic.asked == [2]
    assert m["critic/repeats_in_step"] == 2 and m["critic/skipped_no_steps"] == 1
    assert [j.critique.cached for j in judgements if j.critique] == [False, True, False, True]
    assert [j.step_penalty for j in judgements] == [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], None, [0.0, 0.0]]
    assert judgements[3].critique is None  # no steps: no critique, keeps its outcome credit
    # next step: the same responses again are served from the cache, the critic is not asked
    again, m2 = stage.run(critic, rollouts, steps, outcomes)
    assert critic.asked == [2, 0] and m2["critic/budget_estimated_tokens"] == 0
    assert m2["critic/repeats_in_step"] == 2  # of the 4 cache hits, 2 repeat within the step
    assert all(j.critique.cached for j in again if j.critique)


def test_critique_on_incorrect_leaves_the_right_ones_unjudged():
    judgements, m, critic, _, _ = _run([(WRONG, 0), (RIGHT, 0)], [False, True], critique_on="incorrect")
    assert judgements[0].step_penalty == [1.0, 0.0] and judgements[1].critique is None
    assert m["critic/skipped_by_filter"] == 1 and critic.asked == [1]


def test_token_budget_judges_the_incorrect_first():
    # Each prompt costs ~ chars/4 + k * max_tokens = a few hundred + 2 * 10 tokens: a budget of
    # one prompt's worth judges only the wrong response (first in the stated order).
    _, m_all, *_ = _run([(WRONG, 0)], [False], max_tokens=10)
    one = int(m_all["critic/budget_estimated_tokens"]) + 1
    judgements, m, critic, _, _ = _run([(RIGHT, 0), (WRONG, 0)], [True, False], max_tokens=10, token_budget=one)
    assert judgements[0].critique is None and judgements[1].critique is not None
    assert m["critic/skipped_by_budget"] == 1 and m["critic/budget_estimated_tokens"] <= one


def test_disabled_stage_judges_nothing():
    rollouts = [rollout(WRONG, 0)]
    judgements, metrics = JudgeStage(CriticConfig(), enabled=False).run(None, rollouts, cs.segment(rollouts), [Verdict(False, "ok", None)])
    assert judgements[0].critique is None and metrics == {}
