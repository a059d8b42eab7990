"""One dispatch point for critic backends (docs/algorithm.md: the GenPRM is swappable).

Every backend offers ``critique(messages, step_texts) -> list[CritiqueResult]`` (one result
per response, K critique texts each, failures as None texts) and ``shutdown()``.
"""

from __future__ import annotations

from typing import Any

from capo_ray.config import Config

CRITIC_BACKENDS = ("llm", "arith", "openai", "hybrid")


def make_critic(cfg: Config, groups: Any = None, backend: str | None = None):
    """The backend ``critic.backend`` names (or ``backend``: hybrid builds its LLM part here)."""
    c = cfg.critic
    backend = backend or c.backend
    if backend == "arith":
        from capo_ray.critics.arith import ArithCritic

        return ArithCritic(k=c.k, flip_noise=c.flip_noise, seed=c.seed, check_question=c.check_question)
    if backend == "llm":
        from capo_ray.critics.llm_pool import LLMCriticPool

        return LLMCriticPool.start(cfg, groups)
    if backend == "openai":
        from capo_ray.critics.openai_critic import make_openai_critic

        return make_openai_critic(c)
    if backend == "hybrid":
        from capo_ray.critics.hybrid import HybridCritic

        return HybridCritic(make_critic(cfg, groups, backend=c.hybrid.llm), c)
    raise ValueError(f"unknown critic backend {backend!r}; valid backends: {list(CRITIC_BACKENDS)}")
