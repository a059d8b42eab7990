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

Worker processes are started with ``forkserver`` by default (or ``spawn``): never plain
``fork``, which is unsafe from a process with threads (Ray, torch). Both re-import the
caller's ``__main__`` module, so scripts need an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import signal
import threading
import time
import traceback
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Callable, Literal, Sequence

# Messages from a worker: (kind, payload).
_READY, _OK, _FAILED, _FATAL = "ready", "ok", "failed", "fatal"
_IDLE_POLL_S = 0.05  # how often to re-check start-up while no worker is ready yet


class PoolStartupError(RuntimeError):
    """The worker processes could not start (the target failed to import or to warm up)."""


@dataclass(frozen=True)
class TaskOutcome:
    status: Literal["ok", "timeout", "error"]
    value: Any = None  # the target's return value when status == "ok"
    error: str | None = None  # why, when status == "error"


def _resolve(target: str) -> Callable[[Any], Any]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _serve(conn: Connection, target: str, warmup: Any) -> None:
    """Worker main loop: run ``target`` on each task received until a None or EOF."""
    # Ctrl-C goes to the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fn = _resolve(target)
        if warmup is not None:
            fn(warmup)
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send((_FATAL, traceback.format_exc()))
        return
    conn.send((_READY, None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task is None:
            return
        try:
            conn.send((_OK, fn(task)))
        except Exception as exc:  # noqa: BLE001 - one bad input must not end the worker
            conn.send((_FAILED, f"{type(exc).__name__}: {exc}"))


@dataclass(eq=False)  # identity semantics: the pool finds a worker by ``is``
class _Worker:
    process: BaseProcess
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
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(1.0)
        worker.conn.close()


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
        start_method: Literal["forkserver", "spawn"] = "forkserver",
        startup_timeout_s: float = 120.0,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"DeadlinePool: num_workers must be >= 1, got {num_workers}")
        if timeout_s <= 0:
            raise ValueError(f"DeadlinePool: timeout_s must be > 0, got {timeout_s}")
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"DeadlinePool: start_method must be 'forkserver' or 'spawn', got {start_method!r}")
        self._target = target
        self._warmup = warmup
        self._timeout_s = timeout_s
        self._startup_timeout_s = startup_timeout_s
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            # The fork server imports the target once; each (re)started worker is then a cheap
            # fork of it. No effect if this process already started its fork server.
            self._ctx.set_forkserver_preload(["__main__", target.partition(":")[0]])
        self._lock = threading.Lock()
        self._closed = False
        self._startup_deaths = 0
        self._workers = [self._spawn() for _ in range(num_workers)]
        # Kills the workers even if close() is never called (the list is shared, not copied).
        self._finalizer = weakref.finalize(self, _stop_workers, self._workers)

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_serve, args=(child_conn, self._target, self._warmup), daemon=True, name="capo-verify"
        )
        process.start()
        child_conn.close()
        return _Worker(process=process, conn=parent_conn, spawned_at=time.monotonic())

    def _replace(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join(1.0)
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
            if kind == _FATAL:
                raise PoolStartupError(f"verifier worker failed to start ({self._target}):\n{payload}")
            if kind == _READY:
                worker.ready = True
                continue
            assert worker.task is not None, "a worker answered without a task"
            outcomes[worker.task] = TaskOutcome("ok", value=payload) if kind == _OK else TaskOutcome("error", error=payload)
            worker.task = None

    def _on_death(self, worker: _Worker, outcomes: list[TaskOutcome | None]) -> None:
        worker.process.join(1.0)
        if not worker.ready:
            # Dying before "ready" without a traceback (e.g. a crash in a C extension on
            # import) would otherwise respawn forever.
            self._startup_deaths += 1
            if self._startup_deaths > 3 * len(self._workers):
                raise PoolStartupError(
                    f"verifier workers keep dying on start-up ({self._target}, exit code {worker.process.exitcode})"
                )
        if worker.task is not None:
            reason = f"worker process died (exit code {worker.process.exitcode})"
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
