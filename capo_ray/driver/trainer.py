"""The CAPO training loop. One step, top to bottom:

  sample prompts -> rollouts (n per prompt) -> verify outcomes -> split steps and map them to
  token spans -> critique prompts -> k critiques -> parse -> vote -> token credit -> group
  advantages -> reference logprobs -> learner update -> weight sync -> log.

``algo=grpo`` runs the same loop with the critic stage skipped (outcome-only credit).
The actors sit behind ``Workers`` (driver/cluster.py); this file only orders the stages.
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
from capo_ray.critics.cache import CritiqueCache
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.budget import StepBudget
from capo_ray.driver.checkpoint import latest_checkpoint, save_trainer_state
from capo_ray.driver.logger import RunLogger, read_metrics, truncate_metrics
from capo_ray.driver.periodic_eval import PeriodicEval
from capo_ray.driver.metrics import credit_metrics, critic_metrics, rollout_metrics
from capo_ray.driver.progress import Progress
from capo_ray.driver.records import Judgement
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
        self.use_critic = cfg.algo.name == "capo"
        self.critique_cache = CritiqueCache(cfg.critic.cache_size)
        self.evaluator = PeriodicEval(cfg, tokenizer, self.verifier, run_dir) if cfg.trainer.eval_every else None
        self._cache_hits = 0

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        start = self._resume()
        total = self.cfg.trainer.steps
        progress = Progress(total, start, enabled=self.cfg.logging.progress_bar)
        budget = StepBudget(self.cfg.trainer.time_budget_s)
        try:
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
            progress.close()
            self.logger.close()
            self.verifier.close()
        history = read_metrics(self.run_dir)
        write_report(self.run_dir, history, f"capo-ray run ({self.cfg.algo.name}, critic={self._critic_name()})")
        return history

    def train_step(self, step: int) -> dict[str, Any]:
        cfg, timer = self.cfg, StageTimer()
        with timer("rollout"):
            problems = self.source.batch(step, cfg.data.prompts_per_step)
            rollouts = self.workers.generate([self._prompt_ids(p) for p in problems], problems)
        self._check_fresh(rollouts)
        with timer("verify"):
            outcomes = self.verifier.verify_batch(
                [r.response_text for r in rollouts], [r.problem.answer for r in rollouts]
            )
        with timer("credit"):
            steps = cs.segment(rollouts)
        with timer("critic"):
            judgements = self._judge(rollouts, steps)
        with timer("credit"):
            credits = cs.assign_credit(
                rollouts, outcomes, steps, judgements, cfg.algo.w_whole, cfg.algo.w_process, cfg.critic.all_abstain
            )
            batch = cs.build_batch(
                rollouts, credits, cfg.algo.name, cfg.algo.scale_std, cfg.algo.eps, self.tokenizer.pad_token_id
            )
        with timer("reference"):
            if cfg.algo.kl_coef > 0:
                batch.ref_logprobs = self.workers.reference_logprobs(batch)
        with timer("learner"):
            learner_metrics = self.workers.train(batch)
        with timer("sync"):
            self.version = self.workers.sync_weights(self.version + 1)
        metrics: dict[str, Any] = {"weight_version": self.version}
        metrics.update(rollout_metrics(rollouts, outcomes))
        metrics.update(critic_metrics(steps, judgements, metrics["rollout/policy_tokens"]))
        metrics.update(credit_metrics(credits))
        metrics["critic/cache_hits"] = float(self._cache_hits)
        metrics.update({f"learner/{k}": v for k, v in learner_metrics.items()})
        metrics.update(timer.metrics(tokens=metrics["rollout/policy_tokens"]))
        if self.evaluator is not None and self.evaluator.due(step):
            with timer("eval"):
                metrics.update(self.evaluator.run(step, self.workers.generate_samples))
            metrics["time/eval"] = timer.seconds["eval"]
        metrics["memory/peak_rss_gib"] = max(peak_rss_gib(), self.workers.peak_rss_gib())
        if cfg.logging.log_samples:
            self.logger.log_samples(
                step, pick_samples(rollouts, outcomes, steps, judgements, credits, cfg.logging.log_samples)
            )
        return metrics

    # -- stages that need a decision --------------------------------------------------------
    def _prompt_ids(self, problem) -> list[int]:
        messages = prompt_messages(self.cfg.data, problem)
        # Render, then encode without extra specials: the template already holds them.
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _judge(self, rollouts: list[Rollout], steps) -> list[Judgement]:
        if not self.use_critic:
            return cs.judge([None] * len(rollouts), steps, self.cfg.critic.vote)
        # A response with no step has nothing to critique: it keeps its outcome credit.
        todo = [i for i, s in enumerate(steps) if s.texts]
        messages = cs.critique_messages(
            [rollouts[i] for i in todo], [steps[i] for i in todo], self.cfg.critic.use_reference_answer
        )
        results, hits = self.critique_cache.critique(self.workers, messages, [steps[i].texts for i in todo])
        self._cache_hits = hits
        per_response = [None] * len(rollouts)
        for i, result in zip(todo, results):
            per_response[i] = result
        return cs.judge(per_response, steps, self.cfg.critic.vote)

    def _check_fresh(self, rollouts: list[Rollout]) -> None:
        stale = [r.weight_version for r in rollouts if r.weight_version != self.version]
        if stale:
            raise StaleRolloutError(
                f"{len(stale)} rollouts were sampled with weight version {sorted(set(stale))}, "
                f"but the learner is at version {self.version}: a weight sync did not reach every engine"
            )

    # -- checkpoints ------------------------------------------------------------------------
    def _should_save(self, step: int) -> bool:
        every = self.cfg.trainer.save_every
        return step == self.cfg.trainer.steps - 1 or (every > 0 and (step + 1) % every == 0)

    def _save(self, step: int) -> None:
        ckpt = self.run_dir / "checkpoints" / f"step_{step:06d}"
        self.workers.save_checkpoint(ckpt)
        save_trainer_state(ckpt, {"step": step, "weight_version": self.version})

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
        log.info("resuming from %s (step %d)", path, state["step"])
        self.workers.load_checkpoint(path)
        # Engines restart with the initial weights: push the checkpoint's weights before
        # generating, so no rollout after a resume is made with stale weights.
        self.version = self.workers.sync_weights(state["weight_version"])
        return state["step"] + 1

    def _critic_name(self) -> str:
        return self.cfg.critic.backend if self.use_critic else "none"


def write_config(run_dir: Path, cfg: Config) -> None:
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
