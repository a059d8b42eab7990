"""Rollout throughput on SmolLM2-135M-Instruct: the vLLM RolloutWorker vs HF ``generate``.

Same few-shot arithmetic chat prompts for both (defaults: 8 prompts x 4 samples x 128 new
tokens, temperature 1). Each backend runs in its own subprocess, because vLLM pins its process
to one thread. Reports generated tokens/s (tokens up to and including EOS), excluding model
load; the vLLM figure includes our detokenization with offsets. Also tokens per CPU-second of
the generating process (all its threads): on a shared, busy machine that figure, not the wall
one, approximates what an idle core would do.

    .venv/bin/python bench/rollout_throughput.py [--dtype bfloat16 float32] [--hf-threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

DEMOS = [
    ("What is 3 + 4 * 5?", "Step 1: 4 * 5 = 20\n\nStep 2: 3 + 20 = 23\n\nThe answer is \\boxed{23}."),
    ("What is 9 - 2 * 3?", "Step 1: 2 * 3 = 6\n\nStep 2: 9 - 6 = 3\n\nThe answer is \\boxed{3}."),
]


def prompts(tokenizer, count: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        a, b, c = (rng.randint(1, 10) for _ in range(3))
        messages = [{"role": "system", "content": "Solve step by step. Box the final answer."}]
        for q, a_text in DEMOS:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a_text}]
        messages.append({"role": "user", "content": f"What is {a} + {b} * {c}?"})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        out.append(tokenizer.encode(text, add_special_tokens=False))
    return out


def run_vllm(args) -> dict:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from capo_ray.models.smollm2 import smollm2_path
    from capo_ray.workers.rollout import RolloutWorker
    from capo_ray.config.engine import EngineSettings
    from capo_ray.workers.vllm_engine import EngineConfig

    cfg = EngineConfig(model=str(smollm2_path()), seed=0, settings=EngineSettings(dtype=args.dtype, max_model_len=1024))
    start = time.perf_counter()
    worker = RolloutWorker(cfg)
    startup = time.perf_counter() - start
    ids = prompts(worker.tokenizer, args.prompts)
    worker.generate(ids[:1], n=1, temperature=1.0, top_p=1.0, max_new_tokens=8)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    out = worker.generate(ids, n=args.samples, temperature=1.0, top_p=1.0, max_new_tokens=args.max_new)
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu
    tokens = sum(len(s.response_ids) for group in out for s in group)
    boxed = sum("\\boxed{" in s.response_text for group in out for s in group)
    return {"backend": "vllm", "dtype": args.dtype, "tokens": tokens, "seconds": secs, "cpu_s": cpu, "startup_s": startup,
            "boxed_share": boxed / (args.prompts * args.samples)}  # fmt: skip


def run_hf(args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from capo_ray.models.smollm2 import load_tokenizer, smollm2_path

    torch.set_num_threads(args.hf_threads)
    tok = load_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=getattr(torch, args.dtype)).eval()
    ids = prompts(tok, args.prompts)
    width = max(map(len, ids))
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in ids])  # left padding
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ids])
    torch.manual_seed(0)
    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = model.generate(input_ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0,
                             max_new_tokens=args.max_new, num_return_sequences=args.samples, pad_token_id=pad)  # fmt: skip
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu
    gen = out[:, width:].tolist()
    eos = tok.eos_token_id
    tokens = sum((row.index(eos) + 1) if eos in row else len(row) for row in gen)
    return {"backend": "hf", "dtype": args.dtype, "tokens": tokens, "seconds": secs, "cpu_s": cpu, "threads": args.hf_threads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtype", nargs="+", default=["bfloat16", "float32"])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--max-new", type=int, default=128)
    p.add_argument("--hf-threads", type=int, default=1)
    p.add_argument("--backends", nargs="+", default=["vllm", "hf"])
    p.add_argument("--child", choices=["vllm", "hf"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.dtype = args.dtype[0]
        result = run_vllm(args) if args.child == "vllm" else run_hf(args)
        print("RESULT " + json.dumps(result), flush=True)
        return
    print(f"{args.prompts} prompts x {args.samples} samples x {args.max_new} new tokens; load {os.getloadavg()[0]:.1f}")
    for dtype in args.dtype:
        for backend in args.backends:
            cmd = [sys.executable, __file__, "--child", backend, "--dtype", dtype, "--prompts", str(args.prompts),
                   "--samples", str(args.samples), "--max-new", str(args.max_new), "--hf-threads", str(args.hf_threads)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(f"{backend} {dtype}: failed\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(line[7:])
            skip = ("backend", "dtype", "tokens", "seconds", "cpu_s")
            extra = {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items() if k not in skip}
            print(f"{backend:5s} {dtype:9s} {r['tokens']:5d} tokens {r['seconds']:7.2f} s "
                  f"{r['tokens'] / r['seconds']:7.1f} tokens/s wall {r['tokens'] / r['cpu_s']:7.1f} tokens/CPU-s "
                  f"load {os.getloadavg()[0]:.1f}  {extra}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
