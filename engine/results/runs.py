"""Runs after the fact: find results folders, load them, rebuild what a killed run lacks.

The folders are the only source of truth: nothing is indexed or cached, so a listing can never
disagree with what is on disk. A run without a final ``summary.json`` (killed, or still going)
is ``incomplete``: its per-profile figures are rebuilt from ``requests.jsonl`` with the
engine's own aggregate (``ProfileAggregate``), so they are computed exactly as a finished run's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from engine.metrics.knee import Knee, find_knees
from engine.metrics.summary import (
    LATENCY_FIELDS,
    Distribution,
    ProfileAggregate,
    ProfileSummary,
    RunSummary,
    Slo,
)
from engine.records import RequestRecord
from engine.results.folder import RunFolderError, is_run_dir, iter_records, read_json
from engine.results.layout import RUN_FILE, SUMMARY_FILE
from engine.stats import NS
from engine.status import FINAL_RUN_STATUSES, ProfileStatus, RunStatus
from engine.workload.profile import Profile


class RunInfo(BaseModel):
    """One results folder as read back: what ``llmtop runs`` lists and compare/report use."""

    path: str
    """The run folder."""
    run_id: str
    """Run id (the folder name unless run.json says otherwise)."""
    status: RunStatus
    """``completed``, ``interrupted``, ``failed`` or ``incomplete`` (no final summary.json)."""
    started_unix_s: float | None
    """Wall-clock start of the run."""
    duration_s: float | None
    """Wall time of the run (incomplete: up to its last recorded request)."""
    model: str | None
    """Model requested."""
    server_kind: str | None
    """Detected server implementation."""
    url: str | None
    """Server URL (credentials removed)."""
    suites: list[str]
    """Suites the run was started with (``--suite``), if any."""
    profiles: list[ProfileSummary]
    """Per-profile figures, in run order."""
    rebuilt_profiles: list[str]
    """Profiles whose figures were rebuilt from requests.jsonl (no summary held them)."""
    knees: list[Knee]
    """Knees of the run's ladders or sweeps (engine/metrics/knee.py)."""
    slo: Slo
    """The run's SLOs."""
    notes: list[str]
    """What was missing or damaged in the folder, and what was done about it."""
    definitions: list[dict[str, Any]] = Field(default_factory=list, exclude=True)
    """The run's profile definitions from run.json."""

    @property
    def complete(self) -> bool:
        """False when the run has no final summary (killed, or still running)."""
        return self.status is not RunStatus.INCOMPLETE

    def profile(self, name: str) -> ProfileSummary | None:
        """The figures of profile ``name``, if the run has it."""
        return next((p for p in self.profiles if p.profile == name), None)

    def definition(self, name: str) -> dict[str, Any] | None:
        """Profile ``name`` as run.json recorded it."""
        return next((d for d in self.definitions if d.get("name") == name), None)


def load_run(path: Path) -> RunInfo:
    """Read one run folder; a killed or damaged one loads too, with notes.

    Raises:
        RunFolderError: ``path`` is not a folder, or holds none of the run files.

    """
    if not path.is_dir():
        raise _missing_run_folder(path)
    if not is_run_dir(path):
        raise RunFolderError(
            f"{path} is not a run folder: it holds none of run.json, summary.json, requests.jsonl"
        )
    notes: list[str] = []
    meta = read_json(path / RUN_FILE, notes) or {}
    summary_path = path / SUMMARY_FILE
    summary = _final_summary(
        read_json(summary_path, notes) if summary_path.is_file() else None, notes
    )
    slo = _slo(meta, summary)
    definitions = [d for d in meta.get("profiles") or [] if isinstance(d, dict)]
    profiles: list[ProfileSummary]
    rebuilt: list[str]
    duration: float | None
    if summary is not None:
        profiles, rebuilt, duration = summary.profiles, [], summary.duration_s
    else:
        partial = _partial_profiles(path / SUMMARY_FILE, notes)
        profiles, rebuilt, duration = _rebuild(path, partial, definitions, slo, notes)
        notes.append(_incomplete_note(partial, rebuilt))
    knees = summary.knees if summary and summary.knees else find_knees(profiles, definitions, slo)
    return RunInfo(
        path=str(path),
        run_id=str(meta.get("run_id") or path.name),
        status=summary.status if summary else RunStatus.INCOMPLETE,
        started_unix_s=meta.get("started_unix_s")
        or (summary and summary.started_unix_s)
        or path.stat().st_mtime,
        duration_s=duration,
        model=meta.get("model"),
        server_kind=meta.get("server_kind"),
        url=meta.get("url"),
        suites=_suites(meta),
        profiles=profiles,
        rebuilt_profiles=rebuilt,
        knees=knees,
        slo=slo,
        notes=notes,
        definitions=definitions,
    )


