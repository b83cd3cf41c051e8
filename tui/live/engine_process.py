"""The engine in a process of its own while the live screen runs.

Sharing a process meant sharing the GIL: each repaint delayed the engine's loop, and with it
every chunk timestamp (bench/RESULTS.md, "With the live screen"). So the screen's process
starts the engine in a spawned child and talks to it through two pipes:

* events, child to screen: the low-rate ones (queue, profile start and end, snapshots at
  4 Hz, notices, the run's end), pickled as they are published;
* controls, screen to child: ``(method, args)`` for the ``Controls`` methods.

Per-request records and telemetry samples do not cross the pipe at all: the screen reads
them from ``requests.jsonl`` and ``samples.jsonl``, which the engine writes and flushes
anyway, so the child pays nothing extra per request and the screen shows what is on disk.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from engine.errors import RunError
from engine.events import (
    Event,
    EventBus,
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RequestFinished,
    RunFinished,
    RunStarted,
    SendingPaused,
    SnapshotTaken,
    ValidityWarned,
)
from engine.metrics.summary import RunSummary
from engine.records import RequestRecord
from engine.results.layout import REQUESTS_FILE, SAMPLES_FILE
from engine.run.config import RunConfig
from engine.telemetry.samples import event_from_line
from engine.workload.profile import Profile
from tui.live.state import LiveState

if TYPE_CHECKING:
    from engine.run.engine import Engine

FORWARDED = (
    RunStarted,
    ProfileStarted,
    ProfileFinished,
    RunFinished,
    NoticeRaised,
    QueueChanged,
    SendingPaused,
    SnapshotTaken,
    ValidityWarned,
)
"""Events sent over the pipe; records and samples are read from the results folder."""
CONTROLS = (
    "switch_to",
    "next_profile",
    "set_paused",
    "add_profile",
    "remove_entry",
    "rerun",
    "end_run",
    "interrupt",
    "server_exited",
)
"""Engine methods the screen may call."""
POLL_S = 0.1
"""How often the screen's reader looks at the results files when no event arrives."""


@dataclass(frozen=True)
class EngineJob:
    """Everything the child needs to build the run's engine (picklable; it crosses a pipe
    to the spawned process, never the disk)."""

    config: RunConfig
    """The run, complete: the child builds its engine from this alone."""
    run_id: str

    @property
    def run_dir(self) -> Path:
        return self.config.results_root / self.run_id


# -- the child ----------------------------------------------------------------------------


class _PipeSink:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def handle(self, event: Event) -> None:
        if isinstance(event, FORWARDED):
            self.conn.send(event)


def engine_main(job: EngineJob, events: Connection, controls: Connection) -> None:
    """The child's entry point: run the engine, obey controls, forward events."""
    from engine.run.engine import Engine

    # The terminal's Ctrl+C reaches the whole process group; the screen decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bus = EventBus()
    engine = Engine(job.config, bus, run_id=job.run_id)
    bus.subscribe(_PipeSink(events))

    async def main() -> RunSummary:
        import asyncio

        loop = asyncio.get_running_loop()
        # SIGHUP too: when the screen's process dies, the kernel hangs up this orphaned
        # process group; the run must still record its in-flight requests and its summary.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, engine.interrupt)
        loop.add_reader(controls.fileno(), _obey, engine, controls)
        return await engine.run()

    try:
        _run(main)
    except RunError as exc:
        # Before the run could start (its folder could not be written): one line for the
        # screen, and the exit code that says why, never a traceback over the screen.
        events.send(NoticeRaised("error", str(exc)))
        sys.exit(int(exc.exit_code))
    finally:
        events.close()


