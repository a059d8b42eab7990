"""Throughput of the pure CAPO core on one CPU thread, stage by stage.

Synthetic batch (defaults: 1024 responses x 1024 tokens, 8 blank-line separated steps each,
K = 4 critique texts each, groups of 16) pushed through
split_steps -> token_step_spans -> parse_critique -> vote -> token_rewards -> stack ->
group_advantages. Prints seconds and tokens/s (all response tokens / stage seconds) for each
stage and overall; the best of ``--repeats`` runs per stage. Target: well over 1M tokens/s.

    .venv/bin/python bench/core_pipeline.py [--responses 1024 --tokens 1024 ...]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

# Run as a script from a checkout: make the repository root importable without installing.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capo_ray.core import (  # noqa: E402
    group_advantages,
    parse_critique,
    split_steps,
    token_rewards,
    token_step_spans,
    vote,
)

_WORDS = ["x", "=", "12", "+", "y", "so", "the", "sum", "is", "3", "\\frac{1}{2}", "times", "中"]


@dataclass
class Batch:
    texts: list[str]  # [B]
    offsets: list[list[tuple[int, int]]]  # [B][T] char spans of the generated tokens
    critiques: list[list[str]]  # [B][K]
    correct: list[bool]  # [B]
    group_ids: torch.Tensor  # [B]


def _response(rng: random.Random, num_tokens: int, num_steps: int) -> tuple[str, list[tuple[int, int]]]:
    """A response of exactly num_tokens tokens: steps of word tokens, one "\\n\\n" token
    between steps, a zero-width EOS at the end."""
    body_tokens = num_tokens - num_steps  # minus (num_steps - 1) separators and the EOS
    per_step = [body_tokens // num_steps + (k < body_tokens % num_steps) for k in range(num_steps)]
    pieces: list[str] = []
    offsets: list[tuple[int, int]] = []
    position = 0
    for k, count in enumerate(per_step):
        if k:
            pieces.append("\n\n")
            offsets.append((position, position + 2))
            position += 2
        for i in range(count):
            token = rng.choice(_WORDS) if i == 0 else " " + rng.choice(_WORDS)
            pieces.append(token)
            offsets.append((position, position + len(token)))
            position += len(token)
    offsets.append((position, position))  # EOS
    return "".join(pieces), offsets


def _critique(rng: random.Random, num_steps: int) -> str:
    if rng.random() < 0.05:
        return "The solution is hard to follow; I cannot judge it."  # abstains
    wrong = sorted(rng.sample(range(1, num_steps + 1), rng.randint(0, 3)))
    lines = [f"Step {k}: {'wrong' if k in wrong else 'correct'}." for k in range(1, num_steps + 1)]
    reasoning = "\n".join(lines)
    return f"{reasoning}\nWrong step list: [{', '.join(map(str, wrong))}]"


def make_batch(responses: int, tokens: int, steps: int, critiques: int, group_size: int, seed: int) -> Batch:
    if tokens < 2 * steps:
        raise SystemExit(f"--tokens {tokens} is too few for --steps {steps}")
    rng = random.Random(seed)
    texts, offsets = zip(*(_response(rng, tokens, steps) for _ in range(responses)))
    return Batch(
        texts=list(texts),
        offsets=list(offsets),
        critiques=[[_critique(rng, steps) for _ in range(critiques)] for _ in range(responses)],
        correct=[rng.random() < 0.5 for _ in range(responses)],
        group_ids=torch.arange(responses) // group_size,
    )


def run_once(batch: Batch) -> dict[str, float]:
    """Seconds per stage for one pass over the batch."""
    seconds: dict[str, float] = {}

    def timed(stage, fn):
        start = time.perf_counter()
        result = fn()
        seconds[stage] = time.perf_counter() - start
        return result

    steps = timed("split_steps", lambda: [split_steps(text) for text in batch.texts])
    spans = timed(
        "token_step_spans", lambda: [token_step_spans(s, o) for s, o in zip(steps, batch.offsets)]
    )
    verdicts = timed(
        "parse_critique",
        lambda: [[parse_critique(c, len(s)) for c in cs] for cs, s in zip(batch.critiques, steps)],
    )
    penalties = timed("vote", lambda: [vote(v, len(s), "majority") for v, s in zip(verdicts, steps)])
    rewards = timed(
        "token_rewards",
        lambda: [
            token_rewards(ok, sp, p, len(o))
            for ok, sp, p, o in zip(batch.correct, spans, penalties, batch.offsets)
        ],
    )
    stacked = timed("stack", lambda: torch.stack(rewards))  # equal lengths: no padding needed
    mask = torch.ones_like(stacked)
    timed("group_advantages", lambda: group_advantages(stacked, mask, batch.group_ids))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=1024, help="B, responses in the batch")
    parser.add_argument("--tokens", type=int, default=1024, help="T, tokens per response")
    parser.add_argument("--steps", type=int, default=8, help="S, steps per response")
    parser.add_argument("--critiques", type=int, default=4, help="K, critiques per response")
    parser.add_argument("--group-size", type=int, default=16, help="G, responses per prompt group")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the best time per stage counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    batch = make_batch(args.responses, args.tokens, args.steps, args.critiques, args.group_size, args.seed)
    runs = [run_once(batch) for _ in range(args.repeats)]
    best = {stage: min(run[stage] for run in runs) for stage in runs[0]}
    total_tokens = args.responses * args.tokens
    print(
        f"B={args.responses} T={args.tokens} S={args.steps} K={args.critiques} G={args.group_size}, "
        f"1 thread, best of {args.repeats}"
    )
    print(f"{'stage':<18}{'seconds':>10}{'tokens/s':>16}")
    for stage, seconds in [*best.items(), ("total", sum(best.values()))]:
        print(f"{stage:<18}{seconds:>10.4f}{total_tokens / seconds:>16,.0f}")


if __name__ == "__main__":
    main()
