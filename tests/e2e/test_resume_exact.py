"""Exact resume: a driver killed with SIGKILL right after its step-1 checkpoint, run again with
the same command, resumes and produces the same metrics for the later steps as a run that was
never interrupted (4 steps) — with a noisy arith critic (flip_noise 0.3), whose random state is in the
checkpoint. Then the credit inspector turns the uninterrupted run into pages that a real
headless Chromium renders."""

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from capo_ray.driver.logger import read_jsonl

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4
# Timings, memory and throughput differ between any two runs; everything else must not.
VOLATILE_PREFIXES = ("time/", "memory/")
VOLATILE_SUFFIXES = ("seconds",)  # learner/seconds, learner/rank_seconds
# CPU tolerance: the runs repeat the same float operations in the same order, so they agree
# to the last bit in practice; the bound leaves room for a BLAS that picks its kernel by load.
REL_TOL = 1e-6


def _cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "capo_ray.train", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _train(args: list[str]) -> None:
    out = subprocess.run(_cmd(args), env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert out.returncode == 0, out.stderr[-3000:]


def _train_and_kill_after_checkpoint(args: list[str], run_dir: Path, step: int) -> None:
    marker = run_dir / "checkpoints" / f"step_{step:06d}" / "trainer_state.json"
    # Own session: the driver, the Ray processes it starts and their workers form one group
    # this test can clean up (by its id) after killing the driver.
    proc = subprocess.Popen(_cmd(args), env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 420
        while not marker.exists():
            assert proc.poll() is None, f"the driver exited ({proc.returncode}) before its step-{step} checkpoint"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.05)
        # At once: a tiny step takes about a second, and the kill must land mid-run.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the killed driver's leftover Ray processes
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def _compare(a: list[dict], b: list[dict]) -> list[str]:
    bad = []
    for ra, rb in zip(a, b):
        keys = {k for k in ra.keys() | rb.keys() if not k.startswith(VOLATILE_PREFIXES) and not k.endswith(VOLATILE_SUFFIXES)}
        for k in sorted(keys):
            va, vb = ra.get(k), rb.get(k)
            if va is None or vb is None or abs(float(va) - float(vb)) > REL_TOL * max(1.0, abs(float(va))):
                bad.append(f"step {ra['step']} {k}: {va} vs {vb}")
    return bad


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_overrides_for):
    """(uninterrupted run dir, killed-and-resumed run dir)."""
    tmp = tmp_path_factory.mktemp("resume")
    args = tiny_overrides_for(tmp, f"trainer.steps={STEPS}", "trainer.save_every=1", "critic.k=4",
                              "critic.flip_noise=0.3", "logging.log_samples=4")
    _train([*args, "trainer.run_name=a"])
    _train_and_kill_after_checkpoint([*args, "trainer.run_name=b"], tmp / "b", step=1)
    killed_rows = read_jsonl(tmp / "b" / "metrics.jsonl")
    assert [r["step"] for r in killed_rows][:2] == [0, 1] and len(killed_rows) < STEPS, "the kill came too late"
    assert not (tmp / "b" / "report.md").exists()
    _train([*args, "trainer.run_name=b"])
    return tmp / "a", tmp / "b"


def test_killed_driver_resumes_exactly(runs):
    a_dir, b_dir = runs
    a, b = read_jsonl(a_dir / "metrics.jsonl"), read_jsonl(b_dir / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(STEPS))
    assert _compare(a, b) == []
    # the noise did something: the critic flagged some steps and not others
    assert 0 < sum(r["critic/flagged_step_rate"] for r in a) < STEPS
    assert read_jsonl(a_dir / "samples.jsonl") == read_jsonl(b_dir / "samples.jsonl")
    assert "resuming from" in (b_dir / "train.log").read_text()


def test_inspector_pages_of_a_real_run_render_in_chromium(runs, browser, check_step_page, not_blank):
    a_dir, _ = runs
    out = subprocess.run([sys.executable, "-m", "capo_ray.inspect", str(a_dir)], env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    pages = sorted((a_dir / "inspect").glob("step_*.html"))
    by_step = defaultdict(list)
    for s in read_jsonl(a_dir / "samples.jsonl"):
        by_step[s["step"]].append(s)
    assert [p.name for p in pages] == [f"step_{s:06d}.html" for s in range(STEPS)]
    for page in pages:
        check_step_page(browser, page, by_step[int(page.stem.split("_")[1])])
    browser.get((a_dir / "inspect" / "index.html").as_uri())
    not_blank(browser.get_screenshot_as_png())
    report = (a_dir / "report.md").read_text()
    assert "![Outcome accuracy](plots/accuracy.png)" in report and (a_dir / "plots" / "accuracy.png").is_file()
