"""CriticWorker on SmolLM2 (k critiques in one n=k request, token counts, time shares), an
over-long prompt that abstains instead of raising, and CriticPool turning slow or crashing
critic actors into error results before its deadline."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from capo_ray.models.smollm2 import smollm2_path
from capo_ray.records import CritiqueResult
from capo_ray.config.engine import EngineSettings
from capo_ray.workers.vllm_engine import EngineConfig, engine_env

pytestmark = pytest.mark.slow

REPO = str(Path(__file__).resolve().parents[2])
ENGINE_ENV = {**engine_env("cpu"), "PYTHONPATH": REPO}
MAX_MODEL_LEN = 512
SYSTEM = "You check math solutions step by step. End with 'Wrong step list: [...]'."


def critique_prompt(question: str, steps: list[str]) -> list[dict]:
    numbered = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Problem: {question}\n{numbered}"}]


PROMPTS = [
    critique_prompt("What is 3 + 4 * 5?", ["4 * 5 = 20", "3 + 20 = 23", "The answer is 23."]),
    critique_prompt("What is 7 - 2?", ["7 - 2 = 6", "The answer is 6."]),
    critique_prompt("What is 6 / 3?", ["6 / 3 = 2", "The answer is 2."]),
]


class SlowCritic:
    """Stands in for a critic that hangs (or crashes) so the pool's deadline can be tested."""

    def __init__(self, delay_s: float, crash: bool = False) -> None:
        self.delay_s, self.crash = delay_s, crash

    def critique(self, prompts, k, temperature, max_tokens):
        if self.crash:
            raise RuntimeError("critic engine died")
        time.sleep(self.delay_s)
        return [CritiqueResult(texts=["late"] * k) for _ in prompts]


@pytest.fixture(scope="module")
def ray_critic():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    from capo_ray.workers.critic_llm import CriticWorker

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # SlowCritic lives here
    ray.init(
        address="local",  # a fresh cluster even when another one runs on this machine
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": REPO}},
    )
    try:
        cfg = EngineConfig(
            model=str(smollm2_path()), seed=0, settings=EngineSettings(max_model_len=MAX_MODEL_LEN, kv_cache_gib=0.25)
        )
        critic = ray.remote(num_cpus=1)(CriticWorker).options(runtime_env={"env_vars": ENGINE_ENV}).remote(cfg)
        ray.get(critic.__ray_ready__.remote())
        yield ray, critic
    finally:
        ray.shutdown()


def test_k_critiques_per_prompt_with_counts(ray_critic):
    ray, critic = ray_critic
    results = ray.get(critic.critique.remote(PROMPTS, k=2, temperature=1.0, max_tokens=24))
    assert len(results) == len(PROMPTS)
    for r in results:
        assert r.error is None
        assert len(r.texts) == 2 and all(isinstance(t, str) and t for t in r.texts)
        assert r.prompt_tokens > 20  # system + numbered steps, prefilled once for both samples
        assert 2 <= r.completion_tokens <= 2 * 24
        assert r.seconds > 0


def test_overlong_prompt_abstains_and_others_survive(ray_critic):
    ray, critic = ray_critic
    long_prompt = critique_prompt("What is 1 + 1?", ["1 + 1 = 2"] * 150)  # ~1,300 tokens > 512
    results = ray.get(critic.critique.remote([PROMPTS[0], long_prompt, PROMPTS[1]], k=2, temperature=1.0, max_tokens=16))
    assert [r.error is None for r in results] == [True, False, True]
    bad = results[1]
    assert bad.texts == [None, None] and bad.completion_tokens == 0
    assert "maximum context length" in bad.error, bad.error
    assert bad.prompt_tokens > MAX_MODEL_LEN and bad.seconds == 0.0
    assert all(len(r.texts) == 2 and r.texts[0] for r in (results[0], results[2]))


def test_pool_deadline_and_crashes_become_error_results(ray_critic):
    ray, critic = ray_critic
    from capo_ray.workers.critic_llm import CriticPool

    slow = ray.remote(num_cpus=0)(SlowCritic).remote(delay_s=300)
    dead = ray.remote(num_cpus=0)(SlowCritic).remote(delay_s=0, crash=True)
    ray.get([slow.__ray_ready__.remote(), dead.__ray_ready__.remote()])  # start-up is not timed
    pool = CriticPool([critic, slow, dead], max_chunk=1)
    start = time.monotonic()
    # The deadline leaves the real critic ample time on a loaded 2-core machine (one 8-token
    # request takes ~1 s idle) while staying far below the slow critic's 300 s.
    results = pool.critique(PROMPTS, k=2, temperature=1.0, max_tokens=8, timeout_s=45)
    assert time.monotonic() - start < 90  # the 300 s critic was not waited for
    # Chunks of one prompt dealt round-robin: prompt 0 -> real critic, 1 -> slow, 2 -> dead.
    assert results[0].error is None and len(results[0].texts) == 2
    assert results[1].texts == [None, None] and "timeout" in results[1].error
    assert results[2].texts == [None, None] and "critic engine died" in results[2].error
    ray.kill(slow)
    ray.kill(dead)


class StandInCritic(SlowCritic):
    """A critic actor without an engine, built from the EngineConfig a CriticWorker takes: the
    replacement path below needs a real Ray actor, not a second vLLM engine start."""

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(delay_s=0)


def test_a_dead_critic_actor_fails_the_step_and_is_replaced_where_it_ran(ray_critic, monkeypatch):
    """``Actors.critique``: the pool abstains for a dead critic engine, the driver raises
    ActorLostError instead (the step is then redone); ``Actors.replace`` starts it again."""
    ray, _ = ray_critic
    import capo_ray.workers.critic_llm as critic_llm
    from capo_ray.config.compose import compose_config
    from capo_ray.critics.llm_pool import LLMCriticPool
    from capo_ray.driver.actors import Actors
    from capo_ray.driver.recovery import ActorLostError

    monkeypatch.setattr(critic_llm, "CriticWorker", StandInCritic)
    cfg = compose_config(["critic=llm", "critic.num_engines=2", "critic.k=2", "cluster.critic_cpus=0.01"])
    actors = Actors(cfg, groups=None, owns_ray=False)
    actors.critic = LLMCriticPool.start(cfg, groups=None)
    try:
        steps = [["a step"]] * len(PROMPTS)
        assert all(r.error is None for r in actors.critique(PROMPTS, steps)) and actors.dead_actors() == []
        first = actors.critic.handles[0]
        ray.kill(actors.critic.handles[1])
        with pytest.raises(ActorLostError, match=r"critic engine\(s\) \[1\] died"):
            actors.critique(PROMPTS, steps)
        assert actors.dead_actors() == [("critic", 1)]
        actors.replace("critic", 1)
        assert actors.dead_actors() == [] and actors.critic.handles[0] is first  # the survivor kept
        assert actors.critic.pool.handles == actors.critic.handles
        results = actors.critique(PROMPTS, steps)
        assert all(r.error is None and r.texts == ["late", "late"] for r in results)
    finally:
        actors.critic.shutdown()
