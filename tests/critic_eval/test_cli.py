"""conf/critic_eval.yaml mirrors CriticEvalConfig (mistakes fail on load, before any judge starts),
and the CLI end to end with the arith judge: in-process ``run`` and ``python -m capo_ray.critic_eval``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from capo_ray.config.components import CriticConfig
from capo_ray.config.compose import CONF_DIR, compose_dict
from capo_ray.config.strict import ConfigError, from_dict
from capo_ray.critic_eval.cli import run
from capo_ray.critic_eval.config import CriticEvalConfig, JudgeConfig
from capo_ray.data.datasets import find_data_dir

REPO = Path(__file__).resolve().parents[2]
needs_data = pytest.mark.skipif(find_data_dir() is None, reason="shared math datasets not found (set CAPO_DATA_DIR)")


def _load(overrides: list[str]) -> CriticEvalConfig:
    return from_dict(CriticEvalConfig, compose_dict(overrides, config_name="critic_eval"))


def test_yaml_mirrors_every_field_and_its_defaults():
    data = compose_dict(config_name="critic_eval")
    assert set(data) == {f.name for f in dataclasses.fields(CriticEvalConfig)}
    assert set(data["judge"]) == {f.name for f in dataclasses.fields(JudgeConfig)}
    assert _load([]) == CriticEvalConfig()  # the YAML repeats the dataclass defaults, no drift


def test_no_top_level_key_shadows_a_config_group():
    # Hydra reads `key=value` as a group choice when conf/<key>/ exists (conf/critic/ does).
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    assert "critic" in groups and not groups & set(compose_dict(config_name="critic_eval"))


def test_overrides_reach_the_typed_config_and_the_critic_section():
    cfg = _load(["size=40", "ks=[2,8]", "rules=[majority]", "split=train", "judge.backend=llm", "judge.max_tokens=64"])
    assert (cfg.size, cfg.ks, cfg.rules, cfg.split, cfg.max_k) == (40, [2, 8], ["majority"], "train", 8)
    critic = cfg.judge.to_critic_config(cfg.max_k)
    assert isinstance(critic, CriticConfig)
    assert (critic.backend, critic.k, critic.max_tokens, critic.model_path) == ("llm", 8, 64, "smollm2")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+bogus=1"], "unknown key 'bogus'"),
        (["+judge.k=4"], "judge: unknown key 'k'"),
        (["+judge.temprature=1.0"], "(did you mean 'temperature'?)"),
        (["rules=[majority,mean]"], "rules: unknown ['mean']; valid rules: ['intersection', 'union', 'majority', 'average']"),
        (["ks=[]"], "ks: empty"),
        (["ks=[1,1]"], "ks: duplicates"),
        (["ks=[0,2]"], "ks: every k must be >= 1"),
        (["split=dev"], "split: 'dev' is not one of ['test', 'train']"),
        (["error_fraction=1.5"], "error_fraction: must be in [0, 1]"),
        (["judge.backend=none"], "judge.backend: 'none' is not one of ['arith', 'llm', 'openai', 'hybrid']"),
        (["judge.backend=llm", "judge.temperature=0"], "judge.temperature: must be > 0 for an LLM judge"),
        (["judge.max_tokens=4096"], "judge.engine.max_model_len: must exceed max_tokens"),
        (["judge.flip_noise=2"], "judge.flip_noise: must be in [0, 1]"),
        (["judge.num_engines=2"], "judge.num_engines: > 1 needs judge.launch=ray"),
    ],
)
def test_mistakes_are_config_errors(overrides, message):
    with pytest.raises(ConfigError) as err:
        _load(overrides)
    assert message in str(err.value)


@needs_data
def test_run_with_arith_writes_the_run_directory(tmp_path):
    cfg = CriticEvalConfig(size=20, ks=[1, 4], output_dir=str(tmp_path), run_name="arith",
                           judge=JudgeConfig(flip_noise=0.1))  # fmt: skip
    run_dir = run(cfg)
    assert run_dir == tmp_path / "arith"
    data = json.loads((run_dir / "results.json").read_text())
    assert [(c["rule"], c["k"]) for c in data["cells"]] == [(r, k) for r in cfg.rules for k in (1, 4)]
    assert data["solutions"] == 20 and data["erroneous"] == 10 and data["judge"]["critiques_per_solution"] == 4
    rows = [json.loads(line) for line in (run_dir / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(len(r["critiques"]) == 4 for r in rows)
    assert json.loads((run_dir / "config.json").read_text())["judge"]["flip_noise"] == 0.1
    # Same seed, same benchmark and noise: a second run reproduces the numbers exactly.
    again = json.loads((run(dataclasses.replace(cfg, run_name="again")) / "results.json").read_text())
    assert again["cells"] == data["cells"]


@needs_data
def test_module_entry_point_with_overrides(tmp_path):
    command = [
        sys.executable, "-m", "capo_ray.critic_eval", "size=12", "ks=[1,2]", "rules=[majority,union]",
        "judge.flip_noise=0.2", f"output_dir={tmp_path}", "run_name=cli",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HYDRA_FULL_ERROR": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| majority | 2 |" in done.stdout and "| union | 1 |" in done.stdout  # the table is printed
    md = (tmp_path / "cli" / "results.md").read_text()
    assert md.startswith("# Critic evaluation: arith (flip_noise=0.2)") and md.count("\n| ") == 5
    assert {"results.md", "results.json", "examples.jsonl", "config.json"} <= {p.name for p in (tmp_path / "cli").iterdir()}


def test_unknown_key_on_the_command_line_fails_before_anything_runs(tmp_path):
    command = [sys.executable, "-m", "capo_ray.critic_eval", "+judge.vote=majority", f"output_dir={tmp_path}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "judge: unknown key 'vote'" in done.stderr
    # Only Hydra's own log folder: no run directory was created.
    assert {p.name for p in tmp_path.iterdir()} <= {"hydra"}
