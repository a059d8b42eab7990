"""Step time with and without overlap (trainer.overlap + trainer.rollout_ahead), per critic.

    python bench/overlap.py                                  # critic=llm (SmolLM2 judge), tiny policy
    python bench/overlap.py --critic openai --base-url http://127.0.0.1:8000/v1
    python bench/overlap.py --steps 4 -- rollout.max_new_tokens=32   # extra overrides after --

For ``--critic openai`` start a server first, e.g.
    VLLM_CPU_KVCACHE_SPACE=1 python -m vllm.entrypoints.openai.api_server \
        --model ~/.cache/capo_ray/models/smollm2-135m-instruct --served-model-name judge \
        --host 127.0.0.1 --port 8000 --enforce-eager --dtype float32 --max-model-len 2048
(on CPU, vLLM reserves ``--gpu-memory-utilization`` of the machine's RAM unless the KV-cache
size is given, so a busy machine refuses to start it; use bfloat16 where the CPU has native
bf16, see docs/cpu-notes.md).

Each mode is one short training run on the same actors (weights reset to version 0 between
runs). Step 0 warms up and is left out; the table gives mean seconds of steps 1.. per stage and
the ratio the overlap target is about: overlapped step time / max(judge, learner + reference).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

MODES = {"sequential": ["trainer.overlap=false", "trainer.rollout_ahead=0"],
         "overlapped": ["trainer.overlap=true", "trainer.rollout_ahead=1"]}  # fmt: skip


def _mean(history: list[dict], key: str) -> float:
    values = [row.get(key, 0.0) for row in history[1:]] or [0.0]
    return statistics.mean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--critic", choices=["llm", "openai"], default="llm")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides")
    args = parser.parse_args()

    from capo_ray.config.compose import compose_config
    from capo_ray.driver.cluster import start_actors
    from capo_ray.driver.trainer import Trainer
    from capo_ray.models.resolve import load_policy_tokenizer

    out = Path(tempfile.mkdtemp(prefix="capo-overlap-"))
    base = [
        "model=tiny", "rollout.n_samples=4", "rollout.max_new_tokens=48", "rollout.engine.dtype=float32",
        "data.prompts_per_step=2", "learner.num_workers=1", "learner.micro_batch_size=4", f"critic={args.critic}",
        "critic.k=2", "critic.max_tokens=48", f"trainer.steps={args.steps}", f"trainer.output_dir={out}",
        "logging.wandb=disabled", "logging.progress_bar=false", "logging.log_samples=0", "trainer.resume=false",
    ]  # fmt: skip
    if args.critic == "openai":
        base += [f"critic.openai.base_url={args.base_url}", "critic.openai.model=judge"]
    cfgs = {m: compose_config(base + extra + [f"trainer.run_name={m}"] + args.overrides) for m, extra in MODES.items()}
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    print(f"CPU: {cpu}; flags: {' '.join(shown)}; load {os.getloadavg()[0]:.1f}; critic={args.critic}", flush=True)
    workers = start_actors(cfgs["sequential"])
    tokenizer = load_policy_tokenizer(cfgs["sequential"].model.path)
    rows = {}
    try:
        for mode, cfg in cfgs.items():
            workers.sync_weights(0)  # every run starts from the same weights, at version 0
            run_dir = out / mode
            run_dir.mkdir(parents=True, exist_ok=True)
            history = Trainer(cfg, workers, tokenizer, run_dir).fit()
            rows[mode] = {k: _mean(history, f"time/{k}") for k in
                          ("step", "rollout", "critic", "reference", "learner", "sync", "ahead_rollout", "ahead_critic")}
    finally:
        workers.shutdown()
    print(f"{'mode':>11} {'step s':>7} {'rollout':>7} {'critic':>7} {'ref':>6} {'learner':>7} {'sync':>6}")
    for mode, r in rows.items():
        print(f"{mode:>11} {r['step']:>7.1f} {r['rollout']:>7.1f} {r['critic'] or r['ahead_critic']:>7.1f} "
              f"{r['reference']:>6.1f} {r['learner']:>7.1f} {r['sync']:>6.1f}")
    seq, ovl = rows["sequential"], rows["overlapped"]
    bound = max(seq["critic"], seq["learner"] + seq["reference"])
    print(f"overlapped / sequential step time: {ovl['step'] / seq['step']:.2f}; "
          f"overlapped / max(judge, learner + reference) = {ovl['step']:.1f} / {bound:.1f} = {ovl['step'] / bound:.2f}; "
          f"load {os.getloadavg()[0]:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
