"""The SFT loop: examples -> encoded batch -> one optimizer step, loss per step, HF folder out."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from capo_ray.sft.config import SftConfig
from capo_ray.sft.encode import encode_batch
from capo_ray.sft.examples import ExampleSource, make_examples
from capo_ray.sft.learners import GroupLearner, TorchLearner, lr_at

log = logging.getLogger("capo_ray.sft")


def make_learner(cfg: SftConfig, model_path: str) -> Any:
    from capo_ray.hardware import learner_threads

    lc = cfg.learner
    # learner.torch_threads 0 means "cores split over the ranks", as in the RL trainer.
    ranks = 1 if cfg.sft.backend == "torch" else lc.num_workers
    common = dict(lr=lc.lr, weight_decay=lc.weight_decay, grad_clip=lc.grad_clip,
                  micro_batch_size=lc.micro_batch_size, threads=learner_threads(lc.torch_threads, ranks), seed=lc.seed)
    if cfg.sft.backend == "torch":
        return TorchLearner(model_path, **common)
    return GroupLearner(model_path, **common, num_workers=lc.num_workers, zero_stage=lc.zero_stage,
                        num_cpus=cfg.sft.num_cpus, gradient_checkpointing=cfg.model.gradient_checkpointing)


def run(cfg: SftConfig, source: ExampleSource | None = None, model_path: str | None = None) -> Path:
    """Fine-tune ``cfg.model.path`` (or ``model_path``) and write the HF folder ``cfg.sft.output``.

    ``source`` overrides the examples (the organism builder passes its curriculum)."""
    from capo_ray.models.resolve import load_policy_tokenizer, resolve_model_path

    s = cfg.sft
    model_path = model_path or resolve_model_path(cfg.model.path)
    tokenizer = load_policy_tokenizer(model_path)
    source = source or make_examples(cfg.data, s.pairs, s.solution_errors(), cfg.seed)
    out = Path(s.output)
    out.mkdir(parents=True, exist_ok=True)
    # The first batch is encoded before any learner starts: a max_len nothing fits in fails now.
    first = encode_batch(tokenizer, source.batch(0, s.batch_size), s.max_len)
    learner = make_learner(cfg, model_path)
    bar = tqdm(total=s.steps, desc="capo-ray-sft", unit="step", disable=not s.progress_bar, dynamic_ncols=True)
    start, dropped = time.perf_counter(), 0
    try:
        with (out / "sft_metrics.jsonl").open("w") as metrics_file:
            for step in range(s.steps):
                batch, long_prompts = first if step == 0 else encode_batch(tokenizer, source.batch(step, s.batch_size), s.max_len)
                if long_prompts and not dropped:
                    log.warning("dropping examples whose prompt fills sft.max_len = %d tokens (counted in "
                                "sft_metrics.jsonl as dropped_long_prompts)", s.max_len)
                dropped += long_prompts
                lr = lr_at(step, s.steps, cfg.learner.lr, s.warmup_steps, s.min_lr_ratio, s.schedule)
                metrics = {"step": step, **learner.step(batch, lr), "dropped_long_prompts": long_prompts,
                           "seconds": time.perf_counter() - start}
                metrics_file.write(json.dumps(metrics) + "\n")
                metrics_file.flush()
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{lr:.2e}")
                bar.update(1)
                if not s.progress_bar:
                    print(f"step {step} | loss {metrics['loss']:.4f} | lr {lr:.2e}", flush=True)
        learner.save(str(out))
    finally:
        bar.close()
        learner.close()
    log.info("SFT done: %d steps in %.0f s (%d examples dropped for a long prompt); model at %s",
             s.steps, time.perf_counter() - start, dropped, out)
    return out


def read_losses(folder: str | Path) -> list[float]:
    lines = (Path(folder) / "sft_metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if line.strip()]
