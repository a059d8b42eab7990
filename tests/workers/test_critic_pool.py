"""CriticPool over several real vLLM critic actors (the tiny random model, CPU): each actor gets
its share of a step's prompts as ONE batch, all actors work at the same time, and a deadline
holds: the share of an actor that is still busy abstains (counted as timeout results) while
the others' critiques are kept, and the call returns within the deadline plus a small constant."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from capo_ray.config.engine import EngineSettings
from capo_ray.driver.metrics import critic_metrics
from capo_ray.driver.records import Judgement
from capo_ray.models.tiny import tiny_model_path
from capo_ray.workers.critic_llm import CriticPool, CriticWorker
from capo_ray.workers.vllm_engine import EngineConfig, engine_env

pytestmark = pytest.mark.slow

REPO = str(Path(__file__).resolve().parents[2])
ACTORS = 2


class TimedCritic(CriticWorker):
    """The real critic, also recording (wall-clock start, end, prompts) of every call."""

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(cfg)
        self.calls: list[tuple[float, float, int]] = []

    def critique(self, prompts, k, temperature, max_tokens, top_p=1.0):
        start = time.time()
        try:
            return super().critique(prompts, k, temperature, max_tokens, top_p)
        finally:
            self.calls.append((start, time.time(), len(prompts)))

    def take_calls(self) -> list[tuple[float, float, int]]:
        calls, self.calls = self.calls, []
        return calls


def _prompt(i: int) -> list[dict]:
    return [{"role": "system", "content": "Check each step."},
            {"role": "user", "content": f"Problem: {i} + {i} = ?\nStep 1: {i} + {i} = {2 * i}"}]  # fmt: skip


@pytest.fixture(scope="module")
def critics():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # TimedCritic lives here
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": REPO}})  # fmt: skip
    try:
        settings = EngineSettings(max_model_len=1024, kv_cache_gib=0.25)  # the tiny model's context
        env = {**engine_env("cpu"), "PYTHONPATH": REPO}
        handles = [
            ray.remote(num_cpus=0.5)(TimedCritic).options(runtime_env={"env_vars": env})
            .remote(EngineConfig(model=str(tiny_model_path()), seed=i, settings=settings))
            for i in range(ACTORS)
        ]  # fmt: skip
        ray.get([h.__ray_ready__.remote() for h in handles])  # start-up is not timed
        yield ray, handles
    finally:
        ray.shutdown()


def test_each_actor_gets_its_share_as_one_batch_all_in_flight_at_once(critics):
    ray, handles = critics
    prompts = [_prompt(i) for i in range(6)]
    results = CriticPool(handles).critique(prompts, k=2, temperature=1.0, max_tokens=48, timeout_s=120)
    assert [r.error for r in results] == [None] * 6
    assert all(len(r.texts) == 2 and r.completion_tokens > 0 and r.seconds > 0 for r in results)
    calls = [ray.get(h.take_calls.remote()) for h in handles]
    assert [[n for _s, _e, n in c] for c in calls] == [[3], [3]]  # one call of 3 prompts per actor
    (a_start, a_end, _), (b_start, b_end, _) = calls[0][0], calls[1][0]
    assert a_start < b_end and b_start < a_end, calls  # the two batches overlapped in time


def test_a_busy_actor_share_abstains_at_the_deadline_and_the_rest_is_kept(critics):
    ray, handles = critics
    # Actor 1 is still busy (a straggler, or a previous step's late batch: Ray cannot interrupt
    # a running call), with far more work than the deadline: 32 x 8 critiques of 900 tokens.
    busy = handles[1].critique.remote([_prompt(i) for i in range(32)], 8, 1.0, 900)
    time.sleep(1.0)  # let it start
    deadline = 15.0
    prompts = [_prompt(i) for i in range(4)]
    start = time.monotonic()
    results = CriticPool(handles).critique(prompts, k=2, temperature=1.0, max_tokens=8, timeout_s=deadline)
    elapsed = time.monotonic() - start
    assert elapsed < deadline + 3.0, elapsed  # the busy actor was not waited for
    ok = [r for r in results if r.error is None]
    late = [r for r in results if r.error is not None]
    assert len(ok) == 2 and all(len(r.texts) == 2 and r.texts[0] is not None for r in ok)  # actor 0's share
    assert len(late) == 2 and all(r.texts == [None, None] and "critic timeout" in r.error for r in late)
    assert all(r.seconds >= deadline - 0.5 for r in late)  # the time a late request cost is counted
    assert not ray.wait([busy], timeout=0)[0], "the busy batch finished early: the test proved nothing"
    # Counted by the step metrics as the trainer reports them.
    judged = [Judgement(r, [None if t is None else frozenset() for t in r.texts],
                        None if r.error else [0.0]) for r in results]  # fmt: skip
    metrics = critic_metrics([], judged, policy_tokens=100)
    assert metrics["critic/failed_requests"] == 2 and metrics["critic/failed_critiques"] == 4
    assert metrics["critic/abstain_rate"] == 0.5 and metrics["critic/critiques_per_engine_s"] > 0
