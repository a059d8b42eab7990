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
import time
import threading
from pathlib import Path
from typing import Any

from capo_ray.config import Config
from capo_ray.config.strict import to_dict
from capo_ray.data.prompts_for_task import prompt_messages
from capo_ray.data.sources import make_source
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.budget import StepBudget
from capo_ray.driver.console import CONSOLE, console
from capo_ray.driver.checkpoint import (
    capture_driver_state, latest_checkpoint, load_driver_state, restore_driver_state, save_trainer_state,
)
from capo_ray.driver.judge_stage import JudgeStage
from capo_ray.driver.overlap import Prepared, RolloutPrefetch, concurrently
from capo_ray.driver.logger import RunLogger, read_metrics, truncate_metrics
from capo_ray.driver.periodic_eval import PeriodicEval
from capo_ray.driver.metrics import credit_metrics, critic_metrics, rollout_metrics
from capo_ray.driver.progress import Progress
from capo_ray.driver.recovery import ActorRecovery
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
        self, cfg: Config, actors: Any, tokenizer: Any, run_dir: Path, verifier: Verifier | None = None,
        started_at: float | None = None, recovery: ActorRecovery | None = None,
    ) -> None:
        """``verifier``: a custom outcome reward (any ``Verifier``) instead of ``data.verifier``;
        ``recovery``: the run's in-place recovery state (capo_ray.train passes one per run)."""
        # trainer.time_budget_s counts from here, or from the run's start (``started_at``,
        # time.monotonic()) so that actor start-up, minutes on a busy CPU, is inside it.
        self.started_at = time.monotonic() if started_at is None else started_at
        self.cfg = cfg
        self.actors = actors
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
        self._start_eval: dict[str, float] = {}  # step 0's eval_start/... (fit, trainer.eval_before_train)
        # Kept across restarts by capo_ray.train: the per-run bound and the restart count.
        self.recovery = recovery or ActorRecovery.from_config(cfg.trainer)

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        start = self._resume()
        total = self.cfg.trainer.steps
        progress = Progress(total, start, enabled=self.cfg.logging.progress_bar, stream=console.terminal)
        budget = StepBudget(self.cfg.trainer.time_budget_s, start=self.started_at)
        try:
            self._start_eval = self._evaluate_start() if start == 0 else {}
            for step in range(start, total):
                if not budget.allows_another():
                    log.warning("trainer.time_budget_s=%.0f: stopping after %d of %d steps (%.0f s a step on "
                                "this machine)", budget.seconds, step, total, budget.expected_step_s())
                    break
                metrics = self.train_step(step)
                budget.record(metrics["time/step"])
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
        write_report(
            self.run_dir, history, f"capo-ray run ({self.cfg.algo.name}, critic={self._critic_name()})",
            plots=self.cfg.logging.plots,
        )
        return history

    def _evaluate_start(self) -> dict[str, float]:
        """The starting weights' held-out scores, as eval_start/... (trainer.eval_before_train)."""
        if self.evaluator is None or not self.cfg.trainer.eval_before_train:
            return {}
        started = time.perf_counter()
        scores = self.evaluator.run(-1, self.actors.generate_samples)
        out = {"eval_start/" + key.removeprefix("eval/"): value for key, value in scores.items()}
        return {**out, "time/eval_start": time.perf_counter() - started}

    def train_step(self, step: int) -> dict[str, Any]:
        cfg, timer = self.cfg, StageTimer()
        self.recovery.begin_step()
        # A dead engine, critic or reference is replaced in place (driver/recovery.py). Until the
        # update nothing durable has changed: the step is redone from its start, with the
        # driver's random state and critique cache as they were (so it draws as the first try
        # did). After the update only the sync or the evaluation is redone, never the update.
        before = capture_driver_state(self.actors.critic, self.judge_stage.cache)
        ahead, prepared, credits, batch, learner_metrics = self._recovering(
            step, "redoing the step", lambda: self._update(step, timer), lambda roles: self._redo(roles, before)
        )
        rollouts, outcomes, steps, judgements = prepared.rollouts, prepared.outcomes, prepared.steps, prepared.judgements
        target = self.version + 1
        with timer("sync"):
            self.version = self._recovering(step, "redoing its weight sync", lambda: self.actors.sync_weights(target))
        metrics: dict[str, Any] = {"weight_version": self.version}
        metrics.update(rollout_metrics(rollouts, outcomes))
        metrics.update(critic_metrics(steps, judgements, metrics["rollout/policy_tokens"]))
        metrics.update(credit_metrics(credits))
        metrics.update(prepared.judge_metrics)
        if ahead is not None:  # work done during the last step, beside it: not part of time/step
            metrics.update({f"time/ahead_{k}": v for k, v in ahead.seconds.items()})
        metrics.update({f"learner/{k}": v for k, v in learner_metrics.items()})
        metrics.update(timer.metrics(tokens=metrics["rollout/policy_tokens"]))
        if self.evaluator is not None and self.evaluator.due(step):
            with timer("eval"):
                evaluate = lambda: self.evaluator.run(step, self.actors.generate_samples)  # noqa: E731
                metrics.update(self._recovering(step, "redoing its evaluation", evaluate, self._resync))
            metrics["time/eval"] = timer.seconds["eval"]
        if step == 0:
            metrics.update(self._start_eval)
        metrics.update(self.recovery.step_metrics())
        metrics["memory/peak_rss_gib"] = max(peak_rss_gib(), self.actors.peak_rss_gib())
        if cfg.logging.log_samples:
            self.logger.log_samples(
                step, pick_samples(
                    rollouts, outcomes, steps, judgements, credits, cfg.logging.log_samples, batch.advantages
                )
            )
        return metrics

    def _update(self, step: int, timer: StageTimer) -> tuple[Prepared | None, Prepared, list, Any, dict[str, float]]:
        """A step up to and including the learner update: (the work prepared ahead if any, the
        step's prepared work, credits, batch, learner metrics)."""
        cfg = self.cfg
        # rollout_ahead = 1: this step's rollouts were generated, verified and judged during the
        # last step (judging needs no weights); else they are made now, judged while the
        # reference scores them.
        with timer("wait_ahead"):
            ahead = self.prefetch.take(step)
        prepared, ref_logprobs = (ahead, None) if ahead is not None else self._prepare(step, timer, with_reference=True)
        rollouts, outcomes, steps, judgements = prepared.rollouts, prepared.outcomes, prepared.steps, prepared.judgements
        self._check_fresh(rollouts)
        if cfg.trainer.rollout_ahead and step + 1 < cfg.trainer.steps:
            self.prefetch.start(step + 1, lambda entered: self._prepare(step + 1, StageTimer(), False, entered)[0])
        if ref_logprobs is None and cfg.algo.kl_coef > 0:
            with timer("reference"):
                ref_logprobs = self.actors.reference_logprobs(cs.reference_rows(rollouts, self.tokenizer.pad_token_id))
        with timer("credit"):
            credits = cs.assign_credit(
                rollouts, outcomes, steps, judgements, cfg.algo.w_whole, cfg.algo.w_process, cfg.critic.all_abstain,
                cfg.algo.flag_wrong_answer,
            )
            batch = cs.build_batch(
                rollouts, credits, cfg.algo.name, cfg.algo.scale_std, cfg.algo.eps, self.tokenizer.pad_token_id
            )
            batch.ref_logprobs = ref_logprobs
        with timer("learner"):
            lagged = any(r.weight_version != self.version for r in rollouts)
            learner_metrics = self.actors.train(batch, off_policy=lagged)
        return ahead, prepared, credits, batch, learner_metrics

    # -- in-place recovery (driver/recovery.py) ----------------------------------------------
    def _recovering(self, step: int, redoing: str, attempt: Any, redo: Any = None) -> Any:
        return self.recovery.run(
            step, redoing, attempt, self.actors, settle=self.prefetch.discard, redo=redo or (lambda roles: None)
        )

    def _redo(self, replaced: set[str], before: dict[str, Any]) -> None:
        restore_driver_state(before, self.actors.critic, self.judge_stage.cache)
        self._resync(replaced)

    def _resync(self, replaced: set[str]) -> None:
        # A new engine holds the initial weights: give it the learner's (still self.version: the
        # step has not updated, or its sync already went through) before it serves.
        if "rollout" in replaced:
            self.actors.sync_weights(self.version)

    # -- stages that need a decision --------------------------------------------------------
    def _prompt_ids(self, problem) -> list[int]:
        messages = prompt_messages(self.cfg.data, problem)
        # Render, then encode without extra specials: the template already holds them.
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _generate(self, step: int, entered: threading.Event | None = None) -> list[Rollout]:
        problems = self.source.batch(step, self.cfg.data.prompts_per_step)
        prompt_ids = [self._prompt_ids(p) for p in problems]
        if entered is not None:
            entered.set()  # RolloutPrefetch.start: the engines are asked now
        return self.actors.generate(prompt_ids, problems, seed=step_seed(self.cfg.seed, "rollout", step))

    def _prepare(
        self, step: int, timer: StageTimer, with_reference: bool, entered: threading.Event | None = None
    ) -> tuple[Prepared, Any]:
        """Everything of a step that needs no weights: rollouts, outcomes, steps, judgements.
        ``with_reference``: the reference log-probs [B, L] too (None without a KL term),
        computed while the critic judges when ``trainer.overlap`` (they are independent)."""
        with timer("rollout"):
            rollouts = self._generate(step, entered)
        with timer("verify"):
            outcomes = self.verifier.verify_batch([r.response_text for r in rollouts], [r.problem.answer for r in rollouts])
        with timer("credit"):
            steps = cs.segment(rollouts)
        timer.inner.update(("critic", "reference"))

        def judge():
            with timer("critic"):
                return self.judge_stage.run(self.actors, rollouts, steps, outcomes)

        def reference():
            if not with_reference or not self.cfg.uses_reference:
                return None
            with timer("reference"):
                return self.actors.reference_logprobs(cs.reference_rows(rollouts, self.tokenizer.pad_token_id))

        with timer("critic_and_reference"):
            both = concurrently(judge, reference) if self.cfg.trainer.overlap else (judge(), reference())
        (judgements, judge_metrics), ref_logprobs = both
        return Prepared(rollouts, outcomes, steps, judgements, judge_metrics, dict(timer.seconds)), ref_logprobs

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
        self.actors.save_checkpoint(ckpt)
        save_trainer_state(
            ckpt, {"step": step, "weight_version": self.version, "next_batch": step + 1},
            capture_driver_state(self.actors.critic, self.judge_stage.cache),
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
        self.actors.load_checkpoint(path)
        # Engines restart with the initial weights: push the checkpoint's weights before
        # generating, so no rollout after a resume is made with stale weights.
        self.version = self.actors.sync_weights(state["weight_version"])
        driver_state = load_driver_state(path)
        if driver_state is not None:
            restore_driver_state(driver_state, self.actors.critic, self.judge_stage.cache)
        return state.get("next_batch", state["step"] + 1)

    def _critic_name(self) -> str:
        return self.cfg.critic.backend if self.use_critic else "none"


def write_config(run_dir: Path, cfg: Config) -> None:
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
