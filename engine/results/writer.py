"""The results folder: ``run.json``, ``requests.jsonl`` and ``summary.json``.

``requests.jsonl`` is appended one line per request, written the moment the request ends, so a
``kill -9`` loses at most the line being written. ``summary.json`` and ``run.json`` are
replaced atomically (write to a temporary file, then rename), after every profile and at the
end, so they are never half-written.

A write that fails (disk full, quota, I/O error) raises ``WriteFailed``: the writer is then
detached and the engine stops the run at once (README "When the disk fills"). What is on disk
stays parseable: a partial last line is cut off, a partial temporary JSON file removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from engine.errors import WriteFailed
from engine.events import Event, ProfileFinished, RequestFinished
from engine.lines import LineFile
from engine.metrics.summary import ProfileSummary, RunSummary
from engine.results.layout import REQUESTS_FILE, RUN_FILE, SUMMARY_FILE
from engine.status import RunStatus


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to ``path`` so readers see the old or the new file, never a partial one.

    Raises ``WriteFailed`` (the old file left as it was) when it cannot be written.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteFailed(str(path), exc) from exc


class ResultsWriter:
    """An event sink that owns the run's results folder."""

    def __init__(self, run_dir: Path, run_meta: dict[str, Any]) -> None:
        self.run_dir = run_dir
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteFailed(str(run_dir), exc) from exc
        self._meta = {**run_meta, "status": RunStatus.RUNNING}
        write_json_atomic(run_dir / RUN_FILE, self._meta)
        try:
            self._requests = LineFile(run_dir / REQUESTS_FILE)
        except OSError as exc:
            raise WriteFailed(str(run_dir / REQUESTS_FILE), exc) from exc
        self._profiles: list[ProfileSummary] = []

    @property
    def saved(self) -> int:
        """Request records on disk, intact."""
        return self._requests.lines

    def update_meta(self, **fields: Any) -> None:
        """Merge ``fields`` into ``run.json`` and rewrite it."""
        self._meta.update(fields)
        write_json_atomic(self.run_dir / RUN_FILE, self._meta)

    def handle(self, event: Event) -> None:
        """Persist records and profile summaries as they become final."""
        if isinstance(event, RequestFinished):
            self._requests.write(event.record.model_dump_json())
        elif isinstance(event, ProfileFinished):
            self._profiles.append(event.summary)
            write_json_atomic(
                self.run_dir / SUMMARY_FILE,
                {"status": RunStatus.RUNNING, "profiles": [p.model_dump() for p in self._profiles]},
            )

    def finish(self, summary: RunSummary, **meta: Any) -> None:
        """Write the final ``summary.json`` and ``run.json`` (status, exit code, end time).

        Raises ``WriteFailed`` when either cannot be written.
        """
        write_json_atomic(self.run_dir / SUMMARY_FILE, summary.model_dump())
        self.update_meta(
            **meta,
            status=summary.status,
            exit_code=summary.exit_code,
            ended_unix_s=time.time(),
        )

    def close(self) -> None:
        """Close ``requests.jsonl``."""
        self._requests.close()
