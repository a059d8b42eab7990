"""What a training run prints, and where everything else goes.

Quiet by default (``logging.verbose=false``): the terminal shows one line per start-up stage
with its duration, the progress bar with ETA, one summary line per step, and the messages
that need a person (warnings and errors: a failing judge, a stale rollout, a recovery; and
the few info lines marked for the console: the run directory, a resume, the end). Everything
else (Ray's and the engines' streamed worker logs, vLLM, DeepSpeed, transformers, Python
warnings, native libraries writing to stdout/stderr) lands in ``RUN_DIR/logs/output.log``:
the process's file descriptors 1 and 2 are pointed at that file, which also catches what
C++ code and child processes write. The terminal keeps a private duplicate of the original
stderr. The driver's own log (INFO and up) is ``RUN_DIR/train.log`` in both modes.

``logging.verbose=true`` leaves stdout and stderr alone: everything reaches the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

log = logging.getLogger("capo_ray")

CONSOLE = {"console": True}  # ``log.info(..., extra=CONSOLE)``: show this info line on the terminal
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class _ConsoleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or getattr(record, "console", False)


class _TerminalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        return msg if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {msg}"


class Console:
    """The run's terminal. ``terminal`` is where the progress bar and the summaries go."""

    def __init__(self) -> None:
        self.terminal: IO[str] = sys.stderr
        self._saved: list[tuple[int, int]] = []  # (fd, duplicate of what it was)
        self._output: IO[bytes] | None = None

    def open(self, run_dir: Path, verbose: bool) -> None:
        """Set up logging for a run in ``run_dir``, replacing the handlers of an earlier run in
        the same process (tests, notebooks) so one run's log never collects another's lines."""
        self.close()
        if not verbose:
            logs = run_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            sys.stdout.flush()
            sys.stderr.flush()
            self._output = open(logs / "output.log", "ab", buffering=0)
            term_fd = os.dup(sys.stderr.fileno())
            self.terminal = os.fdopen(term_fd, "w", buffering=1, encoding="utf-8", errors="replace")
            for fd in (1, 2):
                self._saved.append((fd, os.dup(fd)))
                os.dup2(self._output.fileno(), fd)
        root = logging.getLogger("capo_ray")
        root.setLevel(logging.INFO)
        root.propagate = False  # Hydra's root handler would print every line a second time
        for old in list(root.handlers):
            root.removeHandler(old)
            old.close()
        file_handler = logging.FileHandler(run_dir / "train.log")
        file_handler.setFormatter(_FORMAT)
        root.addHandler(file_handler)
        term = logging.StreamHandler(self.terminal)
        if verbose:
            term.setFormatter(_FORMAT)
        else:
            term.addFilter(_ConsoleFilter())
            term.setFormatter(_TerminalFormatter())
        root.addHandler(term)

    def close(self) -> None:
        """Give stdout/stderr back (end of the run, or before the next one in this process)."""
        if not self._saved:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in self._saved:
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = []
        root = logging.getLogger("capo_ray")
        for old in list(root.handlers):
            if getattr(old, "stream", None) is self.terminal:
                root.removeHandler(old)
        self.terminal.close()
        self.terminal = sys.stderr
        if self._output is not None:
            self._output.close()
            self._output = None

    @property
    def quiet(self) -> bool:
        return bool(self._saved)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """One start-up stage: a line with its duration on the terminal and in train.log."""
        t0 = time.perf_counter()
        status = "failed"
        try:
            yield
            status = "done"
        finally:
            seconds = time.perf_counter() - t0
            text = f"{seconds:6.1f} s" if status == "done" else f"failed after {seconds:.1f} s"
            if self.quiet:  # verbose: the log line below reaches the terminal anyway
                print(f"  {name:<28} {text}", file=self.terminal, flush=True)
            log.info("start-up: %s %s", name, text.strip())


console = Console()  # one per driver process: the trainer, the actor start-up and the CLI share it
