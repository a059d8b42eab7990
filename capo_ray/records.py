"""Typed records passed between the driver's stages and the Ray actors.

Shape legend (shared with ``capo_ray.core``): B responses in a batch, G responses per prompt
group, T tokens, L prompt+response positions, S steps, K critiques per response.

Only plain Python and torch live here so that records can cross Ray process boundaries
cheaply (Ray pickles them) and the pure core can be tested without any actor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Problem:
    """One task instance: the question shown to the policy and its reference answer."""

    uid: str
    question: str
    answer: str
    source: str = ""  # where it came from ("arith:seed=3:17", "gsm8k_train.jsonl:42"), for logs


@dataclass
class Rollout:
    """One sampled response of the policy, as the rollout engine produced it.

    ``token_offsets[i]`` is the character span of ``response_ids[i]`` in ``response_text``,
    computed from the generated ids by incremental detokenization (never by re-tokenizing the
    text: a re-tokenization can disagree with what the policy actually sampled).
    """

    problem: Problem
    group: int  # index of the prompt group within the step (G responses share it)
    prompt_ids: list[int]
    response_ids: list[int]
    response_text: str
    token_offsets: list[tuple[int, int]]
    logprobs: list[float]  # behaviour-policy logprob of each response token
    weight_version: int  # version of the policy weights the engine sampled with
    finish_reason: str  # "stop" | "length"


# Why a critique failed, as counted in the step metrics (``critic/failed/<cause>``).
FAILURE_CAUSES = ("timeout", "rate_limited", "http_error", "connection", "unreadable")


@dataclass
class CritiqueResult:
    """K critiques of one response from the GenPRM critic (one request with n = K).

    ``texts`` holds one entry per critique; an entry is None when that critique failed
    (engine error, timeout): the failure abstains in the vote and is counted, it never
    becomes a reward of 0.
    """

    texts: list[str | None]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # set when the whole request failed
    seconds: float = 0.0
    # Failed critiques by cause (FAILURE_CAUSES), for the step metrics; a backend that does
    # not classify its failures leaves it empty.
    failures: dict[str, int] = field(default_factory=dict)
    retries: int = 0  # requests re-sent after a retryable failure
    cached: bool = False  # served from the critique cache: a repeat that cost no judge tokens


@dataclass
class TrainBatch:
    """What the learner trains on. Every [B, L] tensor is aligned to ``input_ids``: entry t
    refers to token ``input_ids[:, t]`` (predicted from positions < t), so position 0 and every
    prompt or padding position carry ``response_mask == 0``.
    """

    input_ids: torch.Tensor  # [B, L] long, prompt + response, right-padded
    attention_mask: torch.Tensor  # [B, L] long
    response_mask: torch.Tensor  # [B, L] float, 1 on response tokens that are trained
    advantages: torch.Tensor  # [B, L] float
    old_logprobs: torch.Tensor  # [B, L] float, behaviour logprobs (used when ppo_epochs > 1)
    ref_logprobs: torch.Tensor | None = None  # [B, L] float; None when the KL term is off

    def __post_init__(self) -> None:
        shape = self.input_ids.shape
        for name in ("attention_mask", "response_mask", "advantages", "old_logprobs"):
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"TrainBatch.{name} has shape {tuple(got)}, expected {tuple(shape)}")
        if self.ref_logprobs is not None and self.ref_logprobs.shape != shape:
            raise ValueError(
                f"TrainBatch.ref_logprobs has shape {tuple(self.ref_logprobs.shape)}, expected {tuple(shape)}"
            )

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def slice(self, start: int, end: int) -> "TrainBatch":
        """Rows [start, end) — used to cut micro-batches and per-rank shards."""
        ref = None if self.ref_logprobs is None else self.ref_logprobs[start:end]
        return TrainBatch(
            input_ids=self.input_ids[start:end],
            attention_mask=self.attention_mask[start:end],
            response_mask=self.response_mask[start:end],
            advantages=self.advantages[start:end],
            old_logprobs=self.old_logprobs[start:end],
            ref_logprobs=ref,
        )