def _incomplete_note(partial: list[ProfileSummary], rebuilt: list[str]) -> str:
    """Where a run without a final summary got its figures from."""
    if rebuilt:
        source = (
            f"figures of {', '.join(rebuilt)} rebuilt from requests.jsonl (ITL only where "
            "the run saved raw gaps, --save-itl)"
        )
    elif partial:
        # Killed after its last profile's summary was written: the records are all there,
        # in profiles that summary already holds (not "no request was recorded").
        names = ", ".join(p.profile for p in partial)
        source = f"figures of {names} from summary.json as written after each profile"
    else:
        source = "no request was recorded"
    return f"no final summary.json: the run did not finish; {source}"


def _suites(meta: dict[str, Any]) -> list[str]:
    """The suites a run was asked for: ``options.suites`` in run.json, or ``arguments.suite``
    in folders written before the options were recorded by name (llmtop 0.1 before schema 1).
    """
    options = meta.get("options")
    if isinstance(options, dict):
        return [str(s) for s in options.get("suites") or []]
    return [str(s) for s in (meta.get("arguments") or {}).get("suite") or []]


def _final_summary(data: dict[str, Any] | None, notes: list[str]) -> RunSummary | None:
    if data is None or data.get("status") not in FINAL_RUN_STATUSES:
        return None
    try:
        return RunSummary.model_validate(data)
    except ValidationError as exc:
        notes.append(
            f"summary.json does not match this llmtop's format "
            f"({exc.error_count()} errors): figures rebuilt from requests.jsonl"
        )
        return None


def _partial_profiles(path: Path, notes: list[str]) -> list[ProfileSummary]:
    """Profiles finished before a kill: the running ``summary.json`` written after each."""
    data = read_json(path, []) if path.is_file() else None
    try:
        return [ProfileSummary.model_validate(p) for p in (data or {}).get("profiles") or []]
    except (ValidationError, TypeError):
        notes.append("summary.json profiles unreadable: ignored")
        return []


def _slo(meta: dict[str, Any], summary: RunSummary | None) -> Slo:
    if summary and summary.profiles:
        return summary.profiles[0].slo
    try:
        return Slo.model_validate(meta.get("slo") or {})
    except ValidationError:
        return Slo()


def _rebuild(
    path: Path,
    done: list[ProfileSummary],
    definitions: list[dict[str, Any]],
    slo: Slo,
    notes: list[str],
) -> tuple[list[ProfileSummary], list[str], float | None]:
    """Aggregate the records of profiles no summary holds, in the order they appear."""
    finished = {p.profile for p in done}
    aggregates: dict[str, ProfileAggregate] = {}
    window: dict[str, list[int]] = {}
    last_end_ns = 0
    for record in iter_records(path, notes):
        last_end_ns = max(last_end_ns, record.end_ns)
        if record.profile in finished:
            continue
        if record.profile not in aggregates:
            aggregates[record.profile] = ProfileAggregate(_profile(record, definitions), slo)
        aggregates[record.profile].add(record, record.itl_s or ())
        if not record.warmup:
            span = window.setdefault(record.profile, [record.scheduled_ns, record.end_ns])
            span[0], span[1] = min(span[0], record.scheduled_ns), max(span[1], record.end_ns)
    rebuilt = [
        agg.summarize(
            (window[n][1] - window[n][0]) / NS if n in window else 0.0, ProfileStatus.INCOMPLETE
        )
        for n, agg in aggregates.items()
    ]
    return done + rebuilt, list(aggregates), (last_end_ns / NS if last_end_ns else None)


EXACT_FIELDS = (*LATENCY_FIELDS, "itl_s", "input_length_error_pct")
"""The distributions ``exact_distributions`` recomputes."""


