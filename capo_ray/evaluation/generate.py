"""``generate_fn`` adapters (see ``runner.GenerateFn``) for the two places generation runs:
an in-process ``VLLMEngine`` (the CLI) and the trainer's rollout engines."""

from __future__ import annotations

from typing import Any, Callable

from capo_ray.evaluation.runner import GenerateFn


def engine_generate_fn(engine, tokenizer) -> GenerateFn:
    """Generate with a ``capo_ray.workers.vllm_engine.VLLMEngine`` in this process; texts are
    decoded from the sampled ids with special tokens skipped (the engine returns ids only)."""
    from capo_ray.workers.vllm_engine import SamplingSpec

    def generate(prompts: list[list[int]], n: int, temperature: float, max_new_tokens: int) -> list[list[str]]:
        # No logprobs: scoring needs only the text, and they cost a lookup per token.
        spec = SamplingSpec(n=n, temperature=temperature, top_p=1.0, max_tokens=max_new_tokens, logprobs=False)
        outputs = engine.generate(prompts, spec)
        return [[tokenizer.decode(s.token_ids, skip_special_tokens=True) for s in out.samples] for out in outputs]

    return generate


# RolloutWorker.generate's signature: (prompts, n, temperature, top_p, max_new_tokens) ->
# [P lists of n RolloutSample].
RolloutGenerate = Callable[[list[list[int]], int, float, float, int], list[list[Any]]]


def rollout_generate_fn(generate: RolloutGenerate) -> GenerateFn:
    """Adapt a ``RolloutWorker.generate``-shaped callable (one worker, or a driver-side pool
    that splits prompts over its engines and keeps their order) into a ``GenerateFn``."""

    def fn(prompts: list[list[int]], n: int, temperature: float, max_new_tokens: int) -> list[list[str]]:
        groups = generate(prompts, n, temperature, 1.0, max_new_tokens)
        return [[sample.response_text for sample in group] for group in groups]

    return fn
