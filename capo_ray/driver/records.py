"""Records the driver's stages hand to each other (one per rollout, in batch order).

The verifier's record is ``capo_ray.rewards.verdict.Verdict``. Each stage adds one typed record instead of writing string keys into a shared dict, so a
stage cannot read a field that an earlier stage did not produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from capo_ray.records import CritiqueResult


@dataclass(frozen=True)
class Steps:
    """The response split into reasoning steps, in characters and in the policy's tokens."""

    char_spans: list[tuple[int, int]]  # [S] spans in response_text
    token_spans: list[tuple[int, int]]  # [S] half-open ranges of response token indices
    texts: list[str]  # [S] step texts, shown numbered to the critic


@dataclass(frozen=True)
class Judgement:
    """The critic's K critiques of one response and how they voted."""

    critique: CritiqueResult | None  # None when the critic stage did not run (GRPO)
    verdicts: list[frozenset[int] | None]  # [K] parsed wrong-step sets; None = abstained
    step_penalty: list[float] | None  # [S] vote result; None when every critique abstained

    @property
    def abstained(self) -> bool:
        return self.critique is not None and self.step_penalty is None

    @property
    def flagged(self) -> bool:
        return bool(self.step_penalty) and any(p > 0 for p in self.step_penalty)


@dataclass(frozen=True)
class Credit:
    """Token-level rewards of one response: R_t = r_v * W_whole - 1[t in wrong step] * W_process."""

    rewards: torch.Tensor  # [T] float32
    trained: bool  # False when the sample is dropped (all critiques abstained, all_abstain=drop)
