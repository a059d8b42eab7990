"""Same work, side by side: TRL's GRPOTrainer and ``capo_ray.train algo=grpo``, then CAPO's
overhead over GRPO (arith critic, LLM critic) split by stage.

    .venv/bin/python bench/vs_trl.py            # 3 optimizer steps per run, 2 with the LLM critic
    .venv/bin/python bench/vs_trl.py --quick    # 2 steps, no LLM-critic run
    .venv/bin/python bench/vs_trl.py --steps 3 --skip trl

Both trainers get the same work: SmolLM2-135M-Instruct in fp32, the same prompts (the built-in
arithmetic task's few-shot chat prompts, in capo-ray's order), group size, max new tokens,
temperature, learning rate, KL coefficient, reward (exact match on the boxed answer) and one
optimizer step per batch of prompts. Each side runs as a user would run it on a laptop: TRL
with its default HF ``generate`` rollouts (its vLLM modes need a GPU) and every core for torch,
capo-ray with its CPU defaults (vLLM engine, dtype auto, two learner ranks). Start-up and
model loading are excluded; seconds per optimizer step is the mean over the steps after the
first (warm-up), generated tokens/s = completion tokens per step / seconds per step.
TRL needs the ``bench`` extra (``pip install 'trl==1.16.0'``; setup.cfg pins it).
The last line is the ratio of seconds per optimizer step, capo-ray GRPO over TRL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

STAGES = ("rollout", "verify", "critic", "credit", "reference", "learner", "sync")


def steady_mean(values: list[float]) -> float:
    """Mean over the steps after the first (the first pays first-touch and warm-up costs)."""
    return statistics.mean(values[1:] if len(values) > 1 else values)


# --- the shared workload ------------------------------------------------------------------------


def workload_problems(args):
    """The prompts capo-ray's default data source asks at steps 0..N-1, in its order."""
    from capo_ray.config.components import DataConfig
    from capo_ray.data.prompts_for_task import prompt_messages
    from capo_ray.data.sources import make_source

    cfg = DataConfig(prompts_per_step=args.prompts)
    source = make_source(cfg)
    return [(prompt_messages(cfg, p), p.answer) for step in range(args.steps) for p in source.batch(step, args.prompts)]


# --- TRL ----------------------------------------------------------------------------------------


