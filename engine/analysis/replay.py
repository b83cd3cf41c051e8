"""A results folder read back as the engine's events, in time order, for ``llmtop replay``.

``load_recorded_run`` turns a finished (or killed) run folder into a ``RecordedRun``: the
events the engine would have published, each at its time in seconds from the run's clock
origin. Nothing is re-measured. Two things the folder does not hold are rebuilt from the
records: live throughput (each request's output tokens spread evenly between its first and
last token, in ``BIN_S`` bins) and in-flight counts (requests between their send and their
end). Folding the events into a screen's state is the UI's business (``tui.live.replay``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from engine.analysis.timeline import Timeline, build_timeline
from engine.errors import InputError
from engine.events import (
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RequestFinished,
    RunFinished,
    RunStarted,
    SnapshotTaken,
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

BIN_S = 0.5
"""Width of the rebuilt throughput bins (wider for long runs: ``timeline.MAX_BINS``)."""


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
    events += _profile_events(profiles, records, summary)
    events += [(r.end_ns / 1e9, RequestFinished(r)) for r in records]
    sampled = [event_from_line(line) for line in iter_samples(run_dir, notes)]
    samples = [(e.t_ns / 1e9, e) for e in sampled if e is not None]
    if not any(e.kind == "gpu" for _, e in samples):
        events.append((0.0, NoticeRaised("info", f"the run recorded no GPU samples: {NO_GPU}")))
    events += samples + _throughput(records, _spans(records))
    end = max((when for when, _ in events), default=0.0)
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


def _spans(records: list[RequestRecord]) -> dict[str, tuple[float, float]]:
    """Each profile's first schedule and last end, seconds: when it ran."""
    spans: dict[str, tuple[float, float]] = {}
    for r in records:
        first, last = spans.get(r.profile, (r.scheduled_ns / 1e9, r.end_ns / 1e9))
        spans[r.profile] = (min(first, r.scheduled_ns / 1e9), max(last, r.end_ns / 1e9))
    return spans


def _profile_events(
    profiles: list[Profile], records: list[RequestRecord], summary: RunSummary | None
) -> list[tuple[float, Any]]:
    """Start, end and queue changes of each profile, placed at its first and last request."""
    spans = _spans(records)
    finals = {p.profile: p for p in summary.profiles} if summary else {}
    # The engine's own queue, driven as the run drove it: entries change as they did live.
    queue = ScenarioQueue(profiles)
    ids = {e.name: e.entry_id for e in queue.entries}
    events: list[tuple[float, Any]] = [(0.0, QueueChanged(queue.entries))]
    ran = [p for p in profiles if p.name in spans]
    for index, profile in enumerate(ran):
        start, end = spans[profile.name]
        queue.move_next(ids[profile.name])
        queue.start_next()
        events += [
            (start, ProfileStarted(profile, index, len(profiles))),
            (start, QueueChanged(queue.entries)),
        ]
        final: ProfileSummary | None = finals.get(profile.name)
        if final is not None:
            queue.finish(ids[profile.name], final.status, final.requests, final.failures)
            events.append((end, ProfileFinished(final)))
        else:  # no final figures: the run was killed while this profile ran
            queue.finish(ids[profile.name], ProfileStatus.STOPPED, 0, 0)
        events.append((end, QueueChanged(queue.entries)))
    return events


def _sent_s(record: RequestRecord) -> float:
    """When the engine counted the request as sent: at its send, or, for an arrival never
    sent (``max_in_flight`` reached) or cancelled before it was, when it was due.
    """
    return (record.sent_ns if record.sent_ns is not None else record.scheduled_ns) / 1e9


def _throughput(
    records: list[RequestRecord], spans: dict[str, tuple[float, float]]
) -> list[tuple[float, Any]]:
    """Live snapshots rebuilt per ``BIN_S`` from the records (``build_timeline``'s curve).

    Each is the profile's that was running at the end of its bin (the last started by then),
    as the engine's snapshots are, so a scenario's rates show while it runs, before its first
    request ends. Counters are that profile's measured phase, up to the end of the bin:
    ``sent_total`` counts sends, ``finished_total`` ends, as the engine does.
    """
    measured = sorted((r for r in records if not r.warmup), key=lambda r: r.end_ns)
    if not measured:
        return []
    curve = build_timeline(records, (), BIN_S)
    sent: dict[str, list[float]] = {}
    for r in measured:
        sent.setdefault(r.profile, []).append(_sent_s(r))
    for times in sent.values():
        times.sort()
    snapshots: list[tuple[float, Any]] = []
    finished: dict[str, int] = {}
    failed: dict[str, int] = {}
    i = 0
    for b, out_per_s in enumerate(curve.output_tokens_per_s):
        t = float(curve.bin_start_s[b]) + curve.bin_s
        ended_in_bin = []
        while i < len(measured) and measured[i].end_ns / 1e9 < t:
            r = measured[i]
            finished[r.profile] = finished.get(r.profile, 0) + 1
            failed[r.profile] = failed.get(r.profile, 0) + (not r.ok)
            ended_in_bin.append(r)
            i += 1
        name = _running_at(spans, t) or measured[max(0, i - 1)].profile
        ok = [r for r in ended_in_bin if r.ok]
        snapshot = SnapshotTaken(
            profile=name,
            t_ns=int(t * 1e9),
            elapsed_s=t,
            window_s=curve.bin_s,
            in_flight=_in_flight(curve, t),
            sent_total=bisect.bisect_left(sent.get(name, []), t),
            finished_total=finished.get(name, 0),
            failed_total=failed.get(name, 0),
            planned_total=None,
            output_tokens_per_s=float(out_per_s),
            input_tokens_per_s=sum(r.prompt_tokens or 0 for r in ok) / curve.bin_s,
            requests_per_s=len(ok) / curve.bin_s,
            ttft_p50_s=None,
            tpot_p50_s=None,
            warmup=False,
        )
        snapshots.append((t, snapshot))
    return snapshots


def _running_at(spans: dict[str, tuple[float, float]], t_s: float) -> str | None:
    """The profile that started last at or before ``t_s``."""
    started = [(first, name) for name, (first, _) in spans.items() if first <= t_s]
    return max(started)[1] if started else None


def _in_flight(curve: Timeline, t_s: float) -> int:
    """Requests in flight at ``t_s`` (warm-up included: it is load too)."""
    at = int(np.searchsorted(curve.in_flight_t_s, t_s, side="right")) - 1
    return int(curve.in_flight[at]) if at >= 0 else 0
