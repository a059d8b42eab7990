"""The launch path users take on a cluster: a Ray head (started here on loopback), then
`launch/submit.sh` = `ray job submit --working-dir . -- python -m capo_ray.train ...`."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_using(marker: str) -> list[int]:
    out = []
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit():
            try:
                if marker.encode() in (pid_dir / "cmdline").read_bytes():
                    out.append(int(pid_dir.name))
            except OSError:
                pass
    return out


@pytest.fixture
def ray_head(tmp_path_factory):
    """A head bound to 127.0.0.1 with its own temp dir; torn down by killing exactly the
    processes that carry that temp dir (never `ray stop`, which would kill other sessions)."""
    temp_dir = Path("/tmp") / f"capo_job_{os.getpid()}"
    gcs, dash = _free_port(), _free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": "disabled"}
    subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         "--num-cpus=2", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        check=True, env=env, capture_output=True, timeout=180,
    )
    try:
        yield f"http://127.0.0.1:{dash}", env
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in _pids_using(str(temp_dir)) + _pids_using(f"127.0.0.1:{gcs}"):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(2)


def test_submit_a_short_run_as_a_ray_job(ray_head, tmp_path):
    address, env = ray_head
    out_dir = tmp_path / "runs"
    cmd = [
        str(REPO / "launch" / "submit.sh"),
        "model=tiny", "rollout.n_samples=2", "rollout.max_new_tokens=8", "rollout.engine.max_model_len=512",
        "data.prompts_per_step=2", "learner.micro_batch_size=2", "trainer.steps=1",
        f"trainer.output_dir={out_dir}", "trainer.run_name=job", "logging.wandb=disabled",
        "logging.progress_bar=false",
    ]
    job_env = {**env, "RAY_ADDRESS": address, "CAPO_RAY_PYTHON": sys.executable}
    proc = subprocess.run(cmd, cwd=REPO, env=job_env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in (proc.stdout + proc.stderr).lower()
    assert (out_dir / "job" / "report.md").exists()
    assert (out_dir / "job" / "metrics.jsonl").read_text().count("\n") == 1
