"""The worker process of ``DeadlinePool``: a fresh interpreter that serves one task at a time.

Why a fresh interpreter (``subprocess``) and not ``multiprocessing`` spawn or forkserver: both
of those re-import the caller's ``__main__`` in every worker, so a plain script that calls
``is_correct`` at top level (no ``if __name__ == "__main__":`` guard) would run again inside
each worker, start a pool there, and the workers would die on start-up. This process runs only
this module; it never sees the caller's script. Plain ``fork`` is no option either: it is unsafe
from a process with threads (Ray, torch).

Protocol over one duplex socket (a ``multiprocessing.connection.Connection``), one message at a
time: the parent sends ``(sys_path, target, warmup)``; the worker imports ``target``
("package.module:function"), runs it once on ``warmup`` and answers ``("ready", None)``, or
``("fatal", traceback)`` when that fails. Then for every task: ``("ok", result)`` or
``("failed", "Type: message")``. ``None`` or a closed socket ends the worker.
"""

from __future__ import annotations

import ctypes
import importlib
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable

READY, OK, FAILED, FATAL = "ready", "ok", "failed", "fatal"
_PR_SET_PDEATHSIG = 1  # Linux prctl option: signal this process when its parent dies


def resolve(target: str) -> Callable[[Any], Any]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _die_with_parent() -> None:
    """A worker stuck in a task never reads the closed socket; have the kernel kill it when the
    parent dies (Linux). Elsewhere the parent's finalizer and the socket's EOF stop it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def serve(conn: Connection) -> None:
    """Worker main loop: set up from the first message, then run tasks until None or EOF."""
    # Ctrl-C goes to the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    try:
        sys_path, target, warmup = conn.recv()
        sys.path[:] = sys_path  # import the target exactly as the parent would
        fn = resolve(target)
        if warmup is not None:
            fn(warmup)
    except (EOFError, OSError):
        return  # the parent went away during start-up
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send((FATAL, traceback.format_exc()))
        return
    conn.send((READY, None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task is None:
            return
        try:
            conn.send((OK, fn(task)))
        except Exception as exc:  # noqa: BLE001 - one bad input must not end the worker
            conn.send((FAILED, f"{type(exc).__name__}: {exc}"))


def main() -> None:
    """Entry point of the worker interpreter: ``argv[1]`` is the inherited socket's descriptor."""
    serve(Connection(int(sys.argv[1])))
