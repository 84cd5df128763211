"""Local worker processes of a sweep: one pipe per worker, a watchdog, nothing left behind.

``concurrent.futures.ProcessPoolExecutor`` shares one result pipe and its lock between all
workers: a worker killed while sending a result leaves the lock taken and half a message in
the pipe, and the pool can wait for the rest of it for ever instead of reporting the death.
Here each worker has its own pipe to the parent, so a death is an end-of-file on that pipe
(and the process sentinel), seen at once, and the parent never blocks on a worker.

What is guaranteed:

- A worker exits within moments when the parent is gone (killed with SIGKILL, SIGTERM or
  anything else): it watches a pipe whose only writer is the parent. Under the "forkserver"
  context the workers are children of the fork server, not of the parent, and each worker
  holds the fork server's own "parent alive" pipe, so neither can notice the parent's death
  by itself; once the workers are gone the fork server and the resource tracker see their
  pipes close and exit too.
- A worker that dies (killed, out of memory, a crash in native code) ends the sweep with
  :class:`WorkerDied` after the runs the other workers had in progress have finished and
  been handed over; every finished run is kept, so running the same command again resumes.
- Ctrl-C (or any exception in the parent) kills the workers before it propagates.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["WorkerDied", "run_in_workers"]

#: Longest wait for a message, so the parent notices dead workers and signals promptly.
_POLL = 0.5
#: Seconds a stopping worker is given to exit on its own before it is killed.
_GRACE = 5.0


class WorkerDied(RuntimeError):
    """A worker process died during a sweep; the finished runs were handed over."""


def _watch_parent(alive: Connection) -> None:
    """Exit this process as soon as the parent's end of ``alive`` closes (it never writes)."""
    with contextlib.suppress(BaseException):
        alive.poll(None)
    os._exit(1)


def _worker_main(
    conn: Connection,
    alive: Connection,
    init: Callable[[], None] | None,
    work: Callable[[Any], Any],
) -> None:
    """Run tasks received on ``conn`` until ``None`` (or the parent is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(alive,), name="optarena-parent-watch",
                     daemon=True).start()  # fmt: skip
    if init is not None:
        init()
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            conn.send(("ok", work(task)))
        except (BrokenPipeError, EOFError):
            return  # the parent is gone
        except BaseException as e:
            try:
                conn.send(("raised", e))
            except Exception:
                conn.send(("raised", RuntimeError(f"{type(e).__name__}: {e}")))


class _Worker:
    """The parent's handle on one worker: its process, its pipe and the task it is running."""

    def __init__(self, ctx: Any, alive: Connection, init: Any, work: Any, index: int) -> None:
        self.conn, child = ctx.Pipe()
        self.index = index
        self.task: Any = None
        self.process = ctx.Process(
            target=_worker_main, args=(child, alive, init, work), name=f"optarena-worker-{index}"
        )
        self.process.daemon = True
        self.process.start()
        child.close()  # the worker holds the only other end: its death is an EOF here


def _exit_text(process: Any) -> str:
    code = process.exitcode
    if code is None:
        return "its pipe closed"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def run_in_workers(
    tasks: Iterable[Any],
    workers: int,
    work: Callable[[Any], Any],
    on_result: Callable[[Any, Any], None],
    *,
    ctx: Any = None,
    init: Callable[[], None] | None = None,
    describe: Callable[[Any], str] = repr,
) -> None:
    """Run ``work(task)`` for every task in ``workers`` processes; ``on_result(task, value)``
    is called here, in this process, as each one finishes.

    ``work`` and ``init`` (run once per worker) must be importable by name. An exception
    raised by ``work`` is raised here after the workers are stopped. Raises
    :class:`WorkerDied` when a worker dies, once the other workers' runs in progress have
    been handed to ``on_result``; ``describe(task)`` names the run it was doing.
    """
    ctx = ctx or mp.get_context("spawn")
    queue = list(tasks)[::-1]
    alive_r, alive_w = ctx.Pipe(duplex=False)
    pool: list[_Worker] = []
    died: list[str] = []
    try:
        for i in range(min(workers, len(queue))):
            pool.append(_Worker(ctx, alive_r, init, work, i))
        alive_r.close()
        for w in pool:
            _next(w, queue)
        while any(w.task is not None for w in pool):
            busy = {w.conn: w for w in pool if w.task is not None}
            ready = wait(list(busy), timeout=_POLL)
            for conn in ready:
                w = busy[conn]
                try:
                    kind, value = conn.recv()
                except (EOFError, OSError):  # died, possibly in the middle of a message
                    w.process.join(_GRACE)
                    died.append(f"worker {w.index} ({_exit_text(w.process)}) while running "
                                f"{describe(w.task)}")  # fmt: skip
                    w.task = None
                    queue.clear()  # hand out nothing more; let the others finish theirs
                    continue
                task, w.task = w.task, None
                if kind == "raised":
                    raise value
                on_result(task, value)
                if not died:
                    _next(w, queue)
        if died:
            raise WorkerDied("; ".join(died))
        for w in pool:  # all done: let them exit normally
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in pool:
            w.process.join(_GRACE)
    finally:
        alive_w.close()  # any worker still running sees this and exits
        with contextlib.suppress(Exception):
            alive_r.close()
        for w in pool:
            if w.process.is_alive():
                w.process.kill()
        for w in pool:
            w.process.join(_GRACE)
            w.conn.close()


def _next(w: _Worker, queue: list[Any]) -> None:
    """Give worker ``w`` the next task, if any."""
    if queue:
        w.task = queue.pop()
        with contextlib.suppress(OSError):  # it died meanwhile: its pipe's EOF reports it
            w.conn.send(w.task)
