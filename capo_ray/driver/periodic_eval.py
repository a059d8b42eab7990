"""Held-out evaluation during training, through the rollout engines right after a weight
sync (so it scores exactly the weights just trained), with capo-ray-eval's scoring.

With ``data=chain`` it scores the task's own held-out stream (``chain_heldout``, asked like
training asks) instead of ``trainer.eval_benchmarks``, and adds the step checker's view of the
greedy answers: the share with a wrong step, overall and among correct answers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from capo_ray.config import Config, DataConfig
from capo_ray.data.sources import make_source

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
        self.chain = cfg.data.name == "chain"
        if self.chain:
            self.problems = {"chain_heldout": make_source(cfg.data, "heldout").batch(0, t.eval_limit)}
            self.encode = _task_encoder(tokenizer, cfg.data)
        else:
            # Loaded (and validated) at start-up: a wrong benchmark name fails before step 0.
            self.problems = load_benchmarks(t.eval_benchmarks, limit=t.eval_limit, data_dir=cfg.data.data_dir)
            self.encode = chat_encoder(tokenizer, cfg.data.few_shot)
        self.settings = EvalSettings(
            greedy=True, k=t.eval_k, temperature=cfg.rollout.temperature, max_new_tokens=t.eval_max_new_tokens
        )

    def due(self, step: int) -> bool:
        return self.every > 0 and (step + 1) % self.every == 0

    def run(self, step: int, generate_samples: Any) -> dict[str, float]:
        """Scores after ``step`` (-1: the starting weights), as eval/... metrics."""
        from capo_ray.evaluation.generate import rollout_generate_fn
        from capo_ray.evaluation.report import write_run
        from capo_ray.evaluation.runner import evaluate

        name = "start" if step < 0 else f"step_{step:06d}"  # step -1: the weights before training
        result = evaluate(
            self.problems, rollout_generate_fn(generate_samples), self.verifier, self.encode,
            self.settings, model=name,
        )
        write_run(self.run_dir / "eval" / name, result)
        metrics = result.flat_metrics("eval")
        if self.chain:
            metrics.update(step_error_metrics(result.problems["chain_heldout"], "eval/chain_heldout"))
        log.info("eval %s: %s", "before training" if step < 0 else f"at step {step}",
                 {k: round(v, 4) for k, v in metrics.items() if "/avg/" in k})
        return metrics


def _task_encoder(tokenizer: Any, data: DataConfig) -> Any:
    from capo_ray.data.prompts_for_task import prompt_messages

    def encode(benchmark: str, problem: Any) -> list[int]:
        text = tokenizer.apply_chat_template(prompt_messages(data, problem), add_generation_prompt=True, tokenize=False)
        return list(tokenizer.encode(text, add_special_tokens=False))

    return encode


def step_error_metrics(records: Any, prefix: str) -> dict[str, float]:
    """Responses with a step the arith critic's checks find wrong (critics/step_errors.py), as a
    share of all and of the correct ones: greedy answers under ``prefix``, samples at the
    rollout temperature (what RL trains) under ``prefix/sampled_``."""
    from capo_ray.critics.step_errors import step_error_rates

    out: dict[str, float] = {}
    for mode, tag in (("greedy", ""), ("sampled", "sampled_")):
        texts, correct, questions = [], [], []
        for record in records:
            samples = getattr(record, mode, None)
            if samples is None:
                continue
            texts += samples.responses
            correct += samples.correct
            questions += [record.question] * len(samples.responses)
        if texts:
            out.update({f"{prefix}/{tag}{k}": v for k, v in step_error_rates(texts, correct, questions).items()})
    return out
