"""What the keyboard can ask of a run. ``tui.live.engine_process.EngineProcess`` answers for a
live run (the engine in its own process); ``ReadOnly`` for a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.workload.profile import Profile


class Controls(Protocol):
    """The run actions the UI offers; every method returns at once."""

    read_only: bool
    """True when nothing can be changed (a replay, a browser following a run)."""
    read_only_reason: str
    """What a person is told when a key that changes a run is pressed where ``read_only``."""

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


class ReadOnly:
    """Controls of a screen that cannot change its run (a replay; a browser's view)."""

    read_only = True

    def __init__(self, reason: str = "replay: a finished run cannot be changed") -> None:
        self.read_only_reason = reason

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None
