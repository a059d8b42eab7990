"""Benchmark evaluation: greedy pass@1, avg@k and pass@k per benchmark, averaged over benchmarks.

Layout: ``runner.evaluate`` (generation-agnostic core), ``scoring`` (pure metrics), ``results``
(typed records), ``report`` (markdown / JSON / jsonl), ``prompting`` (chat-templated prompt
ids), ``generate`` (``generate_fn`` adapters for a vLLM engine or rollout engines),
``benchmarks`` (problem loading), ``policy`` (model / checkpoint resolution), ``config``
(typed CLI config). The CLI is ``capo_ray.eval``.

None of ``runner``, ``scoring``, ``results`` and ``report`` imports vllm, ray, transformers or
hydra, so the trainer can call ``evaluate`` from its driver.
"""

from capo_ray.evaluation.results import EvalResult, EvalSettings
from capo_ray.evaluation.runner import EncodeFn, GenerateFn, evaluate

__all__ = ["EncodeFn", "EvalResult", "EvalSettings", "GenerateFn", "evaluate"]
