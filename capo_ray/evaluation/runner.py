"""Benchmark evaluation of a policy, independent of where generation runs.

``evaluate`` takes a ``generate_fn`` instead of an engine, so the same code scores a policy
from the CLI (an in-process ``VLLMEngine``, see ``capo_ray.eval``) and from the trainer
(its rollout pool, between steps, on a held-out set). Neither vLLM nor Ray is imported here.

All problems of all benchmarks go to ``generate_fn`` in one call per decoding mode, and all
responses to the verifier in one ``verify_batch`` call, so an engine can batch across
benchmarks (continuous batching needs many requests in flight to be fast).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Mapping, Sequence

from capo_ray.evaluation.results import EvalResult, EvalSettings, ProblemRecord, SampleSet
from capo_ray.evaluation.scoring import score_benchmark
from capo_ray.records import Problem
from capo_ray.rewards.verdict import Verifier

log = logging.getLogger(__name__)

# generate_fn(prompts [P token-id lists], n, temperature, max_new_tokens) -> [P lists of n texts].
# temperature 0 means greedy. The texts are the decoded responses, special tokens skipped.
GenerateFn = Callable[[list[list[int]], int, float, int], list[list[str]]]
# encode(benchmark, problem) -> prompt token ids (see capo_ray.evaluation.prompting).
EncodeFn = Callable[[str, Problem], list[int]]


def check_settings(settings: EvalSettings) -> None:
    if settings.k < 0:
        raise ValueError(f"evaluate: k must be >= 0 (0 turns sampling off), got {settings.k}")
    if not settings.greedy and settings.k == 0:
        raise ValueError("evaluate: nothing to do: greedy is off and k = 0")
    if settings.k > 0 and settings.temperature <= 0:
        # k identical greedy samples would be reported as avg@k: refuse rather than mislabel.
        raise ValueError(f"evaluate: sampling with k = {settings.k} needs temperature > 0")
    if settings.max_new_tokens < 1:
        raise ValueError(f"evaluate: max_new_tokens must be >= 1, got {settings.max_new_tokens}")


def evaluate(
    problems_by_benchmark: Mapping[str, Sequence[Problem]],
    generate_fn: GenerateFn,
    verifier: Verifier,
    encode: EncodeFn,
    settings: EvalSettings,
    model: str = "policy",
) -> EvalResult:
    """Score ``model`` on every benchmark: greedy pass@1 and/or avg@k and pass@k.

    ``problems_by_benchmark``: benchmark name -> its problems (already limited/held out);
    ``verifier``: any ``capo_ray.rewards`` verifier (the caller owns and closes it).
    """
    check_settings(settings)
    empty = [name for name, problems in problems_by_benchmark.items() if not problems]
    if not problems_by_benchmark or empty:
        raise ValueError(f"evaluate: no problems for benchmarks {empty or '(none given)'}")
    items = [(bench, p) for bench, problems in problems_by_benchmark.items() for p in problems]
    prompts = [list(encode(bench, p)) for bench, p in items]
    references = [p.answer for _, p in items]
    greedy = sampled = None
    if settings.greedy:
        greedy = _run_mode(prompts, references, generate_fn, verifier, 1, 0.0, settings.max_new_tokens)
    if settings.k > 0:
        sampled = _run_mode(
            prompts, references, generate_fn, verifier, settings.k, settings.temperature, settings.max_new_tokens
        )
    records: dict[str, list[ProblemRecord]] = {name: [] for name in problems_by_benchmark}
    for i, (bench, p) in enumerate(items):
        records[bench].append(
            ProblemRecord(
                benchmark=bench,
                uid=p.uid,
                source=p.source,
                question=p.question,
                reference=p.answer,
                greedy=greedy[i] if greedy is not None else None,
                sampled=sampled[i] if sampled is not None else None,
            )
        )
    scores = {bench: score_benchmark(bench, recs) for bench, recs in records.items()}
    return EvalResult(model=model, settings=settings, scores=scores, problems=records)


def _run_mode(
    prompts: list[list[int]],
    references: list[str],
    generate_fn: GenerateFn,
    verifier: Verifier,
    n: int,
    temperature: float,
    max_new_tokens: int,
) -> list[SampleSet]:
    """Generate n responses per prompt, verify them all in one batch, regroup per problem."""
    started = time.monotonic()
    texts = generate_fn(prompts, n, temperature, max_new_tokens)
    generated = time.monotonic()
    if len(texts) != len(prompts) or any(len(group) != n for group in texts):
        sizes = sorted({len(group) for group in texts})
        raise ValueError(
            f"generate_fn returned {len(texts)} groups of sizes {sizes} for {len(prompts)} prompts x n = {n}"
        )
    flat = [text for group in texts for text in group]
    verdicts = verifier.verify_batch(flat, [ref for ref in references for _ in range(n)])
    if len(verdicts) != len(flat):
        raise ValueError(f"verifier returned {len(verdicts)} verdicts for {len(flat)} responses")
    log.info(
        "%d prompts x n = %d at temperature %g: generated in %.1f s, verified in %.1f s",
        len(prompts), n, temperature, generated - started, time.monotonic() - generated,
    )
    out = []
    for i, group in enumerate(texts):
        vs = verdicts[i * n : (i + 1) * n]
        out.append(
            SampleSet(
                responses=list(group),
                extracted=[v.extracted for v in vs],
                statuses=[v.status for v in vs],
                correct=[v.correct for v in vs],
            )
        )
    return out
