"""docker/docker-compose.yml is a valid compose file, as Docker's own tooling reads it: a Ray
head and a training job from the CPU image, runs/ and the model cache as volumes, overrides
passed through CAPO_ARGS. (Building the image and running the demo is docker/build_and_run.sh,
too long for the test suite.)"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "docker-compose.yml"


def _compose_cmd() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def _config(**env: str) -> dict:
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("no docker-compose / docker compose plugin (`make test-deps` installs docker-compose)")
    out = subprocess.run([*cmd, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                         env={**os.environ, "CAPO_DATA_DIR": str(ROOT), **env}, timeout=60)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_compose_file_is_valid_and_wires_head_and_job():
    cfg = _config()
    head, train = cfg["services"]["ray-head"], cfg["services"]["train"]
    assert head["build"]["dockerfile"] == "docker/Dockerfile" and Path(head["build"]["context"]).resolve() == ROOT
    assert "ray start --head" in " ".join(head["command"])
    assert "service_healthy" in str(train["depends_on"])
    mounts = {str(v.get("target") if isinstance(v, dict) else v.split(":")[1]) for v in head["volumes"]}
    assert {"/app/runs", "/root/.cache", "/data"} <= mounts
    assert "capo-cache" in cfg["volumes"]
    assert train["environment"]["RAY_ADDRESS"] == "http://ray-head:28265"


def test_overrides_and_host_network_pass_through():
    cfg = _config(CAPO_ARGS="algo=grpo trainer.steps=2", CAPO_NETWORK_MODE="host", CAPO_HEAD="127.0.0.1")
    train = cfg["services"]["train"]
    assert "launch/submit.sh trainer.output_dir=/app/runs data.data_dir=/data algo=grpo trainer.steps=2" in " ".join(train["command"])
    assert train["network_mode"] == cfg["services"]["ray-head"]["network_mode"] == "host"
    assert train["environment"]["RAY_ADDRESS"] == "http://127.0.0.1:28265"


def test_dockerfiles_build_from_the_repository():
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (ROOT / "docker" / name).read_text()
        assert text.splitlines()[0].startswith("#") and "ARG BASE=" in text and "FROM ${BASE}" in text
        for line in text.splitlines():
            if line.startswith("COPY "):
                for src in line.split()[1:-1]:
                    assert (ROOT / src).exists(), f"{name}: COPY {src} does not exist"
