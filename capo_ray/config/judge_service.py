"""Typed sections of ``critic.*`` for judges outside the cluster and for judge cost control:
``critic.openai`` (any OpenAI-compatible chat-completions endpoint), and ``critic.hybrid`` (the
exact arithmetic checker voting with an LLM critic).

docs/judge-service.md explains each knob and the failure accounting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from capo_ray.config.strict import ConfigError, check


def check_prompt_template(path: str | None, key: str) -> None:
    """Load the template once at config time, so a bad file fails before any actor starts."""
    if path is None:
        return
    from capo_ray.critics.prompt_template import PromptTemplate

    try:
        PromptTemplate.load(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{key}: {err}") from None


@dataclass
class OpenAIJudgeConfig:
    """An OpenAI-compatible server (``vllm serve``, SGLang, a hosted API) as the GenPRM.

    The API key is read at start-up from the environment variable ``api_key_env`` names; only
    that name is ever stored (config.json) or logged, never the key.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "judge"  # the served model name the server expects in each request
    api_key_env: str | None = None  # e.g. OPENAI_API_KEY; null: no key (local servers)
    # n: one request with n = k per response; separate: k requests with n = 1; auto: n = k
    # until the server rejects n > 1 (or returns fewer choices), then separate for the run.
    sampling: Literal["auto", "n", "separate"] = "auto"
    max_concurrency: int = 16  # requests in flight at once
    requests_per_minute: int = 0  # 0: no limit
    tokens_per_minute: int = 0  # prompt + max completion tokens, estimated before sending; 0: no limit
    max_retries: int = 4  # on 429, 5xx and connection errors (not on timeouts or unreadable answers)
    backoff_initial_s: float = 0.5  # exponential backoff with full jitter, starting here
    backoff_max_s: float = 30.0  # the longest wait between two tries (Retry-After too)
    request_timeout_s: float = 120.0  # one HTTP request, connect to last byte
    step_deadline_s: float = 900.0  # all of a step's critique requests, retries included
    extra_body: dict[str, str] | None = None  # passed through to the server (e.g. vLLM's top_k)

    def __post_init__(self) -> None:
        p = "critic.openai"
        check(self.base_url.startswith(("http://", "https://")), f"{p}.base_url: must start with http:// or https://")
        check(bool(self.model), f"{p}.model: name the served model")
        check(self.api_key_env is None or bool(self.api_key_env.strip()), f"{p}.api_key_env: empty; use null for no key")
        check(self.max_concurrency >= 1, f"{p}.max_concurrency: must be >= 1")
        check(self.requests_per_minute >= 0, f"{p}.requests_per_minute: must be >= 0 (0: no limit)")
        check(self.tokens_per_minute >= 0, f"{p}.tokens_per_minute: must be >= 0 (0: no limit)")
        check(self.max_retries >= 0, f"{p}.max_retries: must be >= 0")
        check(0 < self.backoff_initial_s <= self.backoff_max_s, f"{p}.backoff_initial_s: need 0 < backoff_initial_s <= backoff_max_s")
        check(self.request_timeout_s > 0, f"{p}.request_timeout_s: must be > 0")
        check(self.step_deadline_s >= self.request_timeout_s, f"{p}.step_deadline_s: must be >= request_timeout_s")


@dataclass
class HybridConfig:
    """``critic=hybrid``: the exact arithmetic checker and an LLM critic on the same responses.

    ``voter``: the checker's verdict joins the LLM's k verdicts as ``checker_votes`` more
    voters. ``veto``: on a step whose arithmetic the checker can check, its verdict replaces
    the vote (an exact tool overrules sampled opinions there); other steps keep the LLM vote.
    """

    llm: Literal["openai", "llm"] = "openai"  # which LLM critic backend joins the checker
    mode: Literal["voter", "veto"] = "veto"
    checker_votes: int = 1  # voter mode: how many voters the checker counts as

    def __post_init__(self) -> None:
        check(self.checker_votes >= 1, "critic.hybrid.checker_votes: must be >= 1")
