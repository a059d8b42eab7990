"""``Actors``: the trainer's one handle on every actor of a run (learner group, rollout
engines, reference, critic). Each method is one stage's remote call; the math stays in the
core. Every role starts through ``workers.actor_group`` with the options ``role_options``
derives from ``cluster.*``."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from capo_ray.config import Config
from capo_ray.driver.memory import peak_rss_of_pids
from capo_ray.hardware import choose_dtype, learner_threads, stage_threads
from capo_ray.records import CritiqueResult, Problem, Rollout, TrainBatch

log = logging.getLogger("capo_ray")

_SEND_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def role_env(role: str, device: str) -> dict[str, str]:
    """What a role's processes need in their environment before they import anything heavy."""
    from capo_ray.workers.distributed import accelerator_env
    from capo_ray.workers.vllm_engine import engine_env

    return engine_env(device) if role in ("rollout", "critic") else accelerator_env(device)


def role_options(cfg: Config, role: str, groups: Any, name_prefix: str | None = None):
    """``ActorOptions`` of ``role`` from config: ``cluster.<role>_cpus/_gpus``, the role's
    environment plus ``cluster.env_vars``, and the role's placement group when there is one."""
    from capo_ray.workers.actor_group import ActorOptions

    c = cfg.cluster
    return ActorOptions(
        role=role,
        num_cpus=getattr(c, f"{role}_cpus"),
        num_gpus=getattr(c, f"{role}_gpus"),
        env_vars={**role_env(role, c.device), **c.env_vars},
        placement_group=None if groups is None else groups.by_role.get(role),
        name_prefix=name_prefix,
    )


