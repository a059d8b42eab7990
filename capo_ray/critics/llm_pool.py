"""The ``llm`` critic backend: the paper's LLM-as-GenPRM, a pool of vLLM critic actors.

A critic engine never receives policy weights (it is frozen) and may be a different model with
its own tokenizer: it only ever sees the critique prompt's text.
"""

from __future__ import annotations

from typing import Any

from capo_ray.config import Config
from capo_ray.models.resolve import resolve_model_path
from capo_ray.records import CritiqueResult


class LLMCriticPool:
    def __init__(self, cfg: Config, handles: list[Any]) -> None:
        from capo_ray.workers.critic_llm import CriticPool

        self.cfg = cfg.critic
        self.handles = handles
        self.pool = CriticPool(handles)

    @classmethod
    def start(cls, cfg: Config, groups: Any) -> "LLMCriticPool":
        import ray

        from capo_ray.workers.critic_llm import CriticWorker
        from capo_ray.workers.vllm_engine import EngineConfig, engine_env

        c = cfg.critic
        remote = ray.remote(CriticWorker)
        handles = []
        for i in range(c.num_engines):
            engine_cfg = EngineConfig(
                model=resolve_model_path(c.model_path), seed=c.seed + i, settings=c.engine,
                device=cfg.cluster.device,
            )
            options: dict[str, Any] = {
                "num_cpus": cfg.cluster.critic_cpus,
                "num_gpus": cfg.cluster.critic_gpus,
                "runtime_env": {"env_vars": engine_env(cfg.cluster.device)},
            }
            if groups is not None:
                options["scheduling_strategy"] = groups.strategy("critic", i)
            handles.append(remote.options(**options).remote(engine_cfg))
        ray.get([h.encode.remote([{"role": "user", "content": "ping"}]) for h in handles])  # start-up errors here
        return cls(cfg, handles)

    def critique(self, messages: list[list[dict[str, str]]], step_texts: list[list[str]]) -> list[CritiqueResult]:
        c = self.cfg
        return self.pool.critique(messages, c.k, c.temperature, c.max_tokens, timeout_s=c.request_timeout_s)

    def shutdown(self) -> None:
        import ray

        for h in self.handles:
            ray.kill(h)
        self.handles = []