def exact_distributions(path: Path) -> dict[str, dict[str, Distribution | None]]:
    """Each profile's latency distributions recomputed exactly from ``requests.jsonl``.

    A live run keeps ``EXACT_SAMPLES`` values per figure and sketches the rest
    (``Distribution.exact`` false, percentiles within 0.5 %); this reads every record again
    and keeps every value (memory grows with the run: 8 bytes per value). ITL is pooled from
    the raw gaps, so it is there only where the run saved them (``--save-itl``).

    Raises:
        RunFolderError: ``path`` is not a run folder.

    """
    if not is_run_dir(path):
        raise RunFolderError(f"{path} is not a run folder")
    meta = read_json(path / RUN_FILE, []) or {}
    definitions = [d for d in meta.get("profiles") or [] if isinstance(d, dict)]
    aggregates: dict[str, ProfileAggregate] = {}
    for record in iter_records(path, []):
        if record.profile not in aggregates:
            profile = _profile(record, definitions)
            aggregates[record.profile] = ProfileAggregate(profile, Slo(), exact_limit=None)
        aggregates[record.profile].add(record, record.itl_s or ())
    summaries = {n: a.summarize(1.0, ProfileStatus.INCOMPLETE) for n, a in aggregates.items()}
    return {n: {f: getattr(s, f) for f in EXACT_FIELDS} for n, s in summaries.items()}


def _profile(record: RequestRecord, definitions: list[dict[str, Any]]) -> Profile:
    """The record's profile from run.json; a bare one from the record when run.json lacks it."""
    for data in definitions:
        if data.get("name") == record.profile:
            try:
                return Profile.model_validate(data)
            except ValidationError:
                break
    load = (
        {"concurrency": record.concurrency}
        if record.concurrency is not None
        else {"rate_rps": record.rate_rps or 1.0}
    )
    return Profile.model_validate({"name": record.profile, "endpoint": record.endpoint, **load})


def discover_runs(root: Path) -> list[Path]:
    """Run folders under ``root``, at any depth (a matrix's configurations), in name order.

    Raises:
        RunFolderError: ``root`` does not exist or is not a folder.

    """
    if not root.is_dir():
        problem = "is a file, not a results folder" if root.exists() else "does not exist"
        raise RunFolderError(
            f"results folder {root} {problem} (use --root DIR; "
            "`llmtop run --output DIR` writes runs there)"
        )
    return list(_walk(root))


def _walk(root: Path) -> Iterator[Path]:
    if is_run_dir(root):
        yield root
        return
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            yield from _walk(Path(entry.path))


def resolve_run(ref: str, root: Path) -> Path:
    """A run folder from a path, or a run id or unique id prefix under ``root``.

    Ids are folder names and the ids run.json records (an archived folder may be renamed).

    Raises:
        RunFolderError: Nothing, or more than one run, matches ``ref``.

    """
    path = Path(ref)
    if path.is_dir():
        if not is_run_dir(path):
            raise RunFolderError(
                f"{ref} is not a run folder: it holds none of run.json, "
                "summary.json, requests.jsonl"
            )
        return path
    if "/" in ref or path.exists():
        raise _missing_run_folder(path)
    if not root.is_dir():
        raise RunFolderError(f"no run folder {ref}, and results folder {root} does not exist")
    runs = discover_runs(root)
    ids = {p: {p.name, _recorded_id(p)} for p in runs}
    matches = [p for p in runs if ref in ids[p]] or [
        p for p in runs if any(i.startswith(ref) for i in ids[p])
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunFolderError(
            f"no run '{ref}' under {root} ({len(runs)} runs there; "
            "`llmtop runs` lists them; or give a folder path)"
        )
    raise RunFolderError(
        f"'{ref}' matches {len(matches)} runs under {root}: "
        f"{', '.join(p.name for p in matches[:5])}; give more of the id"
    )


def _missing_run_folder(path: Path) -> RunFolderError:
    """Why ``path`` (not a folder) is no run: absent, or a file given where the folder belongs
    (``requests.jsonl`` or ``summary.json`` itself, a report).
    """
    if path.exists():
        return RunFolderError(
            f"{path} is a file, not a run folder: give the folder that holds run.json, "
            "summary.json and requests.jsonl"
        )
    return RunFolderError(f"{path}: no such folder")


def _recorded_id(path: Path) -> str:
    """The run id run.json records (archived folders are often renamed), else the name."""
    meta = read_json(path / RUN_FILE, []) if (path / RUN_FILE).is_file() else None
    return str((meta or {}).get("run_id") or path.name)


def load_runs(refs: Iterable[str], root: Path) -> list[RunInfo]:
    """Resolve and load each reference, in order."""
    return [load_run(resolve_run(ref, root)) for ref in refs]
