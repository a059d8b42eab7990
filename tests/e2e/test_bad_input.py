"""Bad input fails fast with a clear message, and a garbage-speaking critic never stops a run."""

import json
import time

import pytest
import ray

from capo_ray.driver.cluster import start_actors
from capo_ray.driver.placement import ResourceError
from capo_ray.train import run
from capo_ray.data.datasets import find_data_dir

pytestmark = pytest.mark.slow


def test_impossible_resources_fail_fast_before_any_actor(tiny_config):
    cfg = tiny_config("cluster.learner_cpus=64")
    start = time.monotonic()
    with pytest.raises(ResourceError) as err:
        start_actors(cfg)
    assert "CPU: the plan needs" in str(err.value)
    assert "learner" in str(err.value)
    assert time.monotonic() - start < 120  # Ray start-up only: no actor was waited for
    assert not ray.is_initialized()  # the Ray it started is shut down again


def test_garbage_critic_abstains_and_the_run_continues(tiny_config):
    # The tiny random model as GenPRM writes garbage: no verdict parses, every critique
    # abstains, each response falls back to outcome credit, and training goes on.
    # and, where the datasets are present, a held-out eval through the synced engines, which
    # must not disturb the run
    with_eval = find_data_dir() is not None
    evals = ["trainer.eval_every=1", "trainer.eval_benchmarks=[gsm8k_test]", "trainer.eval_limit=2",
             "trainer.eval_max_new_tokens=8", "data.few_shot=false"] if with_eval else []
    cfg = tiny_config("critic=llm", "critic.model_path=tiny", "critic.k=2", "critic.max_tokens=16",
                      "critic.engine.max_model_len=1024", "critic.engine.dtype=float32", "trainer.steps=1",
                      "cluster.critic_cpus=0.25", *evals)
    run_dir = run(cfg)
    (row,) = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert row["critic/responses_judged"] == 4
    assert row["critic/critiques_per_response"] == 2
    assert row["critic/parse_rate"] < 0.5
    assert row["critic/abstain_rate"] > 0.5
    assert row["critic/prompt_tokens"] > 0 and row["critic/completion_tokens"] > 0
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert all(len(s["critiques"]) == 2 for s in samples)
    assert (run_dir / "report.md").exists()
    if not with_eval:
        return
    assert "eval/gsm8k_test/pass@1" in row and 0.0 <= row["eval/gsm8k_test/pass@1"] <= 1.0
    assert (run_dir / "eval" / "step_000000" / "results.md").exists()
