"""``llmtop replay RESULTS_DIR``: a finished (or killed) run in the live screen.

The run folder is turned back into the engine's events, ordered by time, and folded into a
``LiveState`` up to a cursor: the end state first, and ``[``/``]`` move the cursor through
the run. Nothing is re-measured. Two things the folder does not hold are rebuilt from the
records and say so in the help: live throughput (each request's output tokens spread evenly
between its first and last token, in ``BIN_S`` bins) and in-flight counts (requests between
their send and their end).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from engine.analysis.timeline import build_timeline
from engine.events import (
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RequestFinished,
    RunFinished,
    RunStarted,
    SnapshotTaken,
    TelemetrySampled,
)
from engine.metrics.summary import ProfileSummary, RunSummary, Slo
from engine.records import RequestRecord
from engine.results.folder import iter_records, iter_samples, jsonl_file, read_json
from engine.results.writer import REQUESTS_FILE, RUN_FILE, SUMMARY_FILE
from engine.status import ProfileStatus
from engine.telemetry.gpu import NO_GPU
from engine.workload.profile import Profile
from engine.workload.queue import ScenarioQueue
from tui.live.state import LiveState

BIN_S = 0.5
"""Width of the rebuilt throughput bins (wider for long runs: ``engine.timeline.MAX_BINS``)."""


class ReplayError(ValueError):
    """The folder is not a run llmtop can show."""


@dataclass
class Timeline:
    """A run's events in time order (seconds from the run's clock origin)."""

    events: list[tuple[float, Any]]
    duration_s: float
    slo: Slo
    notes: list[str]
    """What was missing or skipped while reading the folder."""
    complete: bool = True
    """False when the folder has no final summary (the run was killed)."""

    def state_at(self, t_s: float) -> LiveState:
        """The live state as it stood ``t_s`` seconds into the run."""
        clock = _Clock()
        state = LiveState(clock=clock)
        state.set_slo(self.slo)
        for when, event in self.events:
            if when > t_s:
                break
            clock.now = when
            state.apply(event)
        clock.now = t_s
        if not self.complete and t_s >= self.duration_s:
            state.mark_incomplete()
        return state


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def load_timeline(run_dir: Path) -> Timeline:
    """Read a run folder into a ``Timeline``; ``ReplayError`` names what is wrong."""
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
    slo = Slo.model_validate(meta.get("slo") or {})
    profiles = _profiles(meta, records)
    events: list[tuple[float, Any]] = [
        (
            0.0,
            RunStarted(
                str(meta.get("run_id", run_dir.name)),
                str(run_dir),
                str(meta.get("url", "?")),
                str(meta.get("model", "?")),
                str(meta.get("server_kind", "?")),
                tuple(p.name for p in profiles),
            ),
        )
    ]
    events += _profile_events(profiles, records, summary)
    events += [(r.end_ns / 1e9, RequestFinished(r)) for r in records]
    samples = [
        (d["t_ns"] / 1e9, TelemetrySampled(d.pop("kind"), d.pop("t_ns"), d))
        for d in iter_samples(run_dir, notes)
        if isinstance(d.get("kind"), str) and isinstance(d.get("t_ns"), int)
    ]
    if not any(e.kind == "gpu" for _, e in samples):
        events.append((0.0, NoticeRaised("info", f"the run recorded no GPU samples: {NO_GPU}")))
    events += samples + _throughput(records)
    end = max((when for when, _ in events), default=0.0)
    if summary is not None:
        events.append((end, RunFinished(summary)))
    else:
        notes.append("no final summary.json: the run was killed or is still going")
    events.sort(key=lambda pair: pair[0])
    return Timeline(events, end, slo, notes, complete=summary is not None)


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
    profiles: list[Profile], records: list[RequestRecord], summary: RunSummary | None
) -> list[tuple[float, Any]]:
    """Start, end and queue changes of each profile, placed at its first and last request."""
    spans: dict[str, tuple[float, float]] = {}
    for r in records:
        first, last = spans.get(r.profile, (r.scheduled_ns / 1e9, r.end_ns / 1e9))
        spans[r.profile] = (min(first, r.scheduled_ns / 1e9), max(last, r.end_ns / 1e9))
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


def _throughput(records: list[RequestRecord]) -> list[tuple[float, Any]]:
    """Live snapshots rebuilt per ``BIN_S`` from the records (``engine.timeline``'s curve)."""
    measured = sorted((r for r in records if not r.warmup), key=lambda r: r.end_ns)
    if not measured:
        return []
    curve = build_timeline(records, (), BIN_S)
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
        at = int(np.searchsorted(curve.in_flight_t_s, t, side="right")) - 1
        in_flight = int(curve.in_flight[at]) if at >= 0 else 0
        name = measured[max(0, i - 1)].profile
        ok = [r for r in ended_in_bin if r.ok]
        snapshots.append(
            (
                t,
                SnapshotTaken(
                    name,
                    int(t * 1e9),
                    t,
                    curve.bin_s,
                    in_flight,
                    finished.get(name, 0),
                    finished.get(name, 0),
                    failed.get(name, 0),
                    None,
                    float(out_per_s),
                    sum(r.prompt_tokens or 0 for r in ok) / curve.bin_s,
                    len(ok) / curve.bin_s,
                    None,
                    None,
                    False,
                ),
            )
        )
    return snapshots


def replay_command(run_dir: Path) -> int:
    """Open a results folder in the live screen; returns the exit code."""
    from tui.live.app import make_app
    from tui.live.controls import ReadOnly

    timeline = load_timeline(run_dir)
    app = make_app(
        timeline.state_at(timeline.duration_s),
        ReadOnly(),
        title=f"replay {run_dir}",
        timeline=timeline,
    )
    for note in timeline.notes[:5]:
        app.notify(note, severity="warning", timeout=10)
    app.run()
    return 0
