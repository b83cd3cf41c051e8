"""A results folder read back as the engine's events, in time order, for ``llmtop replay``.

``load_recorded_run`` turns a finished (or killed) run folder into a ``RecordedRun``: the
events the engine would have published, each at its time in seconds from the run's clock
origin. Nothing is re-measured. What the folder does not hold is rebuilt from the records:
the engine's live snapshots (rates, counters, in-flight counts: ``engine.analysis.snapshots``)
and the queue, profile by profile in the order they ran. Folding the events into a screen's
state is the UI's business (``tui.live.replay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.analysis.snapshots import profile_snapshots, snapshot_step_s
from engine.errors import InputError
from engine.events import (
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RequestFinished,
    RunFinished,
    RunStarted,
)
from engine.metrics.summary import ProfileSummary, RunSummary, Slo
from engine.records import RequestRecord
from engine.results.folder import iter_records, iter_samples, jsonl_file, read_json
from engine.results.layout import REQUESTS_FILE, RUN_FILE, SUMMARY_FILE
from engine.status import ProfileStatus
from engine.telemetry.gpu import NO_GPU
from engine.telemetry.samples import event_from_line
from engine.workload.profile import Profile
from engine.workload.queue import ScenarioQueue


class ReplayError(InputError):
    """The folder is not a run llmtop can show (bad input: the command exits 2)."""


@dataclass(frozen=True)
class RecordedRun:
    """A run's events in time order (seconds from the run's clock origin)."""

    events: list[tuple[float, Any]]
    """``(t_s, event)`` pairs, sorted by ``t_s``."""
    duration_s: float
    """Time of the last event."""
    slo: Slo
    """The run's service-level objectives, from ``run.json``."""
    notes: list[str]
    """What was missing or skipped while reading the folder."""
    complete: bool = True
    """False when the folder has no final summary (the run was killed)."""


def load_recorded_run(run_dir: Path) -> RecordedRun:
    """Read a run folder into a ``RecordedRun``; ``ReplayError`` names what is wrong."""
    if not run_dir.is_dir():
        raise ReplayError(
            f"{run_dir} is not a folder; give a results folder such as "
            f"llmtop-results/20261121-081455-2a60"
        )
    if jsonl_file(run_dir, REQUESTS_FILE) is None:
        raise ReplayError(f"{run_dir} holds no {REQUESTS_FILE}: not an llmtop results folder")
    notes: list[str] = []
    meta = read_json(run_dir / RUN_FILE, notes) or {}
    records = list(iter_records(run_dir, notes))
    summary = _summary(read_json(run_dir / SUMMARY_FILE, []), notes)
    profiles = _profiles(meta, records)
    events: list[tuple[float, Any]] = [(0.0, _run_started(run_dir, meta, profiles))]
    events += [(r.end_ns / 1e9, RequestFinished(r)) for r in records]
    sampled = [event_from_line(line) for line in iter_samples(run_dir, notes)]
    samples = [(e.t_ns / 1e9, e) for e in sampled if e is not None]
    if not any(e.kind == "gpu" for _, e in samples):
        events.append((0.0, NoticeRaised("info", f"the run recorded no GPU samples: {NO_GPU}")))
    events += samples
    end = max((when for when, _ in events), default=0.0)
    events += _profile_events(profiles, records, summary, end)
    if summary is not None:
        events.append((end, RunFinished(summary)))
    else:
        notes.append("no final summary.json: the run was killed or is still going")
    events.sort(key=lambda pair: pair[0])
    slo = Slo.model_validate(meta.get("slo") or {})
    return RecordedRun(events, end, slo, notes, complete=summary is not None)


def _run_started(run_dir: Path, meta: dict[str, Any], profiles: list[Profile]) -> RunStarted:
    return RunStarted(
        run_id=str(meta.get("run_id", run_dir.name)),
        results_dir=str(run_dir),
        url=str(meta.get("url", "?")),
        model=str(meta.get("model", "?")),
        server_kind=str(meta.get("server_kind", "?")),
        profiles=tuple(p.name for p in profiles),
    )


def _summary(data: dict[str, Any] | None, notes: list[str]) -> RunSummary | None:
    if not data or data.get("status") == "running":
        return None
    try:
        return RunSummary.model_validate(data)
    except ValidationError:
        notes.append(f"{SUMMARY_FILE} does not match this llmtop version: not shown")
        return None


def _profiles(meta: dict[str, Any], records: list[RequestRecord]) -> list[Profile]:
    """Profiles in run order: from run.json where it has them, else named by the records."""
    profiles = []
    for dump in meta.get("profiles") or []:
        try:
            profiles.append(Profile.model_validate(dump))
        except ValidationError:
            continue
    known = {p.name for p in profiles}
    for record in records:
        if record.profile not in known:
            known.add(record.profile)
            profiles.append(Profile.model_validate({"name": record.profile}))
    return profiles


def _profile_events(
    profiles: list[Profile],
    records: list[RequestRecord],
    summary: RunSummary | None,
    end_s: float,
) -> list[tuple[float, Any]]:
    """Each profile's start, snapshots and end, and the queue as it changed, placed at the
    profile's first and last request; at the end, what never ran is skipped, as the engine
    marks it (a killed run has no end: its queue stays as it was).
    """
    by_profile: dict[str, list[RequestRecord]] = {}
    for r in records:
        by_profile.setdefault(r.profile, []).append(r)
    finals = {p.profile: p for p in summary.profiles} if summary else {}
    # The engine's own queue, driven as the run drove it: entries change as they did live.
    queue = ScenarioQueue(profiles)
    ids = {e.name: e.entry_id for e in queue.entries}
    events: list[tuple[float, Any]] = [(0.0, QueueChanged(queue.entries))]
    # In the order they ran, which a person may have changed (switch, re-run, add).
    ran = sorted(
        (p for p in profiles if p.name in by_profile),
        key=lambda p: min(r.scheduled_ns for r in by_profile[p.name]),
    )
    step_s = snapshot_step_s(end_s)
    for index, profile in enumerate(ran):
        own = by_profile[profile.name]
        start = min(r.scheduled_ns for r in own) / 1e9
        end = max(r.end_ns for r in own) / 1e9
        queue.move_next(ids[profile.name])
        queue.start_next()
        events += [
            (start, ProfileStarted(profile, index, len(profiles))),
            (start, QueueChanged(queue.entries)),
        ]
        events += profile_snapshots(profile, own, step_s)
        final: ProfileSummary | None = finals.get(profile.name)
        if final is not None:
            queue.finish(ids[profile.name], final.status, final.requests, final.failures)
            events.append((end, ProfileFinished(final)))
        else:  # no final figures: the run was killed while this profile ran
            queue.finish(ids[profile.name], ProfileStatus.STOPPED, 0, 0)
        events.append((end, QueueChanged(queue.entries)))
    if summary is not None and queue.pending():
        queue.skip_pending()
        events.append((end_s, QueueChanged(queue.entries)))
    return events
