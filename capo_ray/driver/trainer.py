"""The CAPO training loop. One step, top to bottom:

  sample prompts -> rollouts (n per prompt) -> verify outcomes -> split steps and map them to
  token spans -> critique prompts -> k critiques -> parse -> vote -> token credit -> group
  advantages -> reference logprobs -> learner update -> weight sync -> log.

``algo=grpo`` runs the same loop with the critic stage skipped (outcome-only credit).
The actors sit behind ``Actors`` (driver/actors.py); this file only orders the stages.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from capo_ray.config import Config
from capo_ray.config.strict import to_dict
from capo_ray.data.prompts_for_task import prompt_messages
from capo_ray.data.sources import make_source
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.console import CONSOLE, console
from capo_ray.driver.checkpoint import (
    capture_driver_state, latest_checkpoint, load_driver_state, restore_driver_state, save_trainer_state,
)
from capo_ray.driver.judge_stage import JudgeStage
from capo_ray.driver.overlap import RolloutPrefetch, concurrently
from capo_ray.driver.logger import RunLogger, read_metrics, truncate_metrics
from capo_ray.driver.periodic_eval import PeriodicEval
from capo_ray.driver.metrics import credit_metrics, critic_metrics, rollout_metrics
from capo_ray.driver.progress import Progress
from capo_ray.driver.rng import step_seed
from capo_ray.driver.report import write_report
from capo_ray.driver.samples import pick_samples
from capo_ray.driver.timer import StageTimer, peak_rss_gib
from capo_ray.records import Rollout
from capo_ray.rewards import make_verifier
from capo_ray.rewards.verdict import Verifier

log = logging.getLogger("capo_ray")


class StaleRolloutError(RuntimeError):
    """A rollout was sampled with weights other than the learner's current ones."""


