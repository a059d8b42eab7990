"""Config composition and strict validation: every mistake fails before any actor starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from capo_ray.config import ConfigError, load_config
from capo_ray.config.compose import CONF_DIR, compose_config, compose_dict
from capo_ray.driver.placement import plan_resources, totals

PROFILES = sorted(p.stem for p in (CONF_DIR / "cluster").glob("*.yaml"))


def test_default_is_the_cpu_capo_demo():
    cfg = compose_config()
    assert cfg.algo.name == "capo" and cfg.critic.backend == "arith"
    assert cfg.cluster.device == "cpu" and cfg.model.path == "smollm2"


def test_yaml_mirrors_every_dataclass_field():
    # A group YAML that forgets a field would hide a knob from `--cfg job`; one with an extra
    # field would fail to load. Both directions are checked here.
    data = compose_dict()
    cfg = load_config(data)
    for group in ("model", "rollout", "algo", "learner", "data", "cluster", "logging", "trainer"):
        assert set(data[group]) == set(vars(getattr(cfg, group))), group
    # critic YAMLs list only the knobs of their backend (arith has no engine settings)
    assert set(data["critic"]) <= set(vars(cfg.critic))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("algo", ["capo", "grpo"])
def test_every_cluster_profile_composes_and_its_plan_adds_up(profile, algo):
    cfg = compose_config([f"cluster={profile}", f"algo={algo}"])
    need = totals(plan_resources(cfg))
    if profile == "cpu":
        assert need["GPU"] == 0 and need["CPU"] <= 2.0  # fits the 2-core development machine
    else:
        assert cfg.cluster.device == "cuda"
        nodes = {"gpu_1node": 1, "gpu_2node": 2}[profile]
        # the GPU profiles are sized to fill whole 8-GPU nodes with a capo critic
        expected = nodes * 8 - (0 if algo == "capo" else cfg.critic.num_engines * cfg.critic.engine.tensor_parallel_size)
        assert need["GPU"] == expected


def test_grpo_is_one_override_and_skips_the_critic():
    cfg = compose_config(["algo=grpo"])
    assert cfg.algo.name == "grpo"
    assert all(p.role != "critic" for p in plan_resources(compose_config(["algo=grpo", "critic=llm"])))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+critic.vote_rule=x"], "unknown key 'vote_rule' (did you mean 'vote'?)"),
        (["+bogus=1"], "unknown key 'bogus'"),
        (["critic.vote=best"], "critic.vote: 'best' is not one of"),
        (["critic.k=abc"], "critic.k: expected an integer"),
        (["critic.k=0"], "critic.k: must be >= 1"),
        (["rollout.n_samples=1"], "rollout.n_samples"),
        (["learner.zero_stage=4"], "learner.zero_stage: 4 is not one of"),
        (["learner.num_workers=3"], "divide evenly across learner.num_workers = 3"),
        # defaults: 4 prompts x 4 samples = 16 responses, 2 ranks, 1 mini-batch -> 8 rows a rank
        (["learner.micro_batch_size=3"], "learner.micro_batch_size = 3 must divide the 8 rows"),
        (["algo.mini_batches=3"], "algo.mini_batches = 3 must divide the 8 responses"),
        (["algo.mini_batches=4", "learner.micro_batch_size=4"], "learner.micro_batch_size = 4 must divide the 2 rows"),
        (["critic=none"], "algo=capo needs a critic"),
        (["data.operators=[/]"], "data.operators"),
        (["cluster.device=cuda"], "cluster.learner_gpus: device=cuda needs GPUs"),
    ],
)
def test_config_mistakes_are_clear_errors(overrides, message):
    with pytest.raises(ConfigError) as err:
        compose_config(overrides)
    assert message in str(err.value)


def test_a_batch_that_does_not_split_fails_at_load_before_ray_starts(tmp_path):
    # The user's own command: the error names the keys they can change, and comes from the
    # config loader within seconds, before Ray, placement groups or any learner rank exist.
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    result = subprocess.run(
        [sys.executable, "-m", "capo_ray.train", "learner.micro_batch_size=3", f"trainer.output_dir={tmp_path}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "ConfigError: learner.micro_batch_size = 3 must divide the 8 rows" in result.stderr
    assert "algo.mini_batches = 1 / learner.num_workers = 2" in result.stderr
    # raised by the strict loader; the driver (Ray, placement, actors) was never entered
    assert "strict.py" in result.stderr and "capo_ray/driver/" not in result.stderr
    assert not any(tmp_path.glob("*/config.json"))  # no run directory was made


def test_booleans_and_numbers_are_not_coerced_from_strings():
    data = compose_dict()
    data["logging"]["progress_bar"] = "yes"
    with pytest.raises(ConfigError, match="logging.progress_bar: expected true/false"):
        load_config(data)


@pytest.mark.parametrize("group, size", [("gsm8k_train", 7473), ("math_train", 4500)])
def test_dataset_groups_load_their_training_sets(group, size):
    from capo_ray.data.datasets import BUILTIN_DATASETS, resolve_data_dir
    from capo_ray.data.prompts_for_task import prompt_messages
    from capo_ray.data.sources import make_source

    try:
        resolve_data_dir(None)
    except Exception:
        pytest.skip("no data directory on this machine")
    cfg = compose_config([f"data={group}"])
    assert cfg.data.name == group in BUILTIN_DATASETS and cfg.data.verifier == "math"
    source = make_source(cfg.data)
    assert len(source.problems) == size
    batch = source.batch(3, 4)
    assert batch == make_source(cfg.data).batch(3, 4)  # reproducible: a resumed run sees the same
    messages = prompt_messages(cfg.data, batch[0])
    assert messages[-1]["role"] == "user" and batch[0].question.strip() in messages[-1]["content"]
