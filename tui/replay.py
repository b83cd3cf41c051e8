"""``llmtop replay RESULTS_DIR``: a finished (or killed) run in the live screen.

The run folder is turned back into the engine's events, ordered by time, and folded into a
``LiveState`` up to a cursor: the end state first, and ``[``/``]`` move the cursor through
the run. Nothing is re-measured. Two things the folder does not hold are rebuilt from the
records and say so in the help: live throughput (each request's output tokens spread evenly
between its first and last token, in ``BIN_S`` bins) and in-flight counts (requests between
their send and their end).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
from engine.gpu import NO_GPU
from engine.profile import Profile
from engine.queue import EntryStatus, QueueEntry
from engine.records import RequestRecord
from engine.results import REQUESTS_FILE, RUN_FILE, SUMMARY_FILE
from engine.summary import ProfileSummary, RunSummary, Slo
from tui.live import LiveState

BIN_S = 0.5
"""Width of the rebuilt throughput bins."""
SAMPLES_FILE = "samples.jsonl"


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
        return state


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def load_timeline(run_dir: Path) -> Timeline:
    """Read a run folder into a ``Timeline``; ``ReplayError`` names what is wrong."""
    if not run_dir.is_dir():
        raise ReplayError(f"{run_dir} is not a folder; give a results folder such as "
                          f"llmtop-results/20261121-081455-2a60")
    meta = _read_json(run_dir / RUN_FILE)
    if not (run_dir / REQUESTS_FILE).exists():
        raise ReplayError(f"{run_dir} holds no {REQUESTS_FILE}: not an llmtop results folder")
    notes: list[str] = []
    records = list(_records(run_dir / REQUESTS_FILE, notes))
    summary = _summary(run_dir / SUMMARY_FILE, notes)
    slo = Slo.model_validate(meta.get("slo") or {}) if meta else Slo()
    profiles = _profiles(meta, records)
    events: list[tuple[float, Any]] = [(0.0, RunStarted(
        str(meta.get("run_id", run_dir.name)), str(run_dir), str(meta.get("url", "?")),
        str(meta.get("model", "?")), str(meta.get("server_kind", "?")),
        tuple(p.name for p in profiles)))]
    events += _profile_events(profiles, records, summary)
    events += [(r.end_ns / 1e9, RequestFinished(r)) for r in records]
    events += _throughput(records)
    samples = _samples(run_dir / SAMPLES_FILE)
    if not any(isinstance(e, TelemetrySampled) and e.kind == "gpu" for _, e in samples):
        events.append((0.0, NoticeRaised("info", f"the run recorded no GPU samples: {NO_GPU}")))
    events += samples
    end = max((when for when, _ in events), default=0.0)
    if summary is not None and summary.status != "running":
        events.append((end, RunFinished(summary)))
    else:
        notes.append("no final summary.json: the run was killed or is still going")
    events.sort(key=lambda pair: pair[0])
    return Timeline(events, end, slo, notes)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ReplayError(f"{path} is unreadable: {exc}") from None
    return data if isinstance(data, dict) else {}


def _records(path: Path, notes: list[str]) -> Iterator[RequestRecord]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield RequestRecord.model_validate_json(line)
            except ValidationError:
                notes.append(f"{path.name} line {number} skipped (cut short or not a record)")


def _summary(path: Path, notes: list[str]) -> RunSummary | None:
    data = _read_json(path)
    if not data or data.get("status") == "running":
        return None
    try:
        return RunSummary.model_validate(data)
    except ValidationError:
        notes.append(f"{path.name} does not match this llmtop version; figures rebuilt")
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


def _profile_events(profiles: list[Profile], records: list[RequestRecord],
                    summary: RunSummary | None) -> list[tuple[float, Any]]:
    """Start, end and queue changes of each profile, placed at its first and last request."""
    spans: dict[str, tuple[float, float]] = {}
    for r in records:
        first, last = spans.get(r.profile, (r.scheduled_ns / 1e9, r.end_ns / 1e9))
        spans[r.profile] = (min(first, r.scheduled_ns / 1e9), max(last, r.end_ns / 1e9))
    finals = {p.profile: p for p in summary.profiles} if summary else {}
    entries = [QueueEntry(i, p) for i, p in enumerate(profiles, 1)]
    events: list[tuple[float, Any]] = [(0.0, QueueChanged(tuple(entries)))]
    ran = [p for p in profiles if p.name in spans]
    for index, profile in enumerate(ran):
        start, end = spans[profile.name]
        entries = _with_status(entries, profile.name, EntryStatus.RUNNING)
        events += [(start, ProfileStarted(profile, index, len(profiles))),
                   (start, QueueChanged(tuple(entries)))]
        final: ProfileSummary | None = finals.get(profile.name)
        status = {"completed": EntryStatus.DONE, "failed": EntryStatus.FAILED}.get(
            final.status if final else "", EntryStatus.STOPPED)
        entries = _with_status(entries, profile.name, status, final)
        if final is not None:
            events.append((end, ProfileFinished(final)))
        events.append((end, QueueChanged(tuple(entries))))
    return events


def _with_status(entries: list[QueueEntry], name: str, status: EntryStatus,
                 final: ProfileSummary | None = None) -> list[QueueEntry]:
    out = []
    for e in entries:
        if e.name == name:
            e = QueueEntry(e.entry_id, e.profile, status,
                           final.requests if final else e.finished,
                           final.failures if final else e.failed)
        out.append(e)
    return out


def _throughput(records: list[RequestRecord]) -> list[tuple[float, Any]]:
    """Snapshots rebuilt per ``BIN_S``: output tokens spread over each request's stream."""
    measured = sorted((r for r in records if not r.warmup), key=lambda r: r.end_ns)
    if not measured:
        return []
    bins = int(measured[-1].end_ns / 1e9 / BIN_S) + 1
    out, inputs, done = [0.0] * bins, [0.0] * bins, [0] * bins
    in_flight = [0] * bins
    for r in measured:
        _spread(out, r.completion_tokens or 0, r.first_token_ns, r.last_token_ns or r.end_ns)
        end_bin = min(bins - 1, int(r.end_ns / 1e9 / BIN_S))
        if r.ok:
            inputs[end_bin] += r.prompt_tokens or 0
            done[end_bin] += 1
        for b in range(int((r.sent_ns or r.scheduled_ns) / 1e9 / BIN_S), end_bin + 1):
            in_flight[b] += 1
    snapshots, i = [], 0
    finished: dict[str, int] = {}
    failed: dict[str, int] = {}
    for b in range(bins):
        t = (b + 1) * BIN_S
        while i < len(measured) and measured[i].end_ns / 1e9 < t:
            name = measured[i].profile
            finished[name] = finished.get(name, 0) + 1
            failed[name] = failed.get(name, 0) + (not measured[i].ok)
            i += 1
        p = measured[max(0, i - 1)].profile
        n, bad = finished.get(p, 0), failed.get(p, 0)
        snapshots.append((t, SnapshotTaken(
            p, int(t * 1e9), t, BIN_S, in_flight[b], n, n, bad, None, out[b] / BIN_S,
            inputs[b] / BIN_S, done[b] / BIN_S, None, None, False)))
    return snapshots


def _spread(bins: list[float], tokens: int, first_ns: int | None, last_ns: int) -> None:
    if not tokens:
        return
    start = (first_ns if first_ns is not None else last_ns) / 1e9
    end = max(start, last_ns / 1e9)
    lo, hi = int(start / BIN_S), min(len(bins) - 1, int(end / BIN_S))
    for b in range(lo, hi + 1):
        bins[b] += tokens / (hi - lo + 1)


def _samples(path: Path) -> list[tuple[float, Any]]:
    if not path.exists():
        return []
    events = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            kind, t_ns = data.pop("kind", None), data.pop("t_ns", None)
            if isinstance(kind, str) and isinstance(t_ns, int):
                events.append((t_ns / 1e9, TelemetrySampled(kind, t_ns, data)))
    return events


def replay_command(run_dir: Path) -> int:
    """Open a results folder in the live screen; returns the exit code."""
    from tui.app import make_app
    from tui.controls import ReadOnly

    timeline = load_timeline(run_dir)
    app = make_app(timeline.state_at(timeline.duration_s), ReadOnly(),
                   title=f"replay {run_dir}", timeline=timeline)
    for note in timeline.notes[:5]:
        app.notify(note, severity="warning", timeout=10)
    app.run()
    return 0
