"""A process pool in which every task has a wall-clock deadline.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one stuck task. A sympy
simplification of ``9^{9^{9^9}}`` never returns, and the only way to reclaim that core is to
kill the process running it. Here each worker owns one pipe; the dispatcher sends one task at
a time to an idle worker, waits on all pipes with ``multiprocessing.connection.wait`` and kills
and replaces any worker whose task passes its deadline. Nothing uses signals, so the pool
works from any thread and inside Ray actors (math-verify's own timeout uses ``signal.alarm``,
which raises outside the main thread).

The deadline of a task starts when it is handed to a worker that has finished starting up
(imports and warm-up), so a slow start-up never turns into a task timeout.

Each worker is a fresh Python interpreter running ``capo_ray.rewards.pool_worker`` (see there
for why not ``multiprocessing``): it never re-imports the caller's script, so a library call
works from a plain script with no ``if __name__ == "__main__":`` guard, from threads and from
Ray actors alike.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal, Sequence

from capo_ray.rewards.pool_worker import FATAL, OK, READY

_IDLE_POLL_S = 0.05  # how often to re-check start-up while no worker is ready yet
_WORKER_MAIN = "from capo_ray.rewards.pool_worker import main; main()"
# The folder holding the capo_ray package, so the worker interpreter finds it however the
# caller did (installed, PYTHONPATH, or a script run from the checkout).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class PoolStartupError(RuntimeError):
    """The worker processes could not start (the target failed to import or to warm up)."""


@dataclass(frozen=True)
class TaskOutcome:
    status: Literal["ok", "timeout", "error"]
    value: Any = None  # the target's return value when status == "ok"
    error: str | None = None  # why, when status == "error"


@dataclass(eq=False)  # identity semantics: the pool finds a worker by ``is``
class _Worker:
    process: subprocess.Popen
    conn: Connection
    spawned_at: float
    ready: bool = False
    task: int | None = None  # index of the task it is running
    task_started: float = 0.0


def _stop_workers(workers: list[_Worker]) -> None:
    """Ask every worker to exit, then kill whichever has not within a second."""
    for worker in workers:
        try:
            worker.conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + 1.0
    for worker in workers:
        if not _reap(worker.process, max(0.0, deadline - time.monotonic())):
            worker.process.kill()
            _reap(worker.process, 1.0)
        worker.conn.close()


def _reap(process: subprocess.Popen, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``process`` to exit; whether it has."""
    try:
        process.wait(timeout_s)
        return True
    except subprocess.TimeoutExpired:
        return False


