"""The quiet console: the terminal shows start-up stages, progress, step summaries and
warnings; everything else written to stdout/stderr (also by native code and child processes)
goes to RUN_DIR/logs/output.log. ``verbose`` gives everything back to the terminal."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, os, subprocess, sys, warnings
    from pathlib import Path
    from capo_ray.driver.console import CONSOLE, console
    from capo_ray.driver.progress import Progress

    run_dir = Path(sys.argv[1]); run_dir.mkdir(exist_ok=True)
    console.open(run_dir, verbose=sys.argv[2] == "verbose")
    log = logging.getLogger("capo_ray")
    with console.stage("ray cluster"):
        print("ray says hello")                             # a library's print
        os.write(2, b"native stderr line\\n")               # C++ code writing to fd 2
        subprocess.run(["echo", "child process line"])      # an engine subprocess
        logging.getLogger("vllm").warning("vllm chatter")   # another library's logger
        warnings.warn("a library deprecation")
    log.info("routine detail")
    log.info("run directory: %s", run_dir, extra=CONSOLE)
    log.warning("judge failing: 3 requests")
    progress = Progress(2, 0, enabled=False, stream=console.terminal)
    progress.update(0, {"outcome/accuracy": 0.5, "critic/failed_requests": 2.0})
    progress.close()
    console.close()
    print("after the run")
""")


def _run(tmp_path, mode):
    run_dir = tmp_path / mode
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(run_dir), mode], capture_output=True, text=True, check=True)
    return run_dir, out.stderr, out.stdout


def test_quiet_terminal_shows_stages_summaries_and_warnings_only(tmp_path):
    run_dir, terminal, stdout = _run(tmp_path, "quiet")
    lines = [line for line in terminal.splitlines() if line.strip()]
    assert lines[0].split()[:2] == ["ray", "cluster"] and lines[0].endswith(" s")
    assert "run directory:" in terminal and "warning: judge failing: 3 requests" in terminal
    assert "step 0 | acc 0.50" in terminal
    assert "warning: step 0: 2 critique request(s) failed" in terminal
    assert stdout == "after the run\n"  # stdout is given back at the end, and held nothing else
    for noise in ("ray says hello", "native stderr line", "child process line", "vllm chatter", "deprecation", "routine detail"):
        assert noise not in terminal
    output = (run_dir / "logs" / "output.log").read_text()
    for noise in ("ray says hello", "native stderr line", "child process line", "vllm chatter", "deprecation"):
        assert noise in output
    train_log = (run_dir / "train.log").read_text()
    assert "routine detail" in train_log and "start-up: ray cluster" in train_log and "judge failing" in train_log
    assert len(lines) == 5, lines


def test_verbose_shows_everything(tmp_path):
    run_dir, stderr, stdout = _run(tmp_path, "verbose")
    terminal = stderr + stdout
    for line in ("ray says hello", "native stderr line", "child process line", "routine detail", "start-up: ray cluster"):
        assert line in terminal
    assert not (run_dir / "logs" / "output.log").exists()