class Actors:
    def __init__(self, cfg: Config, groups: Any, owns_ray: bool) -> None:
        from capo_ray.workers.update_settings import UpdateSettings

        self.cfg = cfg
        self.groups = groups
        self.owns_ray = owns_ray
        self.learner: Any = None
        self.engines: list[Any] = []
        self.reference: Any = None
        self.critic: Any = None
        self.engine_dtype = cfg.rollout.engine.dtype  # what "auto" resolved to, once engines start
        self.sync: Any = None  # workers.weight_sync.WeightSyncSession, with the planned meta
        self.model_path = ""  # the policy's initial weights, for actors started later (replacements)
        a = cfg.algo
        self.update = UpdateSettings(
            clip_low=a.clip_low, clip_high=a.clip_high, kl_coef=a.kl_coef, agg=a.loss_agg,
            ppo_epochs=a.ppo_epochs, mini_batch_size=self.mini_batch_size,
            micro_batch_size=cfg.learner.micro_batch_size,
        )  # fmt: skip

    # -- start-up ---------------------------------------------------------------------------
    @classmethod
    def start(cls, cfg: Config, model_path: str, groups: Any, owns_ray: bool) -> "Actors":
        from capo_ray.driver.console import console

        w = cls(cfg, groups, owns_ray)
        w.model_path = model_path
        try:
            with console.stage(f"learner ({cfg.learner.num_workers} rank(s))"):
                w._start_learner(model_path)
            with console.stage(f"rollout engines ({cfg.rollout.num_engines})"):
                w._start_engines()
            if cfg.uses_reference:
                with console.stage("reference model"):
                    w._start_reference()
            if cfg.uses_critic:
                with console.stage(f"critic ({cfg.critic.backend})"):
                    w._start_critic()
            with console.stage("weight-sync group"):
                w._connect_sync()
        except BaseException:
            w.shutdown()
            raise
        return w

    def _start_learner(self, model_path: str) -> None:
        from capo_ray.workers.learner import LearnerSettings
        from capo_ray.workers.learner_group import LearnerGroup

        cfg = self.cfg
        settings = LearnerSettings(
            model_path=model_path,
            zero_stage=cfg.learner.zero_stage,
            precision="bf16" if cfg.model.dtype == "bfloat16" else "fp32",
            lr=cfg.learner.lr,
            grad_clip=cfg.learner.grad_clip,
            micro_batch_size=cfg.learner.micro_batch_size,
            mini_batch_size=self.mini_batch_size,
            torch_threads=learner_threads(cfg.learner.torch_threads, cfg.learner.num_workers),
            device=cfg.cluster.device,
            weight_decay=cfg.learner.weight_decay,
            gradient_checkpointing=cfg.model.gradient_checkpointing,
            temperature=cfg.rollout.temperature,
            seed=cfg.learner.seed,
            logprob_chunk_tokens=cfg.learner.logprob_chunk_tokens,
            warmup_steps=cfg.learner.warmup_steps,
        )
        self.learner = LearnerGroup(settings, cfg.learner.num_workers, role_options(cfg, "learner", self.groups))

    def _start_engines(self) -> None:
        from capo_ray.workers.actor_group import start_group, wait_ready
        from capo_ray.workers.rollout import RolloutWorker

        cfg = self.cfg
        # "auto" resolved once, on the driver, with its log line; the engines get the result.
        self.engine_dtype = choose_dtype(cfg.rollout.engine.dtype, cfg.cluster.device, "rollout engine")
        args = [(self._engine_config(i),) for i in range(cfg.rollout.num_engines)]
        self.engines = start_group(RolloutWorker, self._engine_options(), args)
        wait_ready(self.engines, "rollout", cfg.cluster.startup_timeout_s)

    def _engine_config(self, index: int):
        from capo_ray.workers.vllm_engine import EngineConfig
        from capo_ray.workers.weight_sync import EXTENSION

        cfg = self.cfg
        settings = replace(cfg.rollout.engine, dtype=self.engine_dtype)
        return EngineConfig(model=self.model_path, seed=cfg.seed + index, settings=settings, device=cfg.cluster.device,
                            worker_extension_cls=EXTENSION)  # fmt: skip

    def _engine_options(self):
        # Named, so that fault-injection tests can find them.
        return role_options(self.cfg, "rollout", self.groups, name_prefix="rollout-engine")

    def _start_reference(self) -> None:
        from capo_ray.workers.actor_group import start_group, wait_ready
        from capo_ray.workers.reference import ReferenceWorker

        cfg = self.cfg
        # The reference stage runs alone: on CPU it may use every core (capo_ray.hardware).
        threads = stage_threads() if cfg.cluster.device == "cpu" else cfg.learner.torch_threads
        args = (self.model_path, cfg.model.dtype, threads, cfg.rollout.temperature, cfg.cluster.device)
        (self.reference,) = start_group(ReferenceWorker, role_options(cfg, "reference", self.groups), [args])
        wait_ready([self.reference], "reference", cfg.cluster.startup_timeout_s)

    def _start_critic(self) -> None:
        from capo_ray.critics.factory import make_critic

        self.critic = make_critic(self.cfg, self.groups)

    def _connect_sync(self, meta: Any = None) -> None:
        """Form the weight-sync group over the learner's rank 0 and every engine; ``meta``: the
        bucket layout planned before (a re-formed group sends the same weights)."""
        from capo_ray.workers.distributed import comm_backend, node_ip
        from capo_ray.workers.weight_sync import PlanWith, WeightSender, connect_weight_sync

        device = self.cfg.cluster.device
        send_dtype = _SEND_DTYPES.get(self.engine_dtype)
        bucket = self.cfg.rollout.sync_bucket_mb
        self.sync = connect_weight_sync(
            lambda spec: self.learner.attach_async("weight_sender", WeightSender, spec, bucket, send_dtype),
            self.engines,
            host=node_ip(),
            backend=comm_backend(device),
        )
        self.sync.meta = meta if meta is not None else self.learner.for_each_full_weight(PlanWith())

    # -- stages -----------------------------------------------------------------------------
    @property
    def mini_batch_size(self) -> int:
        return self.cfg.responses_per_step // self.cfg.algo.mini_batches

    def generate_samples(
        self, prompt_ids: list[list[int]], n: int, temperature: float, top_p: float, max_new_tokens: int,
        seed: int | None = None,
    ) -> list[list[Any]]:
        """``RolloutWorker.generate`` over the pool: prompts split into contiguous chunks over
        the engines, results back in prompt order (P lists of n RolloutSample). ``seed``:
        engine i samples with ``seed + i`` (the trainer derives one per step)."""
        import ray

        chunks = [c for c in _split(list(range(len(prompt_ids))), len(self.engines)) if c]
        refs = [
            e.generate.remote(
                [prompt_ids[i] for i in idx], n, temperature, top_p, max_new_tokens,
                seed=None if seed is None else (seed + k) % 2**63,
            )
            for k, (e, idx) in enumerate(zip(self.engines, chunks))
        ]
        return [samples for per_chunk in ray.get(refs) for samples in per_chunk]

    def generate(self, prompt_ids: list[list[int]], problems: list[Problem], seed: int | None = None) -> list[Rollout]:
        """The step's rollouts: n samples per prompt, grouped by prompt index."""
        r = self.cfg.rollout
        per_prompt = self.generate_samples(prompt_ids, r.n_samples, r.temperature, r.top_p, r.max_new_tokens, seed)
        return [
            Rollout(problems[i], i, prompt_ids[i], s.response_ids, s.response_text,
                    s.token_offsets, s.logprobs, s.weight_version, s.finish_reason)
            for i, samples in enumerate(per_prompt)
            for s in samples
        ]

    def critique(self, messages: list[list[dict[str, str]]], step_texts: list[list[str]]) -> list[CritiqueResult]:
        results = self.critic.critique(messages, step_texts)
        pool = self._critic_pool()
        # The pool abstains for a dead critic engine; in training that would bend this step's
        # credit, so the step is redone with a replacement instead (driver/recovery.py).
        if pool is not None and any(r.error is not None for r in results):
            from capo_ray.driver.recovery import ActorLostError, find_dead

            dead = find_dead({"critic": pool.handles})
            if dead:
                raise ActorLostError(f"critic engine(s) {[i for _, i in dead]} died during the critique requests")
        return results

    def reference_logprobs(self, batch: TrainBatch) -> torch.Tensor:
        import ray

        return ray.get(
            self.reference.compute_logprobs.remote(
                batch.input_ids, batch.attention_mask, self.cfg.learner.micro_batch_size, batch.response_mask
            )
        )

    def train(self, batch: TrainBatch, off_policy: bool = False) -> dict[str, float]:
        """``off_policy``: the rollouts are older than the weights (trainer.rollout_ahead), so
        the PPO ratio uses their behaviour log-probs."""
        return self.learner.train(batch, replace(self.update, off_policy=off_policy))

    def sync_weights(self, version: int) -> int:
        """Push the learner's weights to every engine as ``version``; raises on any failure."""
        from capo_ray.workers.weight_sync import SendWith

        meta = self.sync.meta
        self.sync.sync(lambda: self.learner.for_each_full_weight_async(SendWith(meta, version)), version)
        return version

    # -- in-place replacement (driver/recovery.py) -------------------------------------------
    def dead_actors(self) -> list[tuple[str, int]]:
        """(role, index) of every actor of the run that Ray reports dead."""
        from capo_ray.driver.recovery import find_dead

        pool = self._critic_pool()
        return find_dead({
            "learner": list(self.learner.actors) if self.learner is not None else [],
            "rollout": list(self.engines),
            "reference": [self.reference] if self.reference is not None else [],
            "critic": list(pool.handles) if pool is not None else [],
        })  # fmt: skip

    def replace(self, role: str, index: int) -> None:
        """Start actor ``index`` of ``role`` again where it ran (same bundle, options, name).
        A new engine joins a re-formed weight-sync group holding the initial weights: the caller
        syncs the learner's before it generates (the trainer does)."""
        from capo_ray.workers.actor_group import start_one, wait_ready
        from capo_ray.workers.rollout import RolloutWorker

        if role == "rollout":
            meta = self.sync.meta
            self.sync.close()  # the survivors leave the old group; the dead engine needs no closing
            self.sync = None
            self.engines[index] = start_one(RolloutWorker, self._engine_options(), index, (self._engine_config(index),))
            wait_ready([self.engines[index]], "rollout", self.cfg.cluster.startup_timeout_s)
            self._connect_sync(meta)
        elif role == "reference":
            self._start_reference()
        elif role == "critic" and self._critic_pool() is not None:
            self._critic_pool().replace(index)
        else:
            raise ValueError(f"a {role} actor cannot be replaced in place")

    def _critic_pool(self) -> Any:
        """The critic's pool of engine actors (``critic=llm``, or the LLM part of ``hybrid``);
        None for critics that are not actors."""
        from capo_ray.critics.llm_pool import LLMCriticPool

        critic = getattr(self.critic, "llm", self.critic)
        return critic if isinstance(critic, LLMCriticPool) else None

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, path: Path) -> None:
        self.learner.save_checkpoint(str(path / "learner"), tag="state", client_state={})
        self.learner.save_hf(str(path / "hf"))  # for capo-ray-eval and for sharing

    def load_checkpoint(self, path: Path) -> None:
        self.learner.load_checkpoint(str(path / "learner"), tag="state")

    # -- bookkeeping ------------------------------------------------------------------------
    def peak_rss_gib(self) -> float:
        return peak_rss_of_pids()

    def shutdown(self) -> None:
        """Stop everything this run started. Each part is stopped even when an earlier one
        fails (a dead actor, a broken sync group), and Ray last: a half-stopped run must never
        leave a connected Ray whose placement groups hold the cores the next run needs."""
        import ray

        from capo_ray.workers.actor_group import kill_actors

        steps = [
            ("weight-sync session", lambda: self.sync is not None and self.sync.close()),
            ("learner", lambda: self.learner is not None and self.learner.shutdown()),
            ("engines and reference", lambda: kill_actors(self.engines + [self.reference])),
            ("critic", lambda: self.critic is not None and self.critic.shutdown()),
            ("placement groups", lambda: self.groups is not None and self.groups.remove()),
        ]
        try:
            for what, stop in steps:
                try:
                    stop()
                except Exception as err:  # noqa: BLE001 - keep stopping the rest
                    log.warning("shutdown: stopping the %s failed: %s: %s", what, type(err).__name__, err)
        finally:
            self.sync = None
            if self.owns_ray:
                ray.shutdown()


def _split(items: list[int], parts: int) -> list[list[int]]:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (1 if p < extra else 0)
        out.append(items[start:end])
        start = end
    return out
