"""Workers as processes of this machine, each talking to the parent over one
``multiprocessing`` pipe (pickled messages; no protocol of our own).

Spawned, not forked: the parent has threads (sinks, telemetry) that a fork would copy
mid-state. A worker ignores Ctrl+C (the terminal sends it to the whole process group; the
parent decides what it means and tells the workers), and exits when its pipe closes, so a
parent killed with ``kill -9`` leaves no worker behind.

Each end reads its pipe in a thread of its own and hands what it read to its event loop, and
writes from a thread too (the worker) or in small messages (the parent's commands). The pipe
is never registered with the loop: uvloop's ``add_reader`` switches the descriptor to
non-blocking, and ``Connection.recv`` of a message larger than the socket buffer then failed
half-way with ``EAGAIN``, which read as the worker gone (every worker "stopped answering" at
64 flat-out streams each, and the run still said completed), while the worker's sending
thread met the same error on a full pipe and stopped reporting.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from engine.run.config import RunConfig
from engine.run.workers.messages import Command, Crashed, Hello, Report, clock_pair
from engine.run.workers.runtime import WorkerRuntime

LISTENER_JOIN_S = 2.0
"""How long closing a link waits for its listener thread to meet the end of the pipe."""

# -- the worker process ------------------------------------------------------------------


class _Sender:
    """Sends reports from a thread of its own: a full pipe (a busy parent) then blocks this
    thread, never the worker's event loop and the timestamps it takes.
    """

    _CLOSE = object()

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="llmtop-reports", daemon=True)
        self._thread.start()

    def send(self, report: Report) -> None:
        self._queue.put(report)

    def close(self) -> None:
        self._queue.put(self._CLOSE)
        self._thread.join(10)

    def _run(self) -> None:
        while (item := self._queue.get()) is not self._CLOSE:
            try:
                self._conn.send(item)
            except OSError:  # the parent is gone; the listener notices its end of the pipe
                return


def listen(
    conn: Connection,
    loop: asyncio.AbstractEventLoop,
    deliver: Callable[[Any], None],
    gone: Callable[[], None],
    name: str,
) -> threading.Thread:
    """Read ``conn`` in a thread: each message goes to ``deliver`` on ``loop``, and the end of
    the pipe (EOF or an error) to ``gone``. Blocking reads: a message larger than the pipe's
    buffer is read whole, never seen half-way.
    """

    def run() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            try:
                loop.call_soon_threadsafe(deliver, message)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(gone)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def process_main(worker: int, config: RunConfig, run_id: str, conn: Connection) -> None:
    """A worker process's entry point."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sender = _Sender(conn)
    try:
        _run_loop(_serve(worker, config, run_id, conn, sender))
    except Exception as exc:  # noqa: BLE001 - told to the parent, which reports the worker
        sender.send(Crashed(f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def _run_loop(main: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(main)
        return
    uvloop.run(main)


async def _serve(
    worker: int, config: RunConfig, run_id: str, conn: Connection, sender: _Sender
) -> None:
    loop = asyncio.get_running_loop()
    host = socket.gethostname()
    runtime = WorkerRuntime(worker, config, run_id, host, sender.send)
    # SIGTERM (a service manager stopping everything) ends the worker as the parent would.
    loop.add_signal_handler(signal.SIGTERM, runtime.parent_gone)
    listen(conn, loop, runtime.handle, runtime.parent_gone, "llmtop-commands")
    sender.send(Hello(worker, os.getpid(), host, None, *clock_pair()))
    await runtime.serve()


# -- the parent's end -------------------------------------------------------------------


OnReport = Callable[[Any, Report], None]
OnExit = Callable[[Any, str], None]


class ProcessLink:
    """The parent's handle on one worker process: ``send`` commands; reports and its exit
    arrive through ``on_report`` and ``on_exit`` on the parent's event loop.
    """

    kind = "process"

    def __init__(
        self, worker: int, config: RunConfig, run_id: str, on_report: OnReport, on_exit: OnExit
    ) -> None:
        self.worker = worker
        self.host = socket.gethostname()
        self.pid: int | None = None
        self._on_report, self._on_exit = on_report, on_exit
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=True)
        self._child = child
        self._process = ctx.Process(
            target=process_main,
            args=(worker, config, run_id, child),
            name=f"llmtop-worker-{worker}",
            daemon=True,
        )
        self._closed = False
        """Set once the pipe ended or ``close`` was called: no report or exit after that."""
        self._exit_task: asyncio.Task[None] | None = None
        self._listener: threading.Thread | None = None

    def start(self) -> None:
        """Spawn the process and listen to it."""
        with _sigint_ignored():
            self._process.start()
        self.pid = self._process.pid
        self._child.close()
        loop = asyncio.get_running_loop()
        self._listener = listen(
            self._conn, loop, self._report, self._gone, f"llmtop-reports-{self.worker}"
        )

    def send(self, command: Command) -> None:
        """Hand the worker a command (a gone worker's are dropped: its exit is reported)."""
        with contextlib.suppress(OSError):
            self._conn.send(command)

    def _report(self, report: Report) -> None:
        if not self._closed:
            self._on_report(self, report)

    def _gone(self) -> None:
        """The pipe ended: the worker exited (or is about to); find out how."""
        if not self._closed:
            self._closed = True
            self._exit_task = asyncio.get_running_loop().create_task(self._exited())

    async def _exited(self) -> None:
        await asyncio.to_thread(self._process.join, 5)
        self._on_exit(self, describe_exit(self._process.exitcode))

    def kill(self) -> None:
        """SIGKILL, for a worker that does not exit when told."""
        if self._process.is_alive():
            self._process.kill()

    async def join(self, timeout_s: float) -> bool:
        """Wait for the process to end; True when it has (or never started)."""
        if self.pid is None:
            return True
        await asyncio.to_thread(self._process.join, timeout_s)
        return not self._process.is_alive()

    def close(self) -> None:
        """Stop listening and close the pipe (after the process ended: its end of the pipe is
        closed, so the listener meets the end at once). The listener is let finish first: a
        descriptor closed under a read in progress could be reused by the next file opened.
        """
        self._closed = True
        if self._listener is not None:
            self._listener.join(LISTENER_JOIN_S)
        self._conn.close()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ctrl+C ignored while a worker is spawned, so it is ignored from the child's birth (an
    ignored signal stays ignored through exec, and Python leaves it so): set only in
    ``process_main``, a Ctrl+C while the child still imports the engine killed it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal dispositions belong to the main thread; process_main still sets it
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def describe_exit(code: int | None) -> str:
    """``killed by signal 9``, ``exited with code 1``, or ``exited``."""
    if code is None:
        return "stopped answering"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name} ({-code})"
        return f"killed by signal {-code}"
    return "exited" if code == 0 else f"exited with code {code}"