class DeadlinePool:
    """Run ``target`` ("package.module:function", a picklable-result function of one picklable
    argument) in ``num_workers`` processes, each task bounded by ``timeout_s`` seconds.

    ``map`` is thread-safe: concurrent callers are served one batch at a time.
    """

    def __init__(
        self,
        target: str,
        num_workers: int,
        timeout_s: float,
        *,
        warmup: Any = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"DeadlinePool: num_workers must be >= 1, got {num_workers}")
        if timeout_s <= 0:
            raise ValueError(f"DeadlinePool: timeout_s must be > 0, got {timeout_s}")
        self._target = target
        self._warmup = warmup
        self._timeout_s = timeout_s
        self._startup_timeout_s = startup_timeout_s
        self._lock = threading.Lock()
        self._closed = False
        self._startup_deaths = 0
        self._workers = [self._spawn() for _ in range(num_workers)]
        # Kills the workers even if close() is never called (the list is shared, not copied).
        self._finalizer = weakref.finalize(self, _stop_workers, self._workers)

    def _spawn(self) -> _Worker:
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN, str(child_sock.fileno())],
                pass_fds=[child_sock.fileno()], stdin=subprocess.DEVNULL, env=env,
            )
        finally:
            child_sock.close()
        conn = Connection(parent_sock.detach())
        # Buffered by the socket until the worker has started and reads it.
        conn.send((list(sys.path), self._target, self._warmup))
        return _Worker(process=process, conn=conn, spawned_at=time.monotonic())

    def _replace(self, worker: _Worker) -> None:
        worker.process.kill()
        _reap(worker.process, 1.0)
        worker.conn.close()
        self._workers[self._workers.index(worker)] = self._spawn()

    def map(self, tasks: Sequence[Any]) -> list[TaskOutcome]:
        """Outcomes in task order. A task past its deadline is "timeout" and its worker is
        replaced; a task that raised or killed its worker is "error"."""
        with self._lock:
            if self._closed:
                raise RuntimeError("DeadlinePool.map: the pool is closed")
            outcomes: list[TaskOutcome | None] = [None] * len(tasks)
            queue = deque(range(len(tasks)))
            while queue or any(w.task is not None for w in self._workers):
                self._dispatch(queue, tasks)
                self._collect(outcomes)
                self._expire(outcomes)
            done = [outcome for outcome in outcomes if outcome is not None]
            assert len(done) == len(tasks), "DeadlinePool.map: a task finished without an outcome"
            return done

    def wait_ready(self) -> None:
        """Block until every worker has started (start-up is otherwise overlapped with work)."""
        with self._lock:
            while not all(w.ready for w in self._workers):
                self._collect([])

    def _dispatch(self, queue: deque[int], tasks: Sequence[Any]) -> None:
        for worker in list(self._workers):
            if not queue:
                return
            if not worker.ready or worker.task is not None:
                continue
            index = queue.popleft()
            try:
                worker.conn.send(tasks[index])
            except (OSError, ValueError):  # it died while idle: retry the task elsewhere
                queue.appendleft(index)
                self._replace(worker)
                continue
            worker.task, worker.task_started = index, time.monotonic()

    def _collect(self, outcomes: list[TaskOutcome | None]) -> None:
        """Wait for the next message from a busy or starting worker and record it."""
        waiting = [w for w in self._workers if not w.ready or w.task is not None]
        busy = [w.task_started + self._timeout_s for w in self._workers if w.task is not None]
        timeout = max(0.0, min(busy) - time.monotonic()) if busy else _IDLE_POLL_S
        if not busy:
            self._check_startup()
        for conn in wait([w.conn for w in waiting], timeout):
            worker = next(w for w in self._workers if w.conn is conn)
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                self._on_death(worker, outcomes)
                continue
            if kind == FATAL:
                raise PoolStartupError(f"verifier worker failed to start ({self._target}):\n{payload}")
            if kind == READY:
                worker.ready = True
                continue
            assert worker.task is not None, "a worker answered without a task"
            outcomes[worker.task] = TaskOutcome("ok", value=payload) if kind == OK else TaskOutcome("error", error=payload)
            worker.task = None

    def _on_death(self, worker: _Worker, outcomes: list[TaskOutcome | None]) -> None:
        _reap(worker.process, 1.0)
        if not worker.ready:
            # Dying before "ready" without a traceback (e.g. a crash in a C extension on
            # import) would otherwise respawn forever.
            self._startup_deaths += 1
            if self._startup_deaths > 3 * len(self._workers):
                raise PoolStartupError(
                    f"verifier workers keep dying on start-up ({self._target}, exit code {worker.process.returncode})"
                )
        if worker.task is not None:
            reason = f"worker process died (exit code {worker.process.returncode})"
            outcomes[worker.task] = TaskOutcome("error", error=reason)
        self._replace(worker)

    def _expire(self, outcomes: list[TaskOutcome | None]) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.task is not None and now - worker.task_started > self._timeout_s:
                outcomes[worker.task] = TaskOutcome("timeout")
                self._replace(worker)

    def _check_startup(self) -> None:
        if any(w.ready for w in self._workers):
            return
        oldest = min(w.spawned_at for w in self._workers)
        if time.monotonic() - oldest > self._startup_timeout_s:
            raise PoolStartupError(
                f"no verifier worker became ready within {self._startup_timeout_s:.0f} s ({self._target})"
            )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._finalizer()

    def __enter__(self) -> "DeadlinePool":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