def _run(main: Callable[[], Coroutine[Any, Any, RunSummary]]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        import asyncio

        asyncio.run(main())
        return
    uvloop.run(main())


def _obey(engine: Engine, controls: Connection) -> None:
    while controls.poll():
        try:
            name, args = controls.recv()
        except EOFError:  # the screen is gone: stop as Ctrl+C would
            import asyncio

            asyncio.get_running_loop().remove_reader(controls.fileno())
            engine.interrupt()
            return
        if name in CONTROLS:
            getattr(engine, name)(*args)


# -- the screen's side --------------------------------------------------------------------


class EngineProcess:
    """``Controls`` for an engine in a child process, and the reader that feeds the screen."""

    read_only = False

    def __init__(self, job: EngineJob, state: LiveState) -> None:
        self.job = job
        self.state = state
        self.summary: RunSummary | None = None
        self.error: str | None = None
        ctx = multiprocessing.get_context("spawn")
        self._events, child_events = ctx.Pipe(duplex=False)
        child_controls, self._controls = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=engine_main, name="llmtop-engine", args=(job, child_events, child_controls)
        )
        self._child_ends = (child_events, child_controls)
        self._tails = {
            REQUESTS_FILE: _Tail(job.run_dir / REQUESTS_FILE),
            SAMPLES_FILE: _Tail(job.run_dir / SAMPLES_FILE),
        }
        self._reader = threading.Thread(target=self._read, name="llmtop-events", daemon=True)

    def start(self) -> None:
        """Spawn the engine and start reading what it reports."""
        self._process.start()
        for end in self._child_ends:
            end.close()
        self._reader.start()

    @property
    def running(self) -> bool:
        """True until the engine process has ended and its last events were read."""
        return self._reader.is_alive()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the run to end; True when it has."""
        self._reader.join(timeout_s)
        self._process.join(0 if self._reader.is_alive() else timeout_s)
        return not self._reader.is_alive()

    def kill(self) -> None:
        """Last resort when the engine does not end: SIGKILL (its records are on disk)."""
        if self._process.is_alive():
            self._process.kill()

    def _read(self) -> None:
        """Drain the event pipe (so the child never blocks on it) and tail the files."""
        while True:
            try:
                ready = self._events.poll(POLL_S)
                while ready:
                    self._apply(self._events.recv())
                    ready = self._events.poll()
            except (EOFError, OSError):
                break
            self._tail()
        self._tail()
        self._process.join(10)
        if self.summary is None and self.error is None:
            self.error = (
                f"the engine process ended (exit code {self._process.exitcode}) "
                "without a summary; the records it wrote are in the results folder"
            )
            self.state.apply(NoticeRaised("error", self.error))

    @property
    def exit_code(self) -> int | None:
        """The engine process's exit code once it has ended."""
        return self._process.exitcode

    def _apply(self, event: Any) -> None:
        if isinstance(event, NoticeRaised) and event.level == "error" and self.summary is None:
            self.error = event.message
        if isinstance(event, RunFinished):
            self._tail()  # every record before the end
            self.summary = event.summary
        self.state.apply(event)

    def _tail(self) -> None:
        for data in self._tails[REQUESTS_FILE].lines():
            with contextlib.suppress(ValidationError):
                self.state.apply(RequestFinished(RequestRecord.model_validate(data)))
        for line in self._tails[SAMPLES_FILE].lines():
            event = event_from_line(line)
            if event is not None:
                self.state.apply(event)

    # -- Controls --

    def _send(self, name: str, *args: Any) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._controls.send((name, args))

    def switch_to(self, entry_id: int) -> None:  # noqa: D102 - see tui.live.controls.Controls
        self._send("switch_to", entry_id)

    def next_profile(self) -> None:  # noqa: D102
        self._send("next_profile")

    def set_paused(self, paused: bool) -> None:  # noqa: D102
        self._send("set_paused", paused)

    def add_profile(self, profile: Profile) -> None:  # noqa: D102
        self._send("add_profile", profile)

    def remove_entry(self, entry_id: int) -> None:  # noqa: D102
        self._send("remove_entry", entry_id)

    def rerun(self, entry_id: int) -> None:  # noqa: D102
        self._send("rerun", entry_id)

    def end_run(self) -> None:  # noqa: D102
        self._send("end_run")

    def interrupt(self) -> None:  # noqa: D102
        self._send("interrupt")

    def server_exited(self, facts: dict[str, Any], reason: str) -> None:
        """The managed server exited: the engine fails the run with its facts."""
        self._send("server_exited", facts, reason)


class _Tail:
    """New complete lines of a file that another process appends to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._rest = b""

    def lines(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:  # not there (yet), or its folder could not be made: nothing to read
            return []
        self._offset += len(chunk)
        *complete, self._rest = (self._rest + chunk).split(b"\n")
        out = []
        for line in complete:
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(line)
                if isinstance(value, dict):
                    out.append(value)
        return out
