"""Reading a results folder back, as it is: complete, killed mid-run, or damaged.

A run killed with ``kill -9`` has no final ``summary.json`` and may end ``requests.jsonl`` in a
half-written line; archived runs may be gzipped (``requests.jsonl.gz``, as in ``bench/gpu``).
Nothing here raises on a damaged file: what cannot be read is skipped and said in a note, so a
listing or a report still shows everything that survived.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from engine.errors import InputError
from engine.records import RequestRecord
from engine.results.layout import REQUESTS_FILE, RUN_FILE, SAMPLES_FILE, SUMMARY_FILE

MARKER_FILES = (RUN_FILE, SUMMARY_FILE, REQUESTS_FILE, f"{REQUESTS_FILE}.gz")
"""A folder holding any of these is a run folder."""
MAX_NOTES_PER_FILE = 5
"""Bad lines named individually per file; beyond that they are only counted."""


class RunFolderError(InputError):
    """A path that is not a readable run folder (the message says what and why)."""


def is_run_dir(path: Path) -> bool:
    """True when ``path`` is a folder with any of ``run.json``, ``summary.json``, requests."""
    return path.is_dir() and any((path / name).is_file() for name in MARKER_FILES)


def jsonl_file(run_dir: Path, name: str) -> Path | None:
    """``name`` in ``run_dir``, or its gzipped form; ``None`` when neither exists."""
    for candidate in (run_dir / name, run_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    """A JSON object from ``path``; ``None`` (and a note) when missing or unreadable."""
    if not path.is_file():
        notes.append(f"{path.name} missing")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{path.name} unreadable ({type(exc).__name__}): ignored")
        return None
    if not isinstance(data, dict):
        notes.append(f"{path.name} is not a JSON object: ignored")
        return None
    return data


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def iter_json_lines(path: Path, notes: list[str]) -> Iterator[dict[str, Any]]:
    """Each JSON object line of a JSONL file (plain or gzipped), damaged lines skipped.

    A last line without its newline that does not parse is what a kill during a write leaves:
    it is skipped with a note saying so. Other bad lines are skipped and counted.
    """
    bad = 0
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError:
                    value = None
                if isinstance(value, dict):
                    yield value
                    continue
                if not line.endswith(b"\n"):
                    notes.append(
                        f"{path.name}: truncated last line {number} skipped "
                        "(the run was killed while writing it)"
                    )
                    continue
                bad += 1
                if bad <= MAX_NOTES_PER_FILE:
                    notes.append(f"{path.name}: line {number} is not a JSON object: skipped")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        notes.append(f"{path.name}: reading stopped early ({type(exc).__name__}: {exc})")
    if bad > MAX_NOTES_PER_FILE:
        notes.append(f"{path.name}: {bad} bad lines skipped in all")


def iter_records(run_dir: Path, notes: list[str]) -> Iterator[RequestRecord]:
    """The run's request records in file order; lines that are not records are noted."""
    path = jsonl_file(run_dir, REQUESTS_FILE)
    if path is None:
        notes.append(f"{REQUESTS_FILE} missing")
        return
    invalid = 0
    for data in iter_json_lines(path, notes):
        try:
            yield RequestRecord.model_validate(data)
        except ValidationError:
            invalid += 1
    if invalid:
        notes.append(f"{path.name}: {invalid} lines are not request records: skipped")


def iter_samples(run_dir: Path, notes: list[str]) -> Iterator[dict[str, Any]]:
    """Telemetry samples (``samples.jsonl``), nothing when the run has none."""
    path = jsonl_file(run_dir, SAMPLES_FILE)
    if path is not None:
        yield from iter_json_lines(path, notes)


def latency_columns(
    run_dir: Path, fields: tuple[str, ...], notes: list[str]
) -> dict[str, dict[str, list[float]]]:
    """Per profile, each field's values over successful measured requests (as the summary's).

    Returns:
        ``{profile: {field: [values...]}}``; a record without a value for a field is skipped
        for that field only. One float per request and field, never the records themselves.

    """
    columns: dict[str, dict[str, list[float]]] = {}
    for record in iter_records(run_dir, notes):
        if record.warmup or not record.ok:
            continue
        profile = columns.setdefault(record.profile, {name: [] for name in fields})
        for name in fields:
            value = getattr(record, name)
            if value is not None:
                profile[name].append(value)
    return columns
