"""The GenPRM critic served by vLLM (``CriticWorker``) and a pool that spreads requests over
several critic actors with a deadline (``CriticPool``).

docs/algorithm.md: each response is critiqued k times in ONE request with n = k, so the (long) critique
prompt is prefilled once; a failed or timed-out critique abstains (texts of None plus an error)
and is counted upstream, it never turns into a reward of 0 here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from capo_ray.records import CritiqueResult
from capo_ray.workers.vllm_engine import EngineConfig, SamplingSpec, VLLMEngine


def _failed(k: int, error: str, seconds: float = 0.0) -> CritiqueResult:
    return CritiqueResult(texts=[None] * k, error=error, seconds=seconds)


class CriticWorker:
    """A frozen instruct LLM judging steps. Wrap with ``ray.remote`` (one engine per actor).

    The critic's own chat template and tokenizer are used: they may differ from the policy's
    (the critic only ever sees text).
    """

    def __init__(self, cfg: EngineConfig) -> None:
        if cfg.worker_extension_cls:
            raise ValueError("the critic is frozen: it takes no worker_extension_cls")
        self.engine = VLLMEngine(cfg)
        self.tokenizer = self.engine.tokenizer()

    def encode(self, messages: list[dict]) -> list[int]:
        # Render to text, then encode without special tokens: the template already holds them.
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def critique(
        self, prompts: list[list[dict]], k: int, temperature: float, max_tokens: int, top_p: float = 1.0
    ) -> list[CritiqueResult]:
        """k critiques for each chat prompt [P prompts -> P results], in order.

        ``seconds`` of a result is its share of the engine's wall time, split by tokens
        (prompt + completion) so that summing over results gives the total critic time.
        Never raises for a bad request: that request's result carries ``error``.
        """
        spec = SamplingSpec(n=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens, logprobs=False)
        encoded: list[list[int] | str] = []
        for messages in prompts:
            try:
                encoded.append(self.encode(messages))
            except Exception as e:  # noqa: BLE001 - e.g. a template rejecting the roles
                encoded.append(f"chat template failed: {type(e).__name__}: {e}")
        ok = [i for i, e in enumerate(encoded) if isinstance(e, list)]
        results = {i: _failed(k, e) for i, e in enumerate(encoded) if isinstance(e, str)}
        start = time.perf_counter()
        try:
            outs = self.engine.generate([encoded[i] for i in ok], spec)
            results.update({i: self._result(encoded[i], out) for i, out in zip(ok, outs)})
        except Exception:  # noqa: BLE001 - one bad request fails the batch: isolate it
            results.update(self._one_by_one(ok, encoded, spec))
        _share_seconds([results[i] for i in ok], time.perf_counter() - start)
        return [results[i] for i in range(len(prompts))]

    def _one_by_one(self, ok: list[int], encoded: list, spec: SamplingSpec) -> dict[int, CritiqueResult]:
        results = {}
        for i in ok:
            try:
                results[i] = self._result(encoded[i], self.engine.generate([encoded[i]], spec)[0])
            except Exception as e:  # noqa: BLE001 - this request abstains, the rest go on
                results[i] = _failed(spec.n, f"{type(e).__name__}: {e}")
                results[i].prompt_tokens = len(encoded[i])
        return results

    def _result(self, prompt_ids: list[int], out) -> CritiqueResult:
        texts = [self.tokenizer.decode(s.token_ids, skip_special_tokens=True) for s in out.samples]
        completion = sum(len(s.token_ids) for s in out.samples)
        return CritiqueResult(texts=texts, prompt_tokens=len(prompt_ids), completion_tokens=completion)


def _share_seconds(results: list[CritiqueResult], seconds: float) -> None:
    results = [r for r in results if r.error is None]  # rejected requests cost no compute
    tokens = [r.prompt_tokens + r.completion_tokens for r in results]
    total = sum(tokens)
    for r, t in zip(results, tokens):
        r.seconds = seconds * t / total if total else seconds / max(1, len(results))


class CriticPool:
    """Spreads critique requests over several ``CriticWorker`` actor handles.

    Prompts are cut into contiguous chunks, dealt round-robin to the handles, and collected
    until a deadline: a chunk that is late or whose actor died comes back as error results,
    never a hang. By default (``max_chunk=None``) each engine gets ONE chunk with all of its
    share, so every request of the step is in flight at once and vLLM batches them all: small
    chunks in series would leave a 70B engine mostly idle between calls, and at 1024 x 4
    critiques the late chunks would meet the deadline and abstain en masse. ``max_chunk`` caps
    the chunk size (a dead engine then costs less, at the price of serial calls).
    """

    def __init__(self, handles: Sequence[Any], max_chunk: int | None = None) -> None:
        if not handles or (max_chunk is not None and max_chunk < 1):
            raise ValueError("CriticPool needs at least one handle and max_chunk >= 1 (or None)")
        self.handles, self.max_chunk = list(handles), max_chunk
        self._next = 0  # round-robin cursor, kept across calls to even out the load

    def critique(
        self, prompts: list[list[dict]], k: int, temperature: float, max_tokens: int, timeout_s: float
    ) -> list[CritiqueResult]:
        import ray

        per_handle = -(-len(prompts) // len(self.handles)) if prompts else 1
        size = max(1, per_handle if self.max_chunk is None else min(self.max_chunk, per_handle))
        chunks = [(lo, min(lo + size, len(prompts))) for lo in range(0, len(prompts), size)]
        refs = {}
        for lo, hi in chunks:
            handle = self.handles[self._next % len(self.handles)]
            self._next += 1
            refs[handle.critique.remote(prompts[lo:hi], k, temperature, max_tokens)] = (lo, hi)
        start = time.monotonic()
        ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        results: list[CritiqueResult | None] = [None] * len(prompts)
        for ref in ready:
            lo, hi = refs[ref]
            results[lo:hi] = self._collect(ref, hi - lo, k)
        for ref in late:
            lo, hi = refs[ref]
            # Drops the task if still queued; Ray never interrupts a running sync-actor task, so
            # the engine is not left with half-run requests.
            ray.cancel(ref)
            waited = time.monotonic() - start
            results[lo:hi] = [_failed(k, f"critic timeout after {timeout_s:.0f} s", waited) for _ in range(hi - lo)]
        return results  # type: ignore[return-value]

    @staticmethod
    def _collect(ref, n: int, k: int) -> list[CritiqueResult]:
        import ray

        try:
            out = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a dead or crashed critic abstains
            cause = getattr(e, "cause", None) or e  # RayTaskError wraps the actor's exception
            return [_failed(k, f"critic failed: {type(cause).__name__}: {str(cause)[:300]}") for _ in range(n)]
        if len(out) != n:
            return [_failed(k, f"critic returned {len(out)} results for {n} prompts") for _ in range(n)]
        return out
