"""From critique text to the tensor the learner trains on, with hand-computed values."""

import torch

from capo_ray.driver import credit_stage as cs
from capo_ray.driver.metrics import critic_metrics
from capo_ray.records import CritiqueResult, Problem, Rollout
from capo_ray.rewards.verdict import Verdict

PROBLEM = Problem(uid="p", question="Compute 3 + 4 * 5.", answer="23")


def make_rollout(text: str, group: int, prompt_len: int = 2) -> Rollout:
    # One "token" per whitespace-separated word plus the newline/space after it: offsets are
    # exact character spans, as the detokenizer would produce for a word-level tokenizer.
    offsets, pos = [], 0
    for piece in text.split(" "):
        end = pos + len(piece)
        offsets.append((pos, min(end + 1, len(text))))
        pos = end + 1
    n = len(offsets)
    return Rollout(
        problem=PROBLEM, group=group, prompt_ids=list(range(100, 100 + prompt_len)),
        response_ids=list(range(n)), response_text=text, token_offsets=offsets,
        logprobs=[-0.5] * n, weight_version=0, finish_reason="stop",
    )


def test_flagged_step_tokens_get_the_process_penalty():
    # Two steps on separate lines; the response is correct.
    r = make_rollout("Step 1: 4 * 5 = 21\nThe answer is \\boxed{23}.", group=0)
    (steps,) = cs.segment([r])
    assert steps.texts == ["Step 1: 4 * 5 = 21", "The answer is \\boxed{23}."]
    # tokens: "Step" "1:" "4" "*" "5" "=" "21\nThe" "answer" "is" "\boxed{23}."
    # token 6 ("21\nThe") straddles both steps and belongs to the earlier one (step 1)
    assert steps.token_spans == [(0, 7), (7, 10)]
    crit = CritiqueResult(texts=["Wrong step list: [1]", "wrong steps: 1", "garbage", None])
    (j,) = cs.judge([crit], [steps], "majority")
    # two valid critiques both flag step 1 (the failed and unreadable ones abstain): m = 2, c_1 = 2
    assert j.verdicts == [frozenset({1}), frozenset({1}), None, None]
    assert j.step_penalty == [1.0, 0.0]
    (credit,) = cs.assign_credit([r], [Verdict(True, "ok", "23")], [steps], [j], 2.0, 1.0, "outcome")
    # correct: 2 everywhere, minus 1 on step 1's seven tokens
    assert credit.rewards.tolist() == [1.0] * 7 + [2.0] * 3


def test_flag_wrong_answer_penalizes_an_early_answer_no_step_check_can_see():
    # Right arithmetic, but the answer comes after one of the problem's steps: wrong outcome.
    r = make_rollout("Step 1: 4 * 5 = 20\nThe answer is \\boxed{20}.", group=0)
    (steps,) = cs.segment([r])
    (j,) = cs.judge([CritiqueResult(texts=["Wrong step list: []"] * 2)], [steps], "majority")
    assert j.step_penalty == [0.0, 0.0]
    wrong = [Verdict(False, "ok", "20")]
    (plain,) = cs.assign_credit([r], wrong, [steps], [j], 2.0, 1.0, "outcome")
    (flagged,) = cs.assign_credit([r], wrong, [steps], [j], 2.0, 1.0, "outcome", flag_wrong_answer=True)
    assert plain.rewards.tolist() == [0.0] * 10
    assert flagged.rewards.tolist() == [0.0] * 7 + [-1.0] * 3  # the answer line's three tokens


def test_all_abstain_keeps_outcome_credit_or_drops_the_sample():
    r = make_rollout("a b\nc", group=0)
    (steps,) = cs.segment([r])
    (j,) = cs.judge([CritiqueResult(texts=[None, None], error="engine died")], [steps], "majority")
    assert j.abstained and j.step_penalty is None
    (kept,) = cs.assign_credit([r], [Verdict(False, "ok", "1")], [steps], [j], 2.0, 1.0, "outcome")
    assert kept.trained and kept.rewards.tolist() == [0.0, 0.0]
    (dropped,) = cs.assign_credit([r], [Verdict(False, "ok", "1")], [steps], [j], 2.0, 1.0, "drop")
    assert not dropped.trained
    m = critic_metrics([steps], [j], policy_tokens=2)
    assert m["critic/abstain_rate"] == 1.0 and m["critic/failed_requests"] == 1.0


def test_batch_aligns_advantages_to_response_positions():
    rs = [make_rollout("x y", group=0), make_rollout("x y z", group=0, prompt_len=3)]
    steps = cs.segment(rs)
    judg = cs.judge([None, None], steps, "majority")
    credits = cs.assign_credit(rs, [Verdict(True, "ok", "1"), Verdict(False, "ok", "2")], steps, judg, 2.0, 1.0, "outcome")
    batch = cs.build_batch(rs, credits, "capo", scale=False, eps=1e-6, pad_id=0)
    # rows: prompt 2 + response 2 = 4 positions; prompt 3 + response 3 = 6 positions -> L = 6
    assert batch.input_ids.shape == (2, 6)
    assert batch.response_mask.tolist() == [[0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]]
    # group token mean over 5 tokens: (2 + 2 + 0 + 0 + 0) / 5 = 0.8 (no std scaling)
    expected = torch.tensor([[0, 0, 1.2, 1.2, 0, 0], [0, 0, 0, -0.8, -0.8, -0.8]])
    assert torch.allclose(batch.advantages, expected)
    assert batch.old_logprobs[0, 2:4].tolist() == [-0.5, -0.5] and batch.old_logprobs[0, :2].tolist() == [0, 0]
    assert batch.attention_mask[0].tolist() == [1, 1, 1, 1, 0, 0]
