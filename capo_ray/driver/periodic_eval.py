"""Held-out evaluation during training, through the rollout engines right after a weight
sync (so it scores exactly the weights just trained), with capo-ray-eval's scoring."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from capo_ray.config import Config

log = logging.getLogger("capo_ray")


class PeriodicEval:
    def __init__(self, cfg: Config, tokenizer: Any, verifier: Any, run_dir: Path) -> None:
        from capo_ray.evaluation.benchmarks import load_benchmarks
        from capo_ray.evaluation.prompting import chat_encoder
        from capo_ray.evaluation.results import EvalSettings

        t = cfg.trainer
        self.every = t.eval_every
        self.run_dir = run_dir
        self.verifier = verifier
        # Loaded (and validated) at start-up: a wrong benchmark name fails before step 0.
        self.problems = load_benchmarks(t.eval_benchmarks, limit=t.eval_limit, data_dir=cfg.data.data_dir)
        self.encode = chat_encoder(tokenizer, cfg.data.few_shot)
        self.settings = EvalSettings(
            greedy=True, k=t.eval_k, temperature=cfg.rollout.temperature, max_new_tokens=t.eval_max_new_tokens
        )

    def due(self, step: int) -> bool:
        return self.every > 0 and (step + 1) % self.every == 0

    def run(self, step: int, generate_samples: Any) -> dict[str, float]:
        from capo_ray.evaluation.generate import rollout_generate_fn
        from capo_ray.evaluation.report import write_run
        from capo_ray.evaluation.runner import evaluate

        result = evaluate(
            self.problems, rollout_generate_fn(generate_samples), self.verifier, self.encode,
            self.settings, model=f"step_{step}",
        )
        write_run(self.run_dir / "eval" / f"step_{step:06d}", result)
        metrics = result.flat_metrics("eval")
        log.info("eval at step %d: %s", step, {k: round(v, 4) for k, v in metrics.items() if "/avg/" in k})
        return metrics
