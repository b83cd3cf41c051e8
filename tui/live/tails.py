"""The results files that another process appends to, read as they grow, into a ``LiveState``.

A screen whose engine runs elsewhere (the live screen's child process; the run a browser
follows) gets records and telemetry samples this way rather than through a pipe: the engine
writes and flushes them anyway, so it pays nothing extra per request.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from engine.events import RequestFinished
from engine.records import RequestRecord
from engine.results.layout import REQUESTS_FILE, SAMPLES_FILE
from engine.telemetry.samples import event_from_line
from tui.live.state import LiveState


class RunFolderTail:
    """New records and samples of one run folder, applied to a state on each ``read``."""

    def __init__(self, run_dir: Path, state: LiveState) -> None:
        self.state = state
        self._requests = LineTail(run_dir / REQUESTS_FILE)
        self._samples = LineTail(run_dir / SAMPLES_FILE)

    def read(self) -> None:
        """Apply what was appended since the last call (complete lines only)."""
        for data in self._requests.lines():
            with contextlib.suppress(ValidationError):
                self.state.apply(RequestFinished(RequestRecord.model_validate(data)))
        for line in self._samples.lines():
            event = event_from_line(line)
            if event is not None:
                self.state.apply(event)


class LineTail:
    """New complete JSON-object lines of a file that another process appends to."""

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
