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
        self.engine_dtype = cfg.rollout.engine.dtype  # what "auto" resolved to, once engines start
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
        try:
            with console.stage(f"learner ({cfg.learner.num_workers} rank(s))"):
                w._start_learner(model_path)
            with console.stage(f"rollout engines ({cfg.rollout.num_engines})"):
                w._start_engines(model_path)
            if cfg.uses_reference:
                with console.stage("reference model"):
                    w._start_reference(model_path)
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
        )
        self.learner = LearnerGroup(settings, cfg.learner.num_workers, role_options(cfg, "learner", self.groups))

    def _start_engines(self, model_path: str) -> None:
        from capo_ray.workers.actor_group import start_group, wait_ready
        from capo_ray.workers.rollout import RolloutWorker
        from capo_ray.workers.weight_sync import EXTENSION
        from capo_ray.workers.vllm_engine import EngineConfig

        cfg, r = self.cfg, self.cfg.rollout
        # "auto" resolved once, on the driver, with its log line; the engines get the result.
        self.engine_dtype = choose_dtype(r.engine.dtype, cfg.cluster.device, "rollout engine")
        settings = replace(r.engine, dtype=self.engine_dtype)
        engine_cfgs = [
            EngineConfig(model=model_path, seed=cfg.seed + i, settings=settings, device=cfg.cluster.device,
                         worker_extension_cls=EXTENSION)
            for i in range(r.num_engines)
        ]  # fmt: skip
        # Named, so that fault-injection tests can find them.
        options = role_options(cfg, "rollout", self.groups, name_prefix="rollout-engine")
        self.engines = start_group(RolloutWorker, options, [(c,) for c in engine_cfgs])
        wait_ready(self.engines, "rollout", cfg.cluster.startup_timeout_s)

    def _start_reference(self, model_path: str) -> None:
        from capo_ray.workers.actor_group import start_group, wait_ready
        from capo_ray.workers.reference import ReferenceWorker

        cfg = self.cfg
        # The reference stage runs alone: on CPU it may use every core (capo_ray.hardware).
        threads = stage_threads() if cfg.cluster.device == "cpu" else cfg.learner.torch_threads
        args = (model_path, cfg.model.dtype, threads, cfg.rollout.temperature, cfg.cluster.device)
        (self.reference,) = start_group(ReferenceWorker, role_options(cfg, "reference", self.groups), [args])
        wait_ready([self.reference], "reference", cfg.cluster.startup_timeout_s)

    def _start_critic(self) -> None:
        from capo_ray.critics.factory import make_critic

        self.critic = make_critic(self.cfg, self.groups)

    def _connect_sync(self) -> None:
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
        self.sync.meta = self.learner.for_each_full_weight(PlanWith())

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
        return self.critic.critique(messages, step_texts)

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
