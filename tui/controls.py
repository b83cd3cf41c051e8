"""What the keyboard can ask of a run, and the engine thread that answers.

The Textual app runs on the main thread; the engine runs on its own event loop in a worker
thread, so the UI's repaints and key handling never delay a timestamp on the engine's loop.
Control calls cross over with ``call_soon_threadsafe``: they are queued, never awaited.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol

from engine.profile import Profile
from engine.runner import Engine
from engine.summary import RunSummary


class Controls(Protocol):
    """The run actions the UI offers; every method returns at once."""

    read_only: bool
    """True when nothing can be changed (a replay)."""

    def switch_to(self, entry_id: int) -> None:
        """Run this queue entry now."""

    def next_profile(self) -> None:
        """Stop the current scenario; the next queued one starts."""

    def set_paused(self, paused: bool) -> None:
        """Pause or resume sending."""

    def add_profile(self, profile: Profile) -> None:
        """Queue a profile at the end."""

    def remove_entry(self, entry_id: int) -> None:
        """Drop a queued entry."""

    def rerun(self, entry_id: int) -> None:
        """Queue an entry's profile again, next in line."""

    def end_run(self) -> None:
        """Stop sending, let in-flight requests finish, write the summary."""

    def interrupt(self) -> None:
        """Cancel in-flight requests (recorded as cancelled) and end the run."""


class EngineThread:
    """Runs ``engine.run()`` (wrapped by ``drive``) on a fresh loop in a daemon thread."""

    read_only = False

    def __init__(self, engine: Engine,
                 drive: Callable[[Engine], Awaitable[RunSummary]] | None = None) -> None:
        self.engine = engine
        self._drive = drive or (lambda e: e.run())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="llmtop-engine", daemon=True)

    def start(self) -> None:
        """Start the engine thread; returns once its loop accepts calls."""
        self._thread.start()
        self._ready.wait()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the run to end; True when it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """True until the run has ended and its summary is written."""
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._ready.set()
        try:
            self.summary = loop.run_until_complete(self._drive(self.engine))
        except BaseException as exc:  # noqa: BLE001 - reported by the UI, never lost
            self.error = exc
        finally:
            loop.close()

    def _call(self, method: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(method, *args)
            except RuntimeError:  # the loop closed between the check and the call
                pass

    def switch_to(self, entry_id: int) -> None:  # noqa: D102 - see Controls
        self._call(self.engine.switch_to, entry_id)

    def next_profile(self) -> None:  # noqa: D102
        self._call(self.engine.next_profile)

    def set_paused(self, paused: bool) -> None:  # noqa: D102
        self._call(self.engine.set_paused, paused)

    def add_profile(self, profile: Profile) -> None:  # noqa: D102
        self._call(self.engine.add_profile, profile)

    def remove_entry(self, entry_id: int) -> None:  # noqa: D102
        self._call(self.engine.remove_entry, entry_id)

    def rerun(self, entry_id: int) -> None:  # noqa: D102
        self._call(self.engine.rerun, entry_id)

    def end_run(self) -> None:  # noqa: D102
        self._call(self.engine.end_run)

    def interrupt(self) -> None:  # noqa: D102
        self._call(self.engine.interrupt)


class ReadOnly:
    """Controls of a replay: there is no run to change."""

    read_only = True

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None
