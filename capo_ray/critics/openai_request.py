"""One chat-completions request to an OpenAI-compatible judge, with retries, classified failures.

Every way a request can fail maps to one cause (``FAILURE_CAUSES``), so the step metrics can
say *why* critiques abstained: a judge that rate-limits needs a lower ``requests_per_minute``,
one that times out a longer deadline or more capacity, one that answers garbage a fix on the
server. 429, 5xx and connection errors are retried with exponential backoff and full jitter,
and a server's ``Retry-After`` is honoured (capped by ``backoff_max_s``). A timeout is not
retried: the server already held the request for ``request_timeout_s``, and the step deadline
is the budget for everything. An unreadable answer is not retried either (a server that sends
garbage once tends to send it again).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from capo_ray.records import FAILURE_CAUSES

__all__ = ["FAILURE_CAUSES", "JudgeRequestError", "classify", "request_choices"]


class JudgeRequestError(Exception):
    """A failed request, with its cause and, for 429/503, the server's Retry-After in seconds."""

    def __init__(
        self, cause: str, message: str, retryable: bool = False, retry_after: float | None = None,
        status: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(f"{cause}: {message}")
        self.cause, self.retryable, self.retry_after, self.status = cause, retryable, retry_after, status


@dataclass
class Attempts:
    """What one logical request went through: filled in as it goes, so a request cancelled by
    the step deadline still reports its last cause and its retries."""

    retries: int = 0
    last_error: JudgeRequestError | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def retry_after_s(headers: Any) -> float | None:
    """Seconds a 429/503 asks us to wait: ``retry-after-ms``, ``retry-after`` (seconds or an
    HTTP date), or None when absent or unreadable."""
    if headers is None:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def classify(exc: BaseException) -> JudgeRequestError:
    """Map a client exception to a cause. Messages never include request headers (the key)."""
    if isinstance(exc, JudgeRequestError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return JudgeRequestError("timeout", "no complete answer within request_timeout_s")
    if isinstance(exc, openai.APIConnectionError):
        return JudgeRequestError("connection", f"{type(exc.__cause__ or exc).__name__}: {exc}"[:300], retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        after = retry_after_s(getattr(exc.response, "headers", None))
        if status == 429:
            return JudgeRequestError("rate_limited", "HTTP 429", retryable=True, retry_after=after, status=status)
        return JudgeRequestError(
            "http_error", f"HTTP {status}: {str(exc)[:200]}", retryable=status >= 500, retry_after=after, status=status
        )
    if isinstance(exc, (openai.APIResponseValidationError, ValueError, TypeError, AttributeError, KeyError)):
        # Garbage JSON raises a JSONDecodeError (a ValueError) inside the client.
        return JudgeRequestError("unreadable", f"{type(exc).__name__}: {str(exc)[:200]}")
    return JudgeRequestError("connection", f"{type(exc).__name__}: {str(exc)[:200]}", retryable=True)


@dataclass(frozen=True)
class Answer:
    texts: list[str | None]  # one per choice; None for an empty choice
    prompt_tokens: int
    completion_tokens: int


def read_answer(response: Any) -> Answer:
    """The choices' texts and the usage of a chat completion, or ``unreadable``. The client
    returns a plain str when the server's content type is not JSON, and builds objects
    without validation, so every field is checked here."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise JudgeRequestError("unreadable", f"no choices in the answer ({type(response).__name__})")
    texts = []
    for choice in sorted(choices, key=lambda c: getattr(c, "index", 0) or 0):
        content = getattr(getattr(choice, "message", None), "content", None)
        texts.append(content if isinstance(content, str) and content.strip() else None)
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", 0)
    completion = getattr(usage, "completion_tokens", 0)
    return Answer(texts, prompt if isinstance(prompt, int) else 0, completion if isinstance(completion, int) else 0)


def _wait(initial: float, cap: float):
    jitter = wait_random_exponential(multiplier=initial, max=cap)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        return min(cap, after) if after is not None else jitter(state)

    return wait


async def request_choices(
    client: Any,
    *,
    model: str,
    messages: list[dict[str, str]],
    n: int,
    temperature: float,
    max_tokens: int,
    timeout_s: float,
    max_retries: int,
    backoff_initial_s: float,
    backoff_max_s: float,
    attempts: Attempts,
    extra_body: dict[str, Any] | None = None,
) -> Answer:
    """One logical request (retried as configured); raises ``JudgeRequestError`` when it fails."""

    async def once() -> Answer:
        try:
            response = await client.chat.completions.create(
                model=model, messages=messages, n=n, temperature=temperature, max_tokens=max_tokens,
                timeout=timeout_s, extra_body=extra_body,
            )  # fmt: skip
            return read_answer(response)
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes raw
            attempts.last_error = classify(exc)
            raise attempts.last_error from None

    def before_sleep(state: RetryCallState) -> None:
        attempts.retries += 1

    retrying = AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, JudgeRequestError) and e.retryable),
        stop=stop_after_attempt(max_retries + 1),
        wait=_wait(backoff_initial_s, backoff_max_s),
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(once)
