"""Benchmark evaluation: ``python -m capo_ray.eval [hydra overrides]`` (console script
``capo-ray-eval``; config ``conf/eval.yaml``, typed by ``capo_ray.evaluation.config``).

Examples:
    capo-ray-eval policy=smollm2 benchmarks=[math500,gsm8k_test] limit=20 k=4
    capo-ray-eval policy=runs/capo-20260101-120000 name=CAPO compare=[runs/eval/base]
    capo-ray-eval policy=/models/Qwen2.5-7B engine.tensor_parallel_size=2 engine.enforce_eager=false

Writes ``results.md``, ``results.json``, ``samples/<benchmark>.jsonl`` and ``config.json``
into ``<output_dir>/<run_name>``. Order matters for users: config, policy, data and prompt
lengths are all checked before the (slow) engine starts.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from capo_ray.config.strict import to_dict
from capo_ray.evaluation.config import EvalConfig
from capo_ray.config.entry import hydra_main

log = logging.getLogger("capo_ray.eval")


def make_run_dir(cfg: EvalConfig, label: str) -> Path:
    name = cfg.run_name or time.strftime(f"{re.sub(r'[^A-Za-z0-9._-]+', '_', label)}-%Y%m%d-%H%M%S")
    run_dir = Path(cfg.output_dir).resolve() / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def check_prompt_lengths(prompt_lengths: dict[str, list[int]], max_new_tokens: int, max_model_len: int) -> None:
    """Fail before generating if a prompt leaves no room for ``max_new_tokens``."""
    room = max_model_len - max_new_tokens
    too_long = {b: max(lengths) for b, lengths in prompt_lengths.items() if max(lengths) > room}
    if too_long:
        raise ValueError(
            f"prompts longer than engine.max_model_len - max_new_tokens = {room} tokens "
            f"(longest per benchmark: {too_long}); raise engine.max_model_len or lower max_new_tokens"
        )


def _engine(cfg: EvalConfig, model_path: str):
    from capo_ray.workers.vllm_engine import EngineConfig, VLLMEngine, detect_device

    # The engine runs in this process, so what this process sees is the device.
    return VLLMEngine(EngineConfig(model=model_path, seed=cfg.seed, settings=cfg.engine, device=detect_device()))


def run(cfg: EvalConfig) -> Path:
    """Evaluate with a validated config; returns the run directory."""
    from transformers import AutoTokenizer

    from capo_ray.evaluation.benchmarks import load_benchmarks
    from capo_ray.evaluation.generate import engine_generate_fn
    from capo_ray.evaluation.policy import resolve_policy
    from capo_ray.evaluation.prompting import chat_encoder
    from capo_ray.evaluation.report import markdown_report, read_result, write_run
    from capo_ray.evaluation.results import EvalSettings
    from capo_ray.evaluation.runner import evaluate
    from capo_ray.rewards import make_verifier

    policy = resolve_policy(cfg.policy)
    label = cfg.name or policy.label
    problems = load_benchmarks(cfg.benchmarks, cfg.limit, cfg.data_dir)
    compare = [read_result(path) for path in cfg.compare]
    tokenizer = AutoTokenizer.from_pretrained(policy.path)  # encodes prompts, decodes responses
    encode = chat_encoder(tokenizer, cfg.few_shot)
    lengths = {b: [len(encode(b, p)) for p in ps] for b, ps in problems.items()}
    check_prompt_lengths(lengths, cfg.max_new_tokens, cfg.engine.max_model_len)
    run_dir = make_run_dir(cfg, label)
    (run_dir / "config.json").write_text(json.dumps({**to_dict(cfg), "resolved_policy": policy.path}, indent=2))
    log.info("evaluating %s (%s) on %s -> %s", label, policy.path, {b: len(p) for b, p in problems.items()}, run_dir)
    settings = EvalSettings(greedy=cfg.greedy, k=cfg.k, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    # The verifier's worker processes start in the background while the engine loads.
    with make_verifier(cfg.verifier, cfg.verify_timeout_s, cfg.verify_workers) as verifier:
        engine = _engine(cfg, policy.path)
        generate = engine_generate_fn(engine, tokenizer)
        started = time.monotonic()
        result = evaluate(problems, generate, verifier, encode, settings, model=label)
    log.info("generated and verified in %.1f s", time.monotonic() - started)
    paths = write_run(run_dir, result, compare)
    print(markdown_report(result, compare))
    log.info("results: %s, %s; per-problem outputs: %s", paths["markdown"], paths["json"], paths["samples"])
    return run_dir


def main() -> None:
    hydra_main("eval", EvalConfig, run, in_process_engine=True)


if __name__ == "__main__":
    main()
