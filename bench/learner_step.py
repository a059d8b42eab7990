"""Seconds per LearnerGroup.train() call on SmolLM2-135M (CPU, gloo), by rank count and ZeRO stage.

    python bench/learner_step.py                       # default grid, 16 x 192 tokens
    python bench/learner_step.py --configs 1x2:2 2x1:3 --repeats 3

A config ``RxT:S`` is R learner ranks with T torch threads each at ZeRO stage S. Each config
starts a fresh group (start-up is reported separately), runs one warm-up train() and then
``--repeats`` timed calls of one optimizer step over the whole batch (on-policy, as the
trainer's default). Rows are ``--prompt`` prompt tokens + response tokens, random ids.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from capo_ray.records import TrainBatch


def make_batch(rows: int, length: int, prompt: int, vocab: int, seed: int) -> TrainBatch:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (rows, length), generator=gen)
    response = torch.zeros(rows, length)
    response[:, prompt:] = 1
    advantages = torch.randn(rows, length, generator=gen) * response
    attention = torch.ones(rows, length, dtype=torch.long)
    return TrainBatch(ids, attention, response, advantages, torch.zeros(rows, length))


def parse_config(text: str) -> tuple[int, int, int]:
    try:
        shape, stage = text.split(":")
        ranks, threads = shape.split("x")
        return int(ranks), int(threads), int(stage)
    except ValueError:
        raise argparse.ArgumentTypeError(f"config {text!r} is not RANKSxTHREADS:STAGE, e.g. 2x1:3") from None


def run_config(model_path: str, ranks: int, threads: int, stage: int, args: argparse.Namespace) -> dict[str, float]:
    from capo_ray.workers.learner import LearnerSettings
    from capo_ray.workers.actor_group import ActorOptions
    from capo_ray.workers.learner_group import LearnerGroup
    from capo_ray.workers.update_settings import UpdateSettings

    settings = LearnerSettings(
        model_path=model_path, zero_stage=stage, precision=args.precision, lr=1e-6, grad_clip=1.0,
        micro_batch_size=args.micro, mini_batch_size=args.rows, torch_threads=threads, device="cpu",
        gradient_checkpointing=args.grad_ckpt,
    )
    start = time.perf_counter()
    group = LearnerGroup(settings, ranks, ActorOptions("learner", num_cpus=threads))
    startup = time.perf_counter() - start
    batch = make_batch(args.rows, args.length, args.prompt, vocab=args.vocab, seed=0)
    update = UpdateSettings(clip_low=0.2, clip_high=0.2, kl_coef=0.0, agg="token_mean", ppo_epochs=1,
                            mini_batch_size=args.rows, micro_batch_size=args.micro)
    try:
        group.train(batch, update)  # warm-up: first-touch allocations, optimizer state
        times = [group.train(batch, update)["seconds"] for _ in range(args.repeats)]
        start = time.perf_counter()
        group.compute_logprobs(batch.input_ids, batch.attention_mask, args.micro, batch.response_mask)
        logprob_s = time.perf_counter() - start
    finally:
        group.shutdown()
    mean = statistics.mean(times)
    return {"startup_s": startup, "train_s": mean, "train_min_s": min(times),
            "tokens_per_s": float(batch.response_mask.sum()) / mean, "logprobs_s": logprob_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", type=parse_config,
                        default=[parse_config(c) for c in ("1x2:2", "2x1:2", "2x1:3")])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--length", type=int, default=192)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--grad-ckpt", action="store_true")
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--model", default=None, help="HF folder (default: SmolLM2-135M-Instruct)")
    args = parser.parse_args()

    import ray

    from capo_ray.models.smollm2 import smollm2_path

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    model_path = args.model or str(smollm2_path())
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    print(f"{args.rows} rows x {args.length} tokens ({args.length - args.prompt} response), "
          f"micro {args.micro}, {args.precision}, grad ckpt {args.grad_ckpt}")
    print(f"{'ranks x threads':>15} {'zero':>4} {'startup s':>9} {'train s':>8} {'min s':>7} "
          f"{'resp tok/s':>10} {'logprobs s':>10} {'load avg':>8}")
    try:
        for ranks, threads, stage in args.configs:
            r = run_config(model_path, ranks, threads, stage, args)
            print(f"{f'{ranks} x {threads}':>15} {stage:>4} {r['startup_s']:>9.1f} {r['train_s']:>8.1f} "
                  f"{r['train_min_s']:>7.1f} {r['tokens_per_s']:>10.0f} {r['logprobs_s']:>10.1f} "
                  f"{os.getloadavg()[0]:>8.1f}", flush=True)  # other processes skew CPU timings
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
