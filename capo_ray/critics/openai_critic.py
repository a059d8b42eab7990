"""The ``openai`` critic backend: the GenPRM behind any OpenAI-compatible chat endpoint.

Where the 70B-class judge lives on other nodes (``vllm serve``, SGLang) or behind a hosted API,
the trainer talks to it over HTTP. The contract is the other backends' one:
``critique(messages, step_texts) -> list[CritiqueResult]``, K texts per response, a failed
critique as None. On top of it this backend promises that the run never hangs or dies
because of its judge: every request has a deadline, all of a step's requests together have one
(``step_deadline_s``), and every failure abstains and is counted by cause
(``CritiqueResult.failures``), see capo_ray/critics/openai_request.py.

The async client runs on an event loop in one background thread, so the (synchronous) driver
calls ``critique`` like any other backend, and many requests are in flight at once within
``max_concurrency`` and the per-minute limits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections import Counter
from typing import Any

from capo_ray.config.judge_service import OpenAIJudgeConfig
from capo_ray.critics.openai_request import Attempts, JudgeRequestError, request_choices
from capo_ray.critics.rate_limit import JudgeLimits
from capo_ray.records import CritiqueResult

log = logging.getLogger("capo_ray")

CHARS_PER_TOKEN = 4  # a prompt-length estimate for the tokens-per-minute window (no tokenizer here)


def read_api_key(env_name: str | None) -> str:
    """The key from the environment variable the config names. Local servers need none: the
    client still wants a string, and vLLM ignores it."""
    if env_name is None:
        return "EMPTY"
    key = os.environ.get(env_name)
    if not key:
        raise ValueError(f"critic.openai.api_key_env: the environment variable {env_name} is not set or empty")
    return key


class OpenAICritic:
    def __init__(self, cfg: OpenAIJudgeConfig, k: int, temperature: float, max_tokens: int) -> None:
        import openai

        self.cfg, self.k, self.temperature, self.max_tokens = cfg, k, temperature, max_tokens
        # "auto" starts with n = k and falls back to k separate requests for the rest of the
        # run once the server shows it does not honour n (a 400, or fewer choices than asked).
        self.use_n = cfg.sampling in ("auto", "n") and k > 1
        api_key = read_api_key(cfg.api_key_env)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-critic", daemon=True)
        self._thread.start()

        async def setup() -> None:
            # Retries are ours (with the step deadline in view), not the client's.
            self._client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=api_key, max_retries=0)
            self._limits = JudgeLimits(cfg.max_concurrency, cfg.requests_per_minute, cfg.tokens_per_minute)

        asyncio.run_coroutine_threadsafe(setup(), self._loop).result()
        log.info("openai critic: %s model %s, k=%d, sampling %s", cfg.base_url, cfg.model, k, cfg.sampling)

    # -- the backend contract -----------------------------------------------------------------
    def critique(self, messages: list[list[dict[str, str]]], step_texts: list[list[str]]) -> list[CritiqueResult]:
        if not messages:
            return []
        future = asyncio.run_coroutine_threadsafe(self._critique_all(messages), self._loop)
        try:
            # The coroutine enforces the step deadline itself; this is the net under it.
            return future.result(timeout=self.cfg.step_deadline_s + 30)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return [_failed(self.k, "timeout", "step deadline passed") for _ in messages]

    def shutdown(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(timeout=10)
        except Exception:  # noqa: BLE001 - closing is best effort; the loop stops anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    # -- on the loop --------------------------------------------------------------------------
    async def _critique_all(self, messages: list[list[dict[str, str]]]) -> list[CritiqueResult]:
        start = time.monotonic()
        slots = [_Slots(self.k) for _ in messages]
        tasks = [asyncio.ensure_future(self._critique_one(m, s)) for m, s in zip(messages, slots)]
        _, pending = await asyncio.wait(tasks, timeout=self.cfg.step_deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for slot in slots:
            slot.fail_open("timeout")  # whatever is still missing ran into the step deadline
        if pending:
            log.warning("openai critic: step deadline (%.0f s) cut %d of %d requests", self.cfg.step_deadline_s,
                        len(pending), len(tasks))  # fmt: skip
        return [s.result(time.monotonic() - start) for s in slots]

    async def _critique_one(self, messages: list[dict[str, str]], slots: "_Slots") -> None:
        if self.use_n:
            attempts = Attempts()
            slots.attempts.append(attempts)
            try:
                answer = await self._request(messages, self.k, attempts)
                slots.fill(answer.texts[: self.k], answer.prompt_tokens, answer.completion_tokens)
            except JudgeRequestError as err:
                if not (self.cfg.sampling == "auto" and err.status == 400):
                    slots.fail_open(err.cause, str(err))
                    return
                log.warning("openai critic: the server rejected n=%d (%s); sending %d requests of n=1 from now on",
                            self.k, err, self.k)  # fmt: skip
                self.use_n = False
            if slots.missing and self.cfg.sampling == "auto" and self.use_n:
                log.warning("openai critic: asked n=%d, got %d choices; sending n=1 requests from now on",
                            self.k, self.k - slots.missing)  # fmt: skip
                self.use_n = False
        await asyncio.gather(*(self._one_sample(messages, slots) for _ in range(slots.missing)))

    async def _one_sample(self, messages: list[dict[str, str]], slots: "_Slots") -> None:
        attempts = Attempts()
        slots.attempts.append(attempts)
        try:
            answer = await self._request(messages, 1, attempts)
            slots.fill(answer.texts[:1], answer.prompt_tokens, answer.completion_tokens)
        except JudgeRequestError as err:
            slots.fail_one(err.cause, str(err))

    async def _request(self, messages: list[dict[str, str]], n: int, attempts: Attempts):
        c = self.cfg
        estimate = sum(len(m.get("content", "")) for m in messages) / CHARS_PER_TOKEN + n * self.max_tokens
        async with self._limits.slots:
            await self._limits.admit(estimate)
            return await request_choices(
                self._client, model=c.model, messages=messages, n=n, temperature=self.temperature,
                max_tokens=self.max_tokens, timeout_s=c.request_timeout_s, max_retries=c.max_retries,
                backoff_initial_s=c.backoff_initial_s, backoff_max_s=c.backoff_max_s, attempts=attempts,
                extra_body=c.extra_body,
            )  # fmt: skip


class _Slots:
    """The K critique slots of one response, filled as answers arrive. Texts that arrived
    before the step deadline are kept; the rest fail under their cause."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.texts: list[str | None] = []
        self.failures: Counter[str] = Counter()
        self.prompt_tokens = self.completion_tokens = 0
        self.attempts: list[Attempts] = []
        self.error: str | None = None

    @property
    def missing(self) -> int:
        return self.k - len(self.texts)

    def fill(self, texts: list[str | None], prompt_tokens: int, completion_tokens: int) -> None:
        texts = texts[: self.missing]
        self.texts.extend(texts)
        # An empty choice is an answer with nothing to read.
        self.failures["unreadable"] += sum(t is None for t in texts)
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def fail_one(self, cause: str, message: str) -> None:
        if self.missing:
            self.texts.append(None)
            self.failures[cause] += 1
            self.error = self.error or message

    def fail_open(self, cause: str, message: str | None = None) -> None:
        """Fail every slot still open. A request cut by the deadline while it was backing off
        after a 429 or a 5xx counts under that cause, not as a timeout."""
        if not self.missing:
            return
        last = next((a.last_error for a in reversed(self.attempts) if a.last_error is not None), None)
        if cause == "timeout" and last is not None and last.cause in ("rate_limited", "http_error", "connection"):
            cause, message = last.cause, f"{last} (then the step deadline passed)"
        n = self.missing
        self.texts.extend([None] * n)
        self.failures[cause] += n
        self.error = self.error or message or f"{cause}: step deadline passed"

    def result(self, seconds: float) -> CritiqueResult:
        failed_all = all(t is None for t in self.texts)
        return CritiqueResult(
            texts=list(self.texts), prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            error=self.error if failed_all else None, seconds=seconds,
            failures={c: n for c, n in self.failures.items() if n}, retries=sum(a.retries for a in self.attempts),
        )  # fmt: skip


def _failed(k: int, cause: str, message: str) -> CritiqueResult:
    return CritiqueResult(texts=[None] * k, error=f"{cause}: {message}", failures={cause: k})


def make_openai_critic(cfg: Any) -> OpenAICritic:
    """From the trainer's ``CriticConfig`` (k, temperature, max_tokens and ``critic.openai``)."""
    return OpenAICritic(cfg.openai, k=cfg.k, temperature=cfg.temperature, max_tokens=cfg.max_tokens)