def run_trl(args, out_dir: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from capo_ray.hardware import usable_cores
    from capo_ray.models.resolve import resolve_model_path
    from capo_ray.rewards.exact import exact_verdict

    torch.set_num_threads(usable_cores())
    rows = workload_problems(args)
    data = Dataset.from_list([{"prompt": messages, "answer": answer} for messages, answer in rows])

    def exact_reward(completions, answer, **_):
        return [float(exact_verdict(c[0]["content"], a).correct) for c, a in zip(completions, answer)]

    class Times(TrainerCallback):
        def __init__(self):
            self.seconds, self.lengths, self.rewards, self._t0 = [], [], [], 0.0

        def on_step_begin(self, *_, **__):
            self._t0 = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.seconds.append(time.perf_counter() - self._t0)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(float(logs["completions/mean_length"]))
                self.rewards.append(float(logs.get("reward", float("nan"))))

    config = GRPOConfig(
        output_dir=str(out_dir / "trl"), use_cpu=True, bf16=False, seed=0, report_to="none",
        per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
        gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1,
        max_completion_length=args.max_new, temperature=args.temperature, top_p=1.0,
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, beta=args.kl, max_steps=args.steps, shuffle_dataset=False,
        logging_steps=1, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
    )
    times = Times()
    trainer = GRPOTrainer(model=str(resolve_model_path(args.model)), reward_funcs=exact_reward, args=config,
                          train_dataset=data, callbacks=[times])
    trainer.train()
    responses = args.prompts * args.group
    tokens = [n * responses for n in times.lengths]
    return {"name": "TRL GRPOTrainer", "seconds": times.seconds, "tokens": tokens, "reward": times.rewards}


# --- capo-ray -----------------------------------------------------------------------------------


def run_capo_ray(args, out_dir: Path, name: str, overrides: list[str], steps: int | None = None) -> dict:
    run_dir = out_dir / name.replace(" ", "_")
    cmd = [
        sys.executable, "-m", "capo_ray.train", *overrides, f"model={args.model}",
        f"trainer.steps={steps or args.steps}", f"data.prompts_per_step={args.prompts}",
        f"rollout.n_samples={args.group}", f"rollout.max_new_tokens={args.max_new}",
        f"rollout.temperature={args.temperature}", f"learner.lr={args.lr}", f"algo.kl_coef={args.kl}",
        "logging.wandb=disabled", "logging.progress_bar=false", "trainer.save_every=0", "trainer.time_budget_s=0",
        "trainer.resume=false", f"trainer.output_dir={run_dir.parent}", f"trainer.run_name={run_dir.name}",
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise RuntimeError(f"{name}: capo_ray.train exited with {done.returncode}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {
        "name": name,
        "seconds": [r["time/step"] for r in rows],
        "tokens": [r["rollout/policy_tokens"] for r in rows],
        "reward": [r.get("outcome/accuracy", float("nan")) for r in rows],
        "stages": {s: [r.get(f"time/{s}", 0.0) for r in rows] for s in STAGES},
        "other": [r.get("time/driver_other", 0.0) for r in rows],
    }


# --- report -------------------------------------------------------------------------------------


def summary(run: dict) -> tuple[float, float]:
    sec = steady_mean(run["seconds"])
    tok = steady_mean(run["tokens"]) if run["tokens"] else float("nan")
    return sec, tok / sec


def print_report(args, runs: dict[str, dict]) -> None:
    from capo_ray.hardware import cpu_info

    print(f"\nworkload: {args.model} fp32, {args.prompts} prompts x {args.group} samples, "
          f"{args.max_new} max new tokens, temperature {args.temperature}, lr {args.lr}, KL {args.kl}, "
          f"{args.steps} optimizer steps per run (means over steps 2..{args.steps})")
    print(f"CPU: {cpu_info().describe()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<22} {'s / opt step':>12} {'gen tok/s':>10} {'tok/step':>9}  per-step s / accuracy")
    for run in runs.values():
        sec, tps = summary(run)
        per = " ".join(f"{s:.1f}" for s in run["seconds"])
        acc = " ".join(f"{r:.2f}" for r in run["reward"])
        print(f"{run['name']:<22} {sec:>12.1f} {tps:>10.1f} {steady_mean(run['tokens']):>9.0f}  [{per}] / [{acc}]")
    grpo = runs.get("grpo")
    for key in ("capo_arith", "capo_llm"):
        if grpo is None or key not in runs:
            continue
        capo = runs[key]
        cells = []
        for stage in STAGES:
            delta = steady_mean(capo["stages"][stage]) - steady_mean(grpo["stages"][stage])
            cells.append(f"{stage} {delta:+.2f}")
        total = steady_mean(capo["seconds"]) - steady_mean(grpo["seconds"])
        rel = total / steady_mean(grpo["seconds"])
        print(f"{capo['name']} - GRPO, s / step: {', '.join(cells)}; total {total:+.2f} ({rel:+.1%})")
    if "trl" in runs and grpo is not None:
        ratio = summary(grpo)[0] / summary(runs["trl"])[0]
        tok_ratio = summary(grpo)[1] / summary(runs["trl"])[1]
        print(f"capo-ray GRPO / TRL generated tokens/s: {tok_ratio:.2f}x")
        print(f"capo-ray GRPO / TRL seconds per optimizer step: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Sized so the whole comparison fits in about 45 minutes on a busy 2-core AVX2 machine, where
    # one TRL step took 320-430 s and one LLM-critic step 234 s (README).
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run (>= 2)")
    parser.add_argument("--llm-steps", type=int, default=2, help="steps of the LLM-critic run (>= 2)")
    parser.add_argument("--quick", action="store_true", help="2 steps and no LLM-critic run")
    parser.add_argument("--model", default="smollm2", choices=["smollm2", "tiny"], help="tiny: a smoke test")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--max-new", type=int, default=96)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--kl", type=float, default=0.001)
    parser.add_argument("--skip", nargs="*", default=[], choices=["trl", "grpo", "capo_arith", "capo_llm"])
    parser.add_argument("--out", default=None, help="where the runs write (default: a temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.steps = min(args.steps, 2)
        args.skip = sorted(set(args.skip) | {"capo_llm"})
    if args.steps < 2 or args.llm_steps < 2:
        parser.error("--steps must be >= 2 (the first step is warm-up)")
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="vs_trl_"))
    plan = {
        "trl": lambda: run_trl(args, out_dir),
        "grpo": lambda: run_capo_ray(args, out_dir, "capo-ray GRPO", ["algo=grpo"]),
        "capo_arith": lambda: run_capo_ray(args, out_dir, "capo-ray CAPO arith", ["algo=capo", "critic=arith"]),
        "capo_llm": lambda: run_capo_ray(args, out_dir, "capo-ray CAPO llm", ["algo=capo", "critic=llm"],
                                         steps=args.llm_steps),
    }
    runs = {}
    for key, run in plan.items():
        if key not in args.skip:
            start = time.perf_counter()
            runs[key] = run()
            print(f"{runs[key]['name']}: done in {time.perf_counter() - start:.0f} s", flush=True)
    (out_dir / "vs_trl.json").write_text(json.dumps(runs, indent=1))
    print_report(args, runs)


if __name__ == "__main__":
    main()
