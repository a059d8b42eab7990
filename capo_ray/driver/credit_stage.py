"""Driver stages between the engines and the learner, all in-process and cheap:
segment -> (critic requests) -> parse + vote -> token credit -> advantages -> TrainBatch.

They call only the pure core, so the exact path from critique text to the tensor the learner
trains on is testable without Ray or any engine (tests/driver/test_credit_stage.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from capo_ray.core.advantages import compute_advantages
from capo_ray.core.credit import explain_wrong_answer, token_rewards
from capo_ray.core.critique import build_critique_messages, parse_critique
from capo_ray.core.segment import split_steps, token_step_spans
from capo_ray.core.voting import vote
from capo_ray.driver.records import Credit, Judgement, Steps
from capo_ray.records import CritiqueResult, Rollout, TrainBatch
from capo_ray.rewards.verdict import Verdict


def segment(rollouts: Sequence[Rollout]) -> list[Steps]:
    """Split each response into steps and map them onto its generated tokens by offsets."""
    out = []
    for r in rollouts:
        spans = split_steps(r.response_text)
        out.append(
            Steps(
                char_spans=spans,
                token_spans=token_step_spans(spans, r.token_offsets),
                texts=[r.response_text[s:e] for s, e in spans],
            )
        )
    return out


def critique_messages(
    rollouts: Sequence[Rollout], steps: Sequence[Steps], use_reference: bool, template: Any = None
) -> list[list[dict[str, str]]]:
    """One GenPRM chat prompt per response (responses with no step get none: see judge).
    ``template``: a ``capo_ray.critics.prompt_template.PromptTemplate``; None: the built-in prompt."""
    build = build_critique_messages if template is None else template.messages
    return [build(r.problem.question, s.texts, r.problem.answer if use_reference else None) for r, s in zip(rollouts, steps)]


def judge(critiques: Sequence[CritiqueResult | None], steps: Sequence[Steps], rule: str) -> list[Judgement]:
    """Parse every critique (unreadable or failed ones abstain) and vote per response."""
    out = []
    for result, s in zip(critiques, steps):
        if result is None:
            out.append(Judgement(critique=None, verdicts=[], step_penalty=None))
            continue
        n = len(s.texts)
        verdicts = [None if text is None else parse_critique(text, n) for text in result.texts]
        out.append(Judgement(critique=result, verdicts=verdicts, step_penalty=vote(verdicts, n, rule)))
    return out


def assign_credit(
    rollouts: Sequence[Rollout],
    outcomes: Sequence[Verdict],
    steps: Sequence[Steps],
    judgements: Sequence[Judgement],
    w_whole: float,
    w_process: float,
    all_abstain: str,
    flag_wrong_answer: bool = False,
) -> list[Credit]:
    """R_t = r_v * W_whole - 1[t in wrong step] * W_process * penalty (docs/algorithm.md, method step 6).

    A response whose critiques all failed keeps its outcome credit (``all_abstain=outcome``)
    or is left out of the update (``drop``); it never silently gets a reward of 0.
    ``flag_wrong_answer``: a wrong answer with no flagged step has its last step flagged
    (``core.credit.explain_wrong_answer``).
    """
    out = []
    for r, o, s, j in zip(rollouts, outcomes, steps, judgements):
        penalty = explain_wrong_answer(o.correct, j.step_penalty) if flag_wrong_answer else j.step_penalty
        rewards = token_rewards(
            o.correct, s.token_spans, penalty, len(r.response_ids), w_whole=w_whole, w_process=w_process
        )
        out.append(Credit(rewards=rewards, trained=not (j.abstained and all_abstain == "drop")))
    return out


def build_batch(
    rollouts: Sequence[Rollout],
    credits: Sequence[Credit],
    estimator: str,
    scale: bool,
    eps: float,
    pad_id: int,
) -> TrainBatch:
    """Right-padded prompt+response rows with group-normalized per-token advantages.

    Advantages are normalized over the trained tokens of each prompt's group (CAPO method
    step 7) and kept per token all the way into the loss: nothing here sums them per sequence.
    """
    input_ids, attention, _ = padded_rows(rollouts, pad_id)  # [B, L] each
    b, l_max = input_ids.shape
    resp_mask = torch.zeros((b, l_max))  # [B, L]
    rewards = torch.zeros((b, l_max))  # [B, L]
    old_lp = torch.zeros((b, l_max))  # [B, L]
    for i, (r, c) in enumerate(zip(rollouts, credits)):
        p, t = len(r.prompt_ids), len(r.response_ids)
        if c.trained:
            resp_mask[i, p : p + t] = 1.0
        rewards[i, p : p + t] = c.rewards
        old_lp[i, p : p + t] = torch.tensor(r.logprobs, dtype=torch.float32)
    group_ids = torch.tensor([r.group for r in rollouts], dtype=torch.long)  # [B]
    adv = compute_advantages(estimator, rewards, resp_mask, group_ids, scale=scale, eps=eps)  # [B, L]
    return TrainBatch(
        input_ids=input_ids,
        attention_mask=attention,
        response_mask=resp_mask,
        advantages=adv,
        old_logprobs=old_lp,
    )


def padded_rows(rollouts: Sequence[Rollout], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, response positions), each [B, L]: prompt + response,
    right-padded. The one layout of a step's rows, shared by the batch and the reference."""
    lengths = [len(r.prompt_ids) + len(r.response_ids) for r in rollouts]
    b, l_max = len(rollouts), max(lengths)
    input_ids = torch.full((b, l_max), pad_id, dtype=torch.long)  # [B, L]
    attention = torch.zeros((b, l_max), dtype=torch.long)  # [B, L]
    responses = torch.zeros((b, l_max))  # [B, L]
    for i, r in enumerate(rollouts):
        p, t = len(r.prompt_ids), len(r.response_ids)
        input_ids[i, : p + t] = torch.tensor(r.prompt_ids + r.response_ids, dtype=torch.long)
        attention[i, : p + t] = 1
        responses[i, p : p + t] = 1.0
    return input_ids, attention, responses


def reference_rows(rollouts: Sequence[Rollout], pad_id: int) -> TrainBatch:
    """The rows the reference scores before credit is known (so it can run while the critic
    judges): every response token is scored; the learner's mask later picks the trained ones."""
    input_ids, attention, responses = padded_rows(rollouts, pad_id)
    zeros = torch.zeros(input_ids.shape)  # [B, L]
    return TrainBatch(input_ids=input_ids, attention_mask=attention, response_mask=responses,
                      advantages=zeros, old_logprobs=zeros.clone())  # fmt: skip
