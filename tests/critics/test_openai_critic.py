"""The openai critic against the fault proxy's stand-in judge (no model, no engine: fast).

Each injected fault must end as abstaining critiques counted under its cause, never as an
exception or a hang; retryable ones (429, 500, dropped connections) must be retried and then
succeed when the server recovers.
"""

import time

import pytest

from capo_ray.config.judge_service import OpenAIJudgeConfig
from capo_ray.critics.fault_proxy import FaultProxy
from capo_ray.critics.openai_critic import OpenAICritic, read_api_key
from capo_ray.driver import credit_stage as cs
from capo_ray.driver.records import Steps

MESSAGES = [[{"role": "user", "content": "Judge: Step 1: 2 + 2 = 4"}]]
STEPS = [["2 + 2 = 4"]]
SEGMENTS = [Steps(char_spans=[(0, 9)], token_spans=[(0, 3)], texts=STEPS[0])]


@pytest.fixture(scope="module")
def proxy():
    p = FaultProxy(retry_after_s=0.2).start()
    yield p
    p.stop()


def _critic(proxy, k=2, **over) -> OpenAICritic:
    settings = dict(base_url=proxy.url + "/v1", model="stand-in", max_retries=2, backoff_initial_s=0.05,
                    backoff_max_s=0.5, request_timeout_s=1.0, step_deadline_s=3.0)  # fmt: skip
    settings.update(over)
    return OpenAICritic(OpenAIJudgeConfig(**settings), k=k, temperature=0.7, max_tokens=16)


def _one(proxy, faults, k=2, **over):
    proxy.clear()
    proxy.queue(*faults)
    critic = _critic(proxy, k=k, **over)
    try:
        start = time.monotonic()
        (result,) = critic.critique(MESSAGES, STEPS)
        return result, time.monotonic() - start
    finally:
        critic.shutdown()


def test_one_request_with_n_equal_k(proxy):
    result, _ = _one(proxy, [], k=3)
    assert result.texts == ["Step 1: correct.\nWrong step list: []"] * 3
    assert proxy.n_asked == [3]  # one request carried all k critiques
    assert result.error is None and not result.failures and result.retries == 0
    assert (result.prompt_tokens, result.completion_tokens) == (10, 15)
    (judgement,) = cs.judge([result], SEGMENTS, "majority")
    assert judgement.step_penalty == [0.0]  # goes through the trainer's parse and vote


@pytest.mark.parametrize(
    "faults, retries",
    [(["429"], 1), (["500", "500"], 2), (["drop"], 1)],
    ids=["429-then-ok", "500-twice-then-ok", "dropped-then-ok"],
)
def test_retryable_faults_recover(proxy, faults, retries):
    result, _ = _one(proxy, faults)
    assert result.error is None and all(t is not None for t in result.texts)
    assert result.retries == retries and not result.failures


@pytest.mark.parametrize(
    "faults, cause",
    [
        (["429"] * 3, "rate_limited"),  # max_retries = 2: three 429s exhaust it
        (["500"] * 3, "http_error"),
        (["drop"] * 3, "connection"),
        (["garbage"], "unreadable"),
        (["empty"], "unreadable"),
        (["hang"], "timeout"),
    ],
)
def test_failures_abstain_and_are_counted_by_cause(proxy, faults, cause):
    result, seconds = _one(proxy, faults)
    assert result.texts == [None, None] and result.error is not None
    assert result.failures == {cause: 2}
    assert seconds < 3.0 + 1.0  # within the step deadline (plus client overhead)
    (judgement,) = cs.judge([result], SEGMENTS, "majority")
    assert judgement.abstained  # keeps its outcome credit downstream


def test_retry_after_is_honoured(proxy):
    result, seconds = _one(proxy, ["429"], backoff_initial_s=0.01, backoff_max_s=5.0)
    assert result.error is None and seconds >= 0.2  # waited the server's 0.2 s, not the 0.01 s backoff


def test_step_deadline_cuts_hanging_requests(proxy):
    # Three responses, the second's request hangs past the step deadline (request timeout is
    # longer): the others are kept, the hung one fails as a timeout, and the call returns in time.
    proxy.clear()
    proxy.queue("pass", "hang", "pass")
    critic = _critic(proxy, k=1, request_timeout_s=2.0, step_deadline_s=2.0, max_concurrency=1)
    try:
        start = time.monotonic()
        results = critic.critique(MESSAGES * 3, STEPS * 3)
        seconds = time.monotonic() - start
    finally:
        critic.shutdown()
    assert [r.texts[0] is not None for r in results] == [True, False, False]
    assert results[1].failures == {"timeout": 1} and results[2].failures == {"timeout": 1}
    assert seconds < 2.0 + 1.0


def test_server_without_n_falls_back_to_k_requests():
    p = FaultProxy(reject_n=True).start()
    try:
        critic = _critic(p, k=3)
        try:
            first = critic.critique(MESSAGES, STEPS)[0]
            assert p.n_asked == [3, 1, 1, 1]  # rejected n=3, then three n=1
            p.clear()
            second = critic.critique(MESSAGES, STEPS)[0]
            assert p.n_asked == [1, 1, 1]  # remembered for the rest of the run
        finally:
            critic.shutdown()
    finally:
        p.stop()
    assert first.error is None and len(first.texts) == 3 and all(first.texts)
    assert second.prompt_tokens == 30  # k separate requests each pay for the prompt


def test_separate_sampling_is_k_requests(proxy):
    result, _ = _one(proxy, ["500"], k=2, sampling="separate", max_retries=0)
    # Two requests of n=1: the one that met the 500 (no retries here) failed, the other got through.
    assert sorted(t is None for t in result.texts) == [False, True]
    assert proxy.n_asked == [1, 1]
    assert result.failures == {"http_error": 1} and result.error is None


def test_api_key_from_the_named_env_var(monkeypatch):
    assert read_api_key(None) == "EMPTY"
    monkeypatch.setenv("CAPO_TEST_JUDGE_KEY", "sk-secret")
    assert read_api_key("CAPO_TEST_JUDGE_KEY") == "sk-secret"
    monkeypatch.delenv("CAPO_TEST_JUDGE_KEY")
    with pytest.raises(ValueError, match="CAPO_TEST_JUDGE_KEY is not set") as err:
        read_api_key("CAPO_TEST_JUDGE_KEY")
    assert "sk-secret" not in str(err.value)
