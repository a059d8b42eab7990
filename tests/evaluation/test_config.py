"""conf/eval.yaml mirrors EvalConfig; mistakes fail on load, before any engine starts."""

from __future__ import annotations

import dataclasses

import pytest

from capo_ray.config.compose import CONF_DIR, compose_dict
from capo_ray.config.strict import ConfigError, from_dict
from capo_ray.eval import check_prompt_lengths
from capo_ray.data.datasets import find_data_dir
from capo_ray.evaluation.benchmarks import load_benchmarks
from capo_ray.config.engine import EngineSettings
from capo_ray.evaluation.config import EvalConfig


def _load(overrides: list[str]) -> EvalConfig:
    return from_dict(EvalConfig, compose_dict(overrides, config_name="eval"))


def test_yaml_mirrors_every_field_and_its_defaults():
    data = compose_dict(config_name="eval")
    assert set(data) == {f.name for f in dataclasses.fields(EvalConfig)}
    assert set(data["engine"]) == {f.name for f in dataclasses.fields(EngineSettings)}
    assert _load([]) == EvalConfig()  # the YAML repeats the dataclass defaults, no drift


def test_no_top_level_key_shadows_a_config_group():
    # Hydra reads `key=value` as a group choice when conf/<key>/ exists (it did for `model`),
    # so a plain override of such a key would fail on the command line.
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    assert groups and not groups & set(compose_dict(config_name="eval"))


def test_overrides_reach_the_typed_config():
    overrides = ["policy=runs/x", "benchmarks=[gsm8k_test,amc23]", "limit=2", "k=0", "engine.max_model_len=512"]
    cfg = _load(overrides + ["max_new_tokens=64"])
    assert cfg.policy == "runs/x" and cfg.benchmarks == ["gsm8k_test", "amc23"] and cfg.limit == 2 and cfg.k == 0
    assert cfg.engine.max_model_len == 512


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+bogus=1"], "unknown key 'bogus'"),
        (["+engine.dtyp=float32"], "engine: unknown key 'dtyp' (did you mean 'dtype'?)"),
        (["benchmarks=[math500,math5000]"], "benchmarks: unknown ['math5000']; valid benchmarks: ['aime24',"),
        (["benchmarks=[]"], "benchmarks: empty"),
        (["benchmarks=[aime24,aime24]"], "duplicates"),
        (["limit=0"], "limit: must be >= 1"),
        (["k=0", "greedy=false"], "nothing to evaluate"),
        (["temperature=0"], "temperature: must be > 0 when sampling"),
        (["max_new_tokens=4096"], "engine.max_model_len (2048) must exceed max_new_tokens (4096)"),
        (["verifier=fuzzy"], "verifier: 'fuzzy' is not one of ['math', 'exact']"),
        (["engine.dtype=int8"], "engine.dtype: 'int8' is not one of"),
    ],
)
def test_mistakes_are_config_errors(overrides, message):
    with pytest.raises(ConfigError) as err:
        _load(overrides)
    assert message in str(err.value)


@pytest.mark.skipif(find_data_dir() is None, reason="shared math datasets not found (set CAPO_DATA_DIR)")
def test_load_benchmarks_limits_each_set_in_file_order():
    problems = load_benchmarks(["gsm8k_test", "aime24"], limit=3, data_dir=None)
    assert list(problems) == ["gsm8k_test", "aime24"] and [len(v) for v in problems.values()] == [3, 3]
    assert problems["gsm8k_test"][0].source == "gsm8k_test.jsonl:1"
    with pytest.raises(ValueError, match=r"unknown benchmarks \['nope'\]; valid benchmarks: \["):
        load_benchmarks(["nope"], limit=None, data_dir=None)


def test_prompts_that_leave_no_room_to_answer_fail_before_generation():
    check_prompt_lengths({"math500": [100, 400]}, max_new_tokens=100, max_model_len=500)
    with pytest.raises(ValueError, match=r"max_new_tokens = 400 tokens \(longest per benchmark: \{'aime24': 401\}\)"):
        check_prompt_lengths({"math500": [10], "aime24": [401]}, max_new_tokens=100, max_model_len=500)
