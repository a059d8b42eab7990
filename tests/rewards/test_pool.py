"""DeadlinePool: deadlines, crashes and replacement, with stdlib functions as targets (the
worker imports its target by name, and tests/ is not an importable package)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from capo_ray.rewards.pool import DeadlinePool, PoolStartupError, TaskOutcome


def test_results_come_back_in_task_order():
    with DeadlinePool("builtins:abs", num_workers=2, timeout_s=5.0) as pool:
        assert pool.map([-3, 2, -1]) == [TaskOutcome("ok", 3), TaskOutcome("ok", 2), TaskOutcome("ok", 1)]
        assert pool.map([]) == []


def test_stuck_task_times_out_and_worker_is_replaced():
    with DeadlinePool("time:sleep", num_workers=1, timeout_s=0.5) as pool:
        start = time.perf_counter()
        outcomes = pool.map([30, 0, 30, 0])
        elapsed = time.perf_counter() - start
    assert [o.status for o in outcomes] == ["timeout", "ok", "timeout", "ok"]
    assert elapsed < 30.0  # two deadlines and two restarts, never the 60 s of sleeping


def test_exception_is_an_error_and_the_worker_survives():
    with DeadlinePool("builtins:int", num_workers=1, timeout_s=5.0) as pool:
        outcomes = pool.map(["12", "not a number", "7"])
    assert outcomes[0] == TaskOutcome("ok", 12)
    assert outcomes[1].status == "error" and "ValueError" in outcomes[1].error
    assert outcomes[2] == TaskOutcome("ok", 7)


def test_dead_worker_is_an_error_and_is_replaced():
    # os._exit(3) ends the worker process mid-task, as a crash in a C extension would.
    with DeadlinePool("os:_exit", num_workers=1, timeout_s=5.0) as pool:
        outcome = pool.map([3])[0]
        assert outcome.status == "error" and "exit code 3" in outcome.error
    with DeadlinePool("builtins:abs", num_workers=1, timeout_s=5.0) as pool:
        assert pool.map([-1]) == [TaskOutcome("ok", 1)]


def test_target_that_cannot_import_fails_clearly():
    with DeadlinePool("no_such_module_xyz:fn", num_workers=1, timeout_s=1.0) as pool:
        with pytest.raises(PoolStartupError, match="no_such_module_xyz"):
            pool.map([1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_workers": 0, "timeout_s": 1.0}, "num_workers"),
        ({"num_workers": 1, "timeout_s": 0.0}, "timeout_s"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeadlinePool("builtins:abs", **kwargs)


REPO = Path(__file__).resolve().parents[2]


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    """Run ``body`` as a plain script (no main guard) in a fresh interpreter."""
    script = tmp_path / "plain_script.py"
    script.write_text(body)
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(Path.home())},
    )


def test_workers_never_rerun_the_callers_script(tmp_path):
    # Top-level code with no `if __name__ == "__main__":` guard. A worker that re-imported the
    # caller's main module (multiprocessing spawn / forkserver do) would append a second line
    # and start a pool of its own during start-up.
    result = run_script(tmp_path, (
        "from pathlib import Path\n"
        "from capo_ray.rewards.pool import DeadlinePool\n"
        "with open(Path(__file__).with_suffix('.runs'), 'a') as f:\n"
        "    f.write('ran\\n')\n"
        "with DeadlinePool('builtins:abs', num_workers=2, timeout_s=10.0) as pool:\n"
        "    print(pool.map([-4, 5]))\n"
    ))
    assert result.returncode == 0, result.stderr
    assert "TaskOutcome(status='ok', value=4" in result.stdout
    assert (tmp_path / "plain_script.runs").read_text() == "ran\n"
