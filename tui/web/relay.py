"""A run's low-rate events in a file, for the screens that browsers follow it with.

textual-serve starts one app process per browser connection, and the engine must run once,
not once per viewer: so the process that runs the engine appends each low-rate event
(``engine.events.LOW_RATE_EVENTS``: queue, scenario start and end, snapshots, notices,
pauses, the end) to a relay file, with the wall time it was published; each viewer reads the
file from its start (one that joins late catches up at once) and the records and samples from
the results folder, as the terminal's live screen does (``tui.live.tails``).

A frame is a 4-byte big-endian length and a pickle of ``(wall_time_s, event)``: the same
frozen dataclasses the engine's pipe to the live screen already pickles. The file lives in a
folder only this user can open (``tempfile.mkdtemp``), written and read by llmtop alone.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

from engine.events import LOW_RATE_EVENTS, Event

HEADER_BYTES = 4


class EventRelay:
    """``EventSink`` that appends the low-rate events to ``path`` (others are dropped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("ab")

    def handle(self, event: Event) -> None:
        if not isinstance(event, LOW_RATE_EVENTS):
            return
        payload = pickle.dumps((time.time(), event), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            # One write per frame, flushed: a viewer never waits for a buffer to fill.
            self._file.write(len(payload).to_bytes(HEADER_BYTES, "big") + payload)
            self._file.flush()
        except OSError as exc:
            # The browsers' view is lost, not the run: the bus detaches this sink with a notice.
            raise RuntimeError(f"the browsers' relay file could not be written: {exc}") from exc


class RelayReader:
    """The frames appended to a relay file since the last ``frames`` call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def frames(self) -> list[tuple[float, Any]]:
        """Complete frames only; a frame still being written is read next time."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:  # not there yet
            return []
        out, at = [], 0
        while len(data) - at >= HEADER_BYTES:
            size = int.from_bytes(data[at : at + HEADER_BYTES], "big")
            end = at + HEADER_BYTES + size
            if end > len(data):
                break
            out.append(pickle.loads(data[at + HEADER_BYTES : end]))
            at = end
        self._offset += at
        return out
