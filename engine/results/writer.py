"""The results folder: ``run.json``, ``requests.jsonl`` and ``summary.json``.

``requests.jsonl`` is appended one line per request and flushed the moment the request ends,
so a ``kill -9`` loses at most the line being written. ``summary.json`` and ``run.json`` are
replaced atomically (write to a temporary file, then rename), after every profile and at the
end, so they are never half-written.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from engine.events import Event, ProfileFinished, RequestFinished, RunFinished
from engine.metrics.summary import ProfileSummary
from engine.results.layout import REQUESTS_FILE, RUN_FILE, SUMMARY_FILE
from engine.status import RunStatus


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to ``path`` so readers see the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


class ResultsWriter:
    """An event sink that owns the run's results folder."""

    def __init__(self, run_dir: Path, run_meta: dict[str, Any]) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self._meta = {**run_meta, "status": RunStatus.RUNNING}
        write_json_atomic(run_dir / RUN_FILE, self._meta)
        self._requests: TextIO = open(run_dir / REQUESTS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._profiles: list[ProfileSummary] = []

    def update_meta(self, **fields: Any) -> None:
        """Merge ``fields`` into ``run.json`` and rewrite it."""
        self._meta.update(fields)
        write_json_atomic(self.run_dir / RUN_FILE, self._meta)

    def handle(self, event: Event) -> None:
        """Persist records and summaries as they become final."""
        if isinstance(event, RequestFinished):
            self._requests.write(event.record.model_dump_json() + "\n")
            self._requests.flush()
        elif isinstance(event, ProfileFinished):
            self._profiles.append(event.summary)
            write_json_atomic(
                self.run_dir / SUMMARY_FILE,
                {"status": RunStatus.RUNNING, "profiles": [p.model_dump() for p in self._profiles]},
            )
        elif isinstance(event, RunFinished):
            write_json_atomic(self.run_dir / SUMMARY_FILE, event.summary.model_dump())
            self.update_meta(
                status=event.summary.status,
                exit_code=event.summary.exit_code,
                ended_unix_s=time.time(),
            )

    def close(self) -> None:
        """Close ``requests.jsonl``."""
        self._requests.close()
