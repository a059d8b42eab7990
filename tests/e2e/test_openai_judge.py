"""critic=openai for real: a vLLM OpenAI-compatible server (the entrypoint ``vllm serve`` runs)
with SmolLM2 on 127.0.0.1, the fault proxy in front of it, and a short training run of the
tiny policy judged through it.

One server for the whole module (start-up dominates); it is stopped by its PID at the end.
SmolLM2 judges at chance: these tests check the mechanics (requests, n = k, token counts,
failure accounting, deadlines), not the verdicts.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from capo_ray.config.judge_service import OpenAIJudgeConfig
from capo_ray.critics.fault_proxy import FaultProxy
from capo_ray.critics.openai_critic import OpenAICritic
from capo_ray.models.resolve import resolve_model_path

pytestmark = pytest.mark.slow

STARTUP_S = 400  # a loaded 2-core machine; typically 40-90 s
MESSAGES = [
    [{"role": "user", "content": "Problem: Compute 2 + 3.\nStep 1: 2 + 3 = 6\nEnd with: Wrong step list: [...]"}],
    [{"role": "user", "content": "Problem: Compute 4 * 2.\nStep 1: 4 * 2 = 8\nEnd with: Wrong step list: [...]"}],
]
STEPS = [["2 + 3 = 6"], ["4 * 2 = 8"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(server url, proxy) for the module; the server process is stopped by its PID."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", resolve_model_path("smollm2"),
        "--served-model-name", "judge", "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16",
        "--max-model-len", "2048", "--enforce-eager", "--seed", "0", "--max-num-seqs", "16",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    proxy = None
    try:
        deadline = time.monotonic() + STARTUP_S
        while not _ready(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vLLM server did not come up:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        proxy = FaultProxy(upstream=url, retry_after_s=0.5).start()
        yield url, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        # The server and the engine-core process it spawned share its session: signal that group.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def _critic(base_url: str, k: int = 2, **over) -> OpenAICritic:
    settings = dict(base_url=base_url + "/v1", model="judge", max_retries=1, backoff_initial_s=0.1,
                    backoff_max_s=1.0, request_timeout_s=60.0, step_deadline_s=120.0)  # fmt: skip
    settings.update(over)
    return OpenAICritic(OpenAIJudgeConfig(**settings), k=k, temperature=0.7, max_tokens=24)


def test_real_critiques_one_request_with_n_equal_k(served):
    url, proxy = served
    proxy.clear()
    critic = _critic(proxy.url, k=3)
    try:
        results = critic.critique(MESSAGES, STEPS)
    finally:
        critic.shutdown()
    assert proxy.n_asked == [3, 3]  # one request per response carried all k critiques
    for r in results:
        assert r.error is None and not r.failures and len(r.texts) == 3
        assert all(isinstance(t, str) and t for t in r.texts)
        assert r.prompt_tokens > 20 and 3 <= r.completion_tokens <= 3 * 24


@pytest.mark.parametrize(
    "faults, cause",
    [
        (["429", "429"], "rate_limited"),  # max_retries = 1: two 429s exhaust it
        (["500", "500"], "http_error"),
        (["garbage"], "unreadable"),
        (["drop", "drop"], "connection"),
    ],
)
def test_each_fault_abstains_is_counted_and_the_step_ends_in_time(served, faults, cause):
    url, proxy = served
    proxy.clear()
    proxy.queue(*faults)
    # The first response meets the faults; the second goes through to the real server.
    # (A hanging connection: the next test. The real server's answer may take many seconds here.)
    critic = _critic(proxy.url, k=2, max_concurrency=1, request_timeout_s=60.0, step_deadline_s=90.0)
    try:
        start = time.monotonic()
        broken, fine = critic.critique(MESSAGES, STEPS)
        seconds = time.monotonic() - start
    finally:
        critic.shutdown()
    assert broken.texts == [None, None] and broken.failures == {cause: 2} and broken.error.startswith(cause)
    assert fine.error is None and all(fine.texts)
    assert seconds < 90.0


def test_step_deadline_bounds_a_step_whose_requests_all_hang(served):
    url, proxy = served
    proxy.clear()
    proxy.queue("hang", "hang")
    critic = _critic(proxy.url, k=2, request_timeout_s=10.0, step_deadline_s=10.0)
    try:
        start = time.monotonic()
        results = critic.critique(MESSAGES, STEPS)
        seconds = time.monotonic() - start
    finally:
        critic.shutdown()
    assert all(r.failures == {"timeout": 2} for r in results)
    assert seconds < 10.0 + 3.0


def test_short_training_run_judged_by_the_served_model(served, tiny_config, tmp_path):
    from capo_ray.driver.cluster import start_actors
    from capo_ray.driver.trainer import Trainer, write_config
    from capo_ray.models.resolve import load_policy_tokenizer

    url, proxy = served
    proxy.clear()
    proxy.queue("500", "500", "500")  # the first step's first request fails for good (1 retry)
    cfg = tiny_config(
        "critic=openai", "critic.k=2", "critic.max_tokens=24", f"critic.openai.base_url={proxy.url}/v1",
        "critic.openai.max_retries=1", "critic.openai.backoff_initial_s=0.1", "critic.openai.max_concurrency=1",
        "critic.openai.request_timeout_s=60", "critic.openai.step_deadline_s=120", "learner.num_workers=1",
    )  # fmt: skip
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_config(run_dir, cfg)  # as capo_ray.train does before the run
    workers = start_actors(cfg)
    try:
        history = Trainer(cfg, workers, load_policy_tokenizer(cfg.model.path), run_dir).fit()
    finally:
        workers.shutdown()
    assert [row["step"] for row in history] == [0, 1]
    for row in history:
        assert math.isfinite(row["learner/loss"])
        assert row["critic/responses_judged"] > 0 and row["critic/prompt_tokens"] > 0
        assert row["critic/judge_tokens_per_policy_token"] > 0
    first = history[0]
    assert first["critic/failed/http_error"] == 2.0  # one response's k = 2 critiques abstained
    assert first["critic/retries"] >= 1.0
    assert history[1]["critic/failed/http_error"] == 0.0
    saved = (run_dir / "config.json").read_text()
    assert '"api_key_env": null' in saved and "EMPTY" not in saved  # the name of the variable only