class Trainer:
    def __init__(
        self, cfg: Config, workers: Any, tokenizer: Any, run_dir: Path, verifier: Verifier | None = None
    ) -> None:
        """``verifier``: a custom outcome reward (any ``Verifier``) instead of ``data.verifier``."""
        self.cfg = cfg
        self.workers = workers
        self.tokenizer = tokenizer
        self.run_dir = run_dir
        self.source = make_source(cfg.data)
        self.verifier = verifier or make_verifier(
            cfg.data.verifier, timeout_s=cfg.data.verify_timeout_s, num_workers=1
        )
        self.logger = RunLogger(run_dir, cfg.logging.wandb, cfg.logging.project, to_dict(cfg))
        self.version = 0  # weight version the engines hold; bumped by every sync
        self.use_critic = cfg.uses_critic
        self.judge_stage = JudgeStage(cfg.critic, enabled=self.use_critic)
        self.prefetch = RolloutPrefetch()  # trainer.rollout_ahead
        self.evaluator = PeriodicEval(cfg, tokenizer, self.verifier, run_dir) if cfg.trainer.eval_every else None

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        start = self._resume()
        total = self.cfg.trainer.steps
        progress = Progress(total, start, enabled=self.cfg.logging.progress_bar, stream=console.terminal)
        try:
            for step in range(start, total):
                metrics = self.train_step(step)
                self.logger.log_step(step, metrics)
                progress.update(step, metrics)
                if self._should_save(step):
                    self._save(step)
        finally:
            self.prefetch.close()
            progress.close()
            self.logger.close()
            self.verifier.close()
        history = read_metrics(self.run_dir)
        write_report(self.run_dir, history, f"capo-ray run ({self.cfg.algo.name}, critic={self._critic_name()})")
        return history

    def train_step(self, step: int) -> dict[str, Any]:
        cfg, timer = self.cfg, StageTimer()
        with timer("rollout"):  # with rollout_ahead: waiting for the ones started a step earlier
            rollouts = self.prefetch.take(step) or self._generate(step)
        self._check_fresh(rollouts)
        if cfg.trainer.rollout_ahead and step + 1 < cfg.trainer.steps:
            self.prefetch.start(step + 1, lambda: self._generate(step + 1))
        with timer("verify"):
            outcomes = self.verifier.verify_batch(
                [r.response_text for r in rollouts], [r.problem.answer for r in rollouts]
            )
        with timer("credit"):
            steps = cs.segment(rollouts)
        with timer("critic_and_reference"):
            (judgements, judge_metrics), ref_logprobs = self._judge_and_reference(rollouts, steps, outcomes, timer)
        with timer("credit"):
            credits = cs.assign_credit(
                rollouts, outcomes, steps, judgements, cfg.algo.w_whole, cfg.algo.w_process, cfg.critic.all_abstain
            )
            batch = cs.build_batch(
                rollouts, credits, cfg.algo.name, cfg.algo.scale_std, cfg.algo.eps, self.tokenizer.pad_token_id
            )
            batch.ref_logprobs = ref_logprobs
        with timer("learner"):
            lagged = any(r.weight_version != self.version for r in rollouts)
            learner_metrics = self.workers.train(batch, off_policy=lagged)
        with timer("sync"):
            self.version = self.workers.sync_weights(self.version + 1)
        metrics: dict[str, Any] = {"weight_version": self.version}
        metrics.update(rollout_metrics(rollouts, outcomes))
        metrics.update(critic_metrics(steps, judgements, metrics["rollout/policy_tokens"]))
        metrics.update(credit_metrics(credits))
        metrics.update(judge_metrics)
        metrics.update({f"learner/{k}": v for k, v in learner_metrics.items()})
        metrics.update(timer.metrics(tokens=metrics["rollout/policy_tokens"]))
        if self.evaluator is not None and self.evaluator.due(step):
            with timer("eval"):
                metrics.update(self.evaluator.run(step, self.workers.generate_samples))
            metrics["time/eval"] = timer.seconds["eval"]
        metrics["memory/peak_rss_gib"] = max(peak_rss_gib(), self.workers.peak_rss_gib())
        if cfg.logging.log_samples:
            self.logger.log_samples(
                step, pick_samples(
                    rollouts, outcomes, steps, judgements, credits, cfg.logging.log_samples, batch.advantages
                )
            )
        return metrics

    # -- stages that need a decision --------------------------------------------------------
    def _prompt_ids(self, problem) -> list[int]:
        messages = prompt_messages(self.cfg.data, problem)
        # Render, then encode without extra specials: the template already holds them.
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _generate(self, step: int) -> list[Rollout]:
        problems = self.source.batch(step, self.cfg.data.prompts_per_step)
        return self.workers.generate(
            [self._prompt_ids(p) for p in problems], problems, seed=step_seed(self.cfg.seed, "rollout", step)
        )

    def _judge_and_reference(self, rollouts, steps, outcomes, timer: StageTimer):
        """The critic's judgements and the reference log-probs [B, L] (None without a KL term),
        concurrently when ``trainer.overlap``: they are independent."""
        timer.inner.update(("critic", "reference"))

        def judge():
            with timer("critic"):
                return self.judge_stage.run(self.workers, rollouts, steps, outcomes)

        def reference():
            if not self.cfg.uses_reference:
                return None
            with timer("reference"):
                return self.workers.reference_logprobs(cs.reference_rows(rollouts, self.tokenizer.pad_token_id))

        if self.cfg.trainer.overlap:
            return concurrently(judge, reference)
        return judge(), reference()

    def _check_fresh(self, rollouts: list[Rollout]) -> None:
        # rollout_ahead = 1: sampled one version behind the learner; never more, never ahead.
        lag = self.cfg.trainer.rollout_ahead
        stale = [r.weight_version for r in rollouts if not 0 <= self.version - r.weight_version <= lag]
        if stale:
            raise StaleRolloutError(
                f"{len(stale)} rollouts were sampled with weight version {sorted(set(stale))}, "
                f"but the learner is at version {self.version} (trainer.rollout_ahead = {lag} allows "
                f"{self.version - lag}..{self.version}): a weight sync did not reach every engine"
            )

    # -- checkpoints ------------------------------------------------------------------------
    def _should_save(self, step: int) -> bool:
        every = self.cfg.trainer.save_every
        return step == self.cfg.trainer.steps - 1 or (every > 0 and (step + 1) % every == 0)

    def _save(self, step: int) -> None:
        ckpt = self.run_dir / "checkpoints" / f"step_{step:06d}"
        self.workers.save_checkpoint(ckpt)
        save_trainer_state(
            ckpt, {"step": step, "weight_version": self.version, "next_batch": step + 1},
            capture_driver_state(self.workers.critic, self.judge_stage.cache),
        )

    def _resume(self) -> int:
        found = latest_checkpoint(self.run_dir) if self.cfg.trainer.resume else None
        if found is None:
            self.version = 0  # engines load the same initial weights as the learner
            truncate_metrics(self.run_dir, last_step=-1)
            return 0
        path, state = found
        # Steps logged after the checkpoint are redone: drop their rows so the log shows the
        # trajectory the weights actually took.
        truncate_metrics(self.run_dir, last_step=state["step"])
        log.info("resuming from %s (step %d)", path, state["step"], extra=CONSOLE)
        self.workers.load_checkpoint(path)
        # Engines restart with the initial weights: push the checkpoint's weights before
        # generating, so no rollout after a resume is made with stale weights.
        self.version = self.workers.sync_weights(state["weight_version"])
        driver_state = load_driver_state(path)
        if driver_state is not None:
            restore_driver_state(driver_state, self.workers.critic, self.judge_stage.cache)
        return state.get("next_batch", state["step"] + 1)

    def _critic_name(self) -> str:
        return self.cfg.critic.backend if self.use_critic else "none"


def write_config(run_dir: Path, cfg: Config) -> None:
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
