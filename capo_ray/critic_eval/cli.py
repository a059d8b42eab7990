"""Critic evaluation: ``capo-ray-critic-eval [hydra overrides]`` or ``python -m capo_ray.critic_eval``
(config ``conf/critic_eval.yaml``, typed by ``capo_ray.critic_eval.config``).

Scores a GenPRM setup (backend and model, k, voting rule) on the GSM8K step-error benchmark
before a training run depends on it (docs/algorithm.md, "Critic quality never checked"). Examples:
    capo-ray-critic-eval judge.flip_noise=0.2
    capo-ray-critic-eval judge.backend=llm judge.model_path=/models/Qwen2.5-72B-Instruct \
        judge.engine.tensor_parallel_size=4 judge.engine.enforce_eager=false size=500 ks=[1,2,4,8]
    capo-ray-critic-eval judge.backend=llm judge.launch=ray judge.num_engines=4 judge.engine_gpus=1

Writes ``results.md``, ``results.json``, ``examples.jsonl`` and ``config.json`` into
``<output_dir>/<run_name>``. The config and the benchmark are checked before the (slow) judge
starts; the judge is always shut down (and a Ray started here stopped), even after an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from pathlib import Path
from typing import Iterator

from capo_ray.config.components import CriticConfig
from capo_ray.config.strict import to_dict
from capo_ray.critic_eval.config import CriticEvalConfig, JudgeConfig
from capo_ray.critic_eval.runner import CritiqueFn, EvalSetup
from capo_ray.config.entry import hydra_main

log = logging.getLogger("capo_ray.critic_eval")


def judge_label(j: JudgeConfig) -> str:
    if j.backend == "arith":
        return f"arith (flip_noise={j.flip_noise:g})"
    if j.backend == "hybrid":
        llm = judge_label(JudgeConfig(**{**j.__dict__, "backend": j.hybrid.llm}))
        return f"hybrid ({j.hybrid.mode}, checker_votes {j.hybrid.checker_votes}) with {llm}"
    model = f"{j.openai.model} at {j.openai.base_url}" if j.backend == "openai" else j.model_path
    template = "" if j.prompt_template is None else f", prompt {Path(j.prompt_template).name}"
    return f"{j.backend} {model} (temperature {j.temperature:g}, max_tokens {j.max_tokens}{template})"


def make_run_dir(cfg: CriticEvalConfig) -> Path:
    j = cfg.judge
    short = {"arith": "arith", "llm": Path(j.model_path).name, "openai": f"openai-{j.openai.model}"}.get(j.backend, j.backend)
    name = cfg.run_name or time.strftime(f"{re.sub(r'[^A-Za-z0-9._-]+', '_', short)}-%Y%m%d-%H%M%S")
    run_dir = Path(cfg.output_dir).resolve() / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def build_benchmark(cfg: CriticEvalConfig):
    from capo_ray.critic_eval.step_errors import build_step_error_benchmark, load_gsm8k_solutions
    from capo_ray.data.datasets import resolve_data_dir

    if cfg.dataset.path is not None:
        from capo_ray.critic_eval.step_labelled import field_map, load_step_labelled

        return load_step_labelled(cfg.dataset.path, field_map(cfg.dataset.format, cfg.dataset.fields), cfg.dataset.limit)

    path = resolve_data_dir(cfg.data_dir) / f"gsm8k_{cfg.split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"split={cfg.split} needs {path}; set data_dir or $CAPO_DATA_DIR")
    return build_step_error_benchmark(load_gsm8k_solutions(path), cfg.size, cfg.error_fraction, cfg.seed)


# -- judges ------------------------------------------------------------------------------------


def _engine_config(c: CriticConfig, index: int, device: str):
    from capo_ray.models.resolve import resolve_model_path
    from capo_ray.workers.vllm_engine import EngineConfig

    return EngineConfig(model=resolve_model_path(c.model_path), seed=c.seed + index, settings=c.engine, device=device)


@contextlib.contextmanager
def _inprocess_llm(c: CriticConfig) -> Iterator[CritiqueFn]:
    import gc

    from capo_ray.workers.critic_llm import CriticWorker
    from capo_ray.workers.vllm_engine import detect_device

    # The actor class, used here as a plain object. Held in a list so that the exit below drops
    # the only reference: the engine's memory is freed when ``run`` is called from a notebook.
    workers = [CriticWorker(_engine_config(c, 0, detect_device()))]
    try:
        yield lambda messages, steps: workers[0].critique(messages, c.k, c.temperature, c.max_tokens)
    finally:
        workers.clear()
        gc.collect()


@contextlib.contextmanager
def _ray_llm(c: CriticConfig, j: JudgeConfig) -> Iterator[CritiqueFn]:
    import ray

    from capo_ray.workers.actor_group import ActorOptions, kill_actors, start_group, wait_ready
    from capo_ray.workers.critic_llm import CriticPool, CriticWorker
    from capo_ray.workers.vllm_engine import engine_env

    started = not ray.is_initialized()
    if started:
        ray.init(address=j.ray_address, include_dashboard=False)
    handles = []
    try:
        device = "cuda" if j.engine_gpus > 0 else "cpu"
        options = ActorOptions("critic", num_cpus=j.engine_cpus, num_gpus=j.engine_gpus, env_vars=engine_env(device))
        handles = start_group(CriticWorker, options, [(_engine_config(c, i, device),) for i in range(c.num_engines)])
        wait_ready(handles, "critic", timeout_s=None)  # a 70B judge may load for long
        pool = CriticPool(handles)
        yield lambda messages, steps: pool.critique(messages, c.k, c.temperature, c.max_tokens, c.request_timeout_s)
    finally:
        kill_actors(handles)
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _openai(c: CriticConfig) -> Iterator[CritiqueFn]:
    from capo_ray.critics.openai_critic import make_openai_critic

    critic = make_openai_critic(c)
    try:
        yield critic.critique
    finally:
        critic.shutdown()


@contextlib.contextmanager
def open_judge(j: JudgeConfig, k: int) -> Iterator[CritiqueFn]:
    """The judge as a ``CritiqueFn`` giving ``k`` critiques per solution; shut down on exit."""
    c = j.to_critic_config(k)
    if c.backend == "hybrid":
        from capo_ray.critics.hybrid import combine

        with open_judge(JudgeConfig(**{**j.__dict__, "backend": j.hybrid.llm}), k) as llm:
            yield lambda messages, steps: [
                combine(r, s, j.hybrid.mode, j.hybrid.checker_votes) for r, s in zip(llm(messages, steps), steps)
            ]
    elif c.backend == "openai":
        with _openai(c) as critique_fn:
            yield critique_fn
    elif c.backend == "arith":
        from capo_ray.critics.arith import ArithCritic

        yield ArithCritic(k=c.k, flip_noise=c.flip_noise, seed=c.seed).critique
    elif j.launch == "ray":
        with _ray_llm(c, j) as critique_fn:
            yield critique_fn
    else:
        with _inprocess_llm(c) as critique_fn:
            yield critique_fn


# -- entry -------------------------------------------------------------------------------------


def run(cfg: CriticEvalConfig) -> Path:
    """Evaluate the judge with a validated config; returns the run directory."""
    from capo_ray.critic_eval.report import markdown_report, write_run
    from capo_ray.critic_eval.runner import evaluate_critic

    from capo_ray.critics.prompt_template import PromptTemplate

    examples = build_benchmark(cfg)
    template = PromptTemplate.load(cfg.judge.prompt_template)
    run_dir = make_run_dir(cfg)
    (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    label = judge_label(cfg.judge)
    if cfg.dataset.path is None:
        setup = EvalSetup(label, cfg.split, cfg.seed, cfg.error_fraction, cfg.judge.use_reference_answer)
    else:  # outside data: its own file and share of erroneous solutions
        share = sum(e.first_error is not None for e in examples) / len(examples)
        dataset = f"{Path(cfg.dataset.path).name} ({cfg.dataset.format} format)"
        setup = EvalSetup(label, "-", cfg.seed, share, cfg.judge.use_reference_answer, dataset)
    log.info("judging %d solutions with %s, K = %d critiques each -> %s", len(examples), label, cfg.max_k, run_dir)
    started = time.monotonic()
    with open_judge(cfg.judge, cfg.max_k) as critique_fn:
        result = evaluate_critic(examples, critique_fn, cfg.ks, cfg.rules, setup, cfg.judge.batch_size, template,
                                 cfg.judge.fixed_voters)  # fmt: skip
    log.info("judged in %.1f s", time.monotonic() - started)
    paths = write_run(run_dir, result)
    print(markdown_report(result))
    log.info("results: %s, %s; per-solution records: %s", paths["markdown"], paths["json"], paths["examples"])
    return run_dir


def main() -> None:
    hydra_main("critic_eval", CriticEvalConfig, run, in_process_engine=True)


if __name__ == "__main__":
    main()
