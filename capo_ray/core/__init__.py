"""The pure CAPO algorithm: plain Python + torch, no ray / vllm / deepspeed / transformers.

Pipeline of one response (arXiv 2508.02298, method steps 3-8):
``split_steps`` -> critic prompt (``build_critique_prompt``) -> ``parse_critique`` x K ->
``vote`` -> ``token_step_spans`` + ``token_rewards`` -> batch: ``compute_advantages`` ->
``policy_loss``. Distributed workers are thin shells that call these functions.

Shape legend: B responses, G group size, T tokens, V vocabulary, S steps, K critiques.
"""

from capo_ray.core.advantages import (
    ADVANTAGE_ESTIMATORS,
    compute_advantages,
    group_advantages,
    grpo_advantages,
)
from capo_ray.core.credit import token_rewards
from capo_ray.core.critique import (
    build_critique_messages,
    build_critique_prompt,
    format_verdict,
    parse_critique,
)
from capo_ray.core.logprobs import entropy_from_logits, token_logprobs
from capo_ray.core.losses import LOSS_AGGREGATIONS, aggregate, kl_k3, policy_loss, ppo_clip_loss
from capo_ray.core.segment import split_steps, token_step_spans
from capo_ray.core.voting import VOTING_RULES, vote

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "LOSS_AGGREGATIONS",
    "VOTING_RULES",
    "aggregate",
    "build_critique_messages",
    "build_critique_prompt",
    "compute_advantages",
    "entropy_from_logits",
    "format_verdict",
    "group_advantages",
    "grpo_advantages",
    "kl_k3",
    "parse_critique",
    "policy_loss",
    "ppo_clip_loss",
    "split_steps",
    "token_logprobs",
    "token_rewards",
    "token_step_spans",
    "vote",
]
