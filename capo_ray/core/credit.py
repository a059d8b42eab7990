"""Token-level credit of one response: outcome credit plus step penalties.

CAPO (arXiv 2508.02298, method step 6): R_t = r_v * W_whole - 1[t in a wrong step] * W_process,
with the average vote scaling the penalty by the fraction of critiques that flagged the step.
Defaults W_whole = 2, W_process = 1 are asymmetric on purpose: a flawed step of a correct
answer still earns more (2 - 1 = 1) than any token of a wrong answer (0 or -1); the paper's
ablation ranked 2/1 best.

Legend: T tokens, S steps of one response.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _check_token_spans(token_spans: Sequence[tuple[int, int]], num_tokens: int) -> None:
    previous_end = 0
    for k, (first, end) in enumerate(token_spans):
        if not 0 <= first <= end <= num_tokens:
            raise ValueError(
                f"token span of step {k + 1} = ({first}, {end}) is out of range for {num_tokens} tokens"
            )
        if first < previous_end:
            raise ValueError(
                f"token spans must be in order and not overlap: step {k + 1} starts at token "
                f"{first}, before the previous step ends ({previous_end})"
            )
        previous_end = end


def explain_wrong_answer(correct: bool, step_penalty: Sequence[float] | None) -> list[float] | None:
    """A wrong answer whose critiques flag no step gets its LAST step flagged (penalty 1).

    Why: the verifier knows such a response is wrong somewhere, and its last step states the
    wrong answer. Without this, a policy whose critic checks only arithmetic learns that
    stopping early is safe: "Step 1: 3 + 4 = 7. The answer is 7." for a three-step problem has
    no wrong step, so in an all-wrong group (where the outcome credit is equal for all and
    group normalization leaves only the step penalties) its tokens all score above the mean.
    A critic that sees the reference answer would flag that last step itself. Abstentions
    (None) and answers already explained by a flagged step are returned unchanged.
    """
    if correct or step_penalty is None or not step_penalty or any(step_penalty):
        return None if step_penalty is None else list(step_penalty)
    return [*step_penalty[:-1], 1.0]


def token_rewards(
    correct: bool,
    token_spans: Sequence[tuple[int, int]],
    step_penalty: Sequence[float] | None,
    num_tokens: int,
    w_whole: float = 2.0,
    w_process: float = 1.0,
) -> torch.Tensor:
    """Per-token reward of one response.

    Every token gets ``w_whole`` if the answer is correct, else 0.0; the tokens of step k
    (``token_spans[k]``, half-open, from ``token_step_spans``) additionally get
    ``-w_process * step_penalty[k]``. ``step_penalty`` None (every critique abstained) gives
    the outcome credit alone. Tokens outside every step span (blank lines, EOS) always carry
    just the outcome credit.

    Shapes: token_spans [S] pairs within 0..T, step_penalty [S] -> float32 [T].
    Raises ValueError on spans out of range or overlapping, or a penalty list of another
    length than ``token_spans``.
    """
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or num_tokens < 0:
        raise ValueError(f"num_tokens must be an int >= 0, got {num_tokens!r}")
    _check_token_spans(token_spans, num_tokens)
    rewards = torch.full((num_tokens,), float(w_whole) if correct else 0.0, dtype=torch.float32)
    if step_penalty is None:
        return rewards
    if len(step_penalty) != len(token_spans):
        raise ValueError(
            f"step_penalty has {len(step_penalty)} entries but there are {len(token_spans)} "
            "step spans (need one penalty per step)"
        )
    for (first, end), penalty in zip(token_spans, step_penalty):
        if penalty and end > first:
            # Slice arithmetic, not a per-token loop: one in-place op per flagged step.
            rewards[first:end] -= float(w_process) * float(penalty)
    return rewards
