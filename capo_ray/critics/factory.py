"""One dispatch point for critic backends (docs/algorithm.md: the GenPRM is swappable).

Every backend offers ``critique(messages, step_texts) -> list[CritiqueResult]`` (one result
per response, K critique texts each, failures as None texts) and ``shutdown()``.
"""

from __future__ import annotations

from typing import Any

from capo_ray.config import Config

CRITIC_BACKENDS = ("llm", "arith")


def make_critic(cfg: Config, groups: Any = None):
    c = cfg.critic
    if c.backend == "arith":
        from capo_ray.critics.arith import ArithCritic

        return ArithCritic(k=c.k, flip_noise=c.flip_noise, seed=c.seed)
    if c.backend == "llm":
        from capo_ray.critics.llm_pool import LLMCriticPool

        return LLMCriticPool.start(cfg, groups)
    raise ValueError(f"unknown critic backend {c.backend!r}; valid backends: {list(CRITIC_BACKENDS)}")
