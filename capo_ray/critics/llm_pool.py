"""The ``llm`` critic backend: the paper's LLM-as-GenPRM, a pool of vLLM critic actors.

A critic engine never receives policy weights (it is frozen) and may be a different model with
its own tokenizer: it only ever sees the critique prompt's text.
"""

from __future__ import annotations

from typing import Any

from capo_ray.config import Config
from capo_ray.models.resolve import resolve_model_path
from capo_ray.records import CritiqueResult
from capo_ray.workers.actor_group import kill_actors


class LLMCriticPool:
    def __init__(self, cfg: Config, handles: list[Any], groups: Any = None) -> None:
        from capo_ray.workers.critic_llm import CriticPool

        self.cfg = cfg.critic
        self.root, self.groups = cfg, groups  # to start a replacement where the dead actor ran
        self.handles = handles
        self.pool = CriticPool(handles)

    @classmethod
    def start(cls, cfg: Config, groups: Any) -> "LLMCriticPool":
        from capo_ray.driver.actors import role_options
        from capo_ray.workers.actor_group import start_group, wait_ready
        from capo_ray.workers.critic_llm import CriticWorker

        args = [(_engine_config(cfg, i),) for i in range(cfg.critic.num_engines)]
        handles = start_group(CriticWorker, role_options(cfg, "critic", groups), args)
        try:
            wait_ready(handles, "critic", cfg.cluster.startup_timeout_s)
        except BaseException:
            kill_actors(handles)
            raise
        return cls(cfg, handles, groups)

    def replace(self, index: int) -> None:
        """Start critic actor ``index`` again where it ran (same bundle and options), e.g. after it died."""
        from capo_ray.driver.actors import role_options
        from capo_ray.workers.actor_group import start_one, wait_ready
        from capo_ray.workers.critic_llm import CriticWorker

        options = role_options(self.root, "critic", self.groups)
        handle = start_one(CriticWorker, options, index, (_engine_config(self.root, index),))
        wait_ready([handle], "critic", self.root.cluster.startup_timeout_s)
        self.handles[index] = self.pool.handles[index] = handle

    def critique(self, messages: list[list[dict[str, str]]], step_texts: list[list[str]]) -> list[CritiqueResult]:
        c = self.cfg
        return self.pool.critique(messages, c.k, c.temperature, c.max_tokens, timeout_s=c.request_timeout_s)

    def shutdown(self) -> None:
        kill_actors(self.handles)
        self.handles = []


def _engine_config(cfg: Config, index: int):
    from capo_ray.workers.vllm_engine import EngineConfig

    c = cfg.critic
    return EngineConfig(model=resolve_model_path(c.model_path), seed=c.seed + index, settings=c.engine,
                        device=cfg.cluster.device)  # fmt: skip
