"""What the live screen shows, kept from the engine's events in bounded buffers.

``LiveState.apply`` takes events on the sink's thread; the UI takes an immutable ``LiveView``
a few times a second (``view``). The two meet under one lock held for a few deque appends or
one copy, so the engine never waits on painting and a widget never sees a half-applied event.
Nothing here measures: every figure comes from the engine's records, snapshots and samples.

Live latency rows use a bounded reservoir of each profile's requests (uniform sample, exact
below ``RESERVOIR_SIZE``); when a profile ends its row becomes the engine's exact summary.
Charted figures and the rates shown as "now" are ``tui.live.history``'s; a scenario's rates
and snapshot go when it ends, so no "now" figure outlives what it describes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict

from engine.events import (
    Event,
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RequestFinished,
    RunFinished,
    RunStarted,
    SendingPaused,
    SnapshotTaken,
    TelemetrySampled,
    ValidityWarned,
)
from engine.metrics.summary import Distribution, ProfileSummary, RunSummary, Slo
from engine.records import RequestRecord
from engine.status import FinalRunStatus
from engine.telemetry.gpu import NO_GPU, GpuSample, energy_j
from engine.telemetry.host import HostSample
from engine.telemetry.server_metrics import ServerMetricsSample
from engine.workload.queue import QueueEntry
from tui.live.history import History, Rates, RateWindow
from tui.live.series import SeriesView

MAX_RECENT_REQUESTS = 200
"""Full records kept for the recent-requests table and the record view."""
MAX_NOTICES = 50
"""Notices kept for the log."""
RESERVOIR_SIZE = 4096
"""Per-profile, per-metric sample behind the live latency table."""
METRICS = ("ttft_s", "tpot_s", "itl_s", "e2e_s")
"""Latency table rows per profile. Live ITL pools each request's mean gap; the exact value
(all gaps pooled) replaces it when the profile ends."""

ScreenStatus = Literal["starting", "running", "paused", "incomplete"] | FinalRunStatus
"""What the header says: before the first event, while sending, paused by a person, the
run's final status, or ``incomplete`` (a replayed run without a final summary)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """One scenario's requests so far, counted from its records as they arrive."""

    finished: int = 0
    """Measured requests that ended (failed ones included)."""
    failed: int = 0
    """Measured requests that failed."""
    warmup_finished: int = 0
    """Warm-up requests that ended."""
    last_error: str | None = None
    """The latest failure's kind and message, as the record has it."""


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """One profile's distributions for the latency table; ``exact`` once the profile ended."""

    profile: str
    metrics: dict[str, Distribution | None]
    exact: bool


@dataclass(frozen=True)
class LiveView:
    """Everything the screen paints, copied out under the lock."""

    url: str = ""
    server_kind: str = ""
    model: str = ""
    results_dir: str = ""
    elapsed_s: float = 0.0
    status: ScreenStatus = "starting"
    """``starting``, ``running``, ``paused``, the run's final status, or ``incomplete`` (a
    replayed run that has no summary)."""
    queue: tuple[QueueEntry, ...] = ()
    current: SnapshotTaken | None = None
    """The running scenario's latest snapshot; ``None`` between scenarios."""
    rates: Rates | None = None
    """The running scenario's rates over ``RATE_WINDOW_S``; ``None`` between scenarios."""
    progress: dict[str, Progress] = field(default_factory=dict)
    """Per scenario (by name), counted from its records."""
    charts: dict[str, SeriesView] = field(default_factory=dict)
    """Every charted figure (``tui.live.history`` names them)."""
    chart_now_s: float = 0.0
    """The latest engine time seen: the right edge of every chart."""
    slo: Slo = Slo()
    slo_breaks: dict[str, int] = field(default_factory=dict)
    """Successful requests over each SLO (``ttft_s``, ``tpot_s``), since the start."""
    recent: tuple[RequestRecord, ...] = ()
    totals: dict[str, int] = field(default_factory=dict)
    gpus: tuple[GpuSample, ...] = ()
    gpu_energy_j: dict[int, float] = field(default_factory=dict)
    gpu_notice: str | None = None
    """Why there is no GPU pane data (no NVML, no GPU), once telemetry said so."""
    server_metrics: ServerMetricsSample | None = None
    host: HostSample | None = None
    latency: tuple[LatencyRow, ...] = ()
    finished: tuple[ProfileSummary, ...] = ()
    """The engine's exact summary of each scenario that ended, in the order they ended."""
    notices: tuple[tuple[str, str], ...] = ()
    """The latest notices (at most ``MAX_NOTICES``), oldest first."""
    notices_total: int = 0
    """Notices since the start, so a reader can tell how many of ``notices`` are new."""
    summary: RunSummary | None = None


class _RunInfo(TypedDict, total=False):
    """What ``RunStarted`` told the view, by ``LiveView`` field name (empty before it)."""

    url: str
    server_kind: str
    model: str
    results_dir: str


class _Reservoir:
    """Uniform sample of a stream of floats, at most ``RESERVOIR_SIZE`` (Vitter's R)."""

    def __init__(self, rng: random.Random) -> None:
        self.values: list[float] = []
        self.seen = 0
        self._rng = rng

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < RESERVOIR_SIZE:
            self.values.append(value)
        else:
            slot = self._rng.randrange(self.seen)
            if slot < RESERVOIR_SIZE:
                self.values[slot] = value


class LiveState:
    """Bounded state of a run for the screen; fed by events, read as ``LiveView``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.version = 0
        """Events applied so far: a repaint with nothing new can skip the panes."""
        self._rng = random.Random(0)
        self._started: float | None = None
        self._ended: float | None = None
        self._info: _RunInfo = {}
        self._status: ScreenStatus = "starting"
        self._queue: tuple[QueueEntry, ...] = ()
        self._current: SnapshotTaken | None = None
        self._running: str | None = None
        """The scenario sending now (between its ProfileStarted and ProfileFinished)."""
        self._rates = RateWindow()
        self._history = History()
        self._progress: dict[str, Progress] = {}
        self._recent: deque[RequestRecord] = deque(maxlen=MAX_RECENT_REQUESTS)
        self._notices: deque[tuple[str, str]] = deque(maxlen=MAX_NOTICES)
        self._notices_total = 0
        self._totals = {"requests": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0}
        self._slo = Slo()
        self._slo_breaks = {"ttft_s": 0, "tpot_s": 0}
        self._gpus: dict[int, GpuSample] = {}
        self._energy_start_mj: dict[int, float] = {}
        self._gpu_notice: str | None = None
        self._server: ServerMetricsSample | None = None
        self._host: HostSample | None = None
        self._live: dict[str, dict[str, _Reservoir]] = {}
        self._exact: dict[str, ProfileSummary] = {}
        self._summary: RunSummary | None = None

    def set_slo(self, slo: Slo) -> None:
        """The objectives a request is marked against on the sparklines."""
        with self._lock:
            self._slo = slo

    def mark_incomplete(self) -> None:
        """The run ended without a summary (killed): say so instead of "running"."""
        with self._lock:
            self._status = "incomplete"
            self._ended = self._clock()

    # -- events in (sink thread) --

    def handle(self, event: Event) -> None:
        """``EventSink`` interface."""
        self.apply(event)

    def apply(self, event: Any) -> None:
        """Fold one engine event into the state."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            with self._lock:
                handler(self, event)
                self.version += 1

    def _run_started(self, e: RunStarted) -> None:
        self._started = self._clock()
        self._status = "running"
        self._info = {
            "url": e.url,
            "server_kind": e.server_kind,
            "model": e.model,
            "results_dir": e.results_dir,
        }

    def _profile_started(self, e: ProfileStarted) -> None:
        self._current = None
        self._running = e.profile.name
        self._rates.clear()
        self._live[e.profile.name] = {m: _Reservoir(self._rng) for m in METRICS}

    def _request_finished(self, e: RequestFinished) -> None:
        record = e.record
        self._recent.append(record)
        self._count(record)
        if record.warmup:
            return
        self._totals["requests"] += 1
        if not record.ok:
            self._totals["failed"] += 1
            return
        self._totals["input_tokens"] += record.prompt_tokens or 0
        self._totals["output_tokens"] += record.completion_tokens or 0
        self._history.record(record, self._slo)
        slo = self._slo
        self._slo_breaks["ttft_s"] += _over(record.ttft_s, slo.ttft_s)
        self._slo_breaks["tpot_s"] += _over(record.tpot_s, slo.tpot_s)
        live = self._live.get(record.profile)
        if live is None:
            return
        values = {
            "ttft_s": record.ttft_s,
            "tpot_s": record.tpot_s,
            "e2e_s": record.e2e_s,
            "itl_s": record.itl.mean_s if record.itl else None,
        }
        for name, value in values.items():
            if value is not None:
                live[name].add(value)

    def _count(self, r: RequestRecord) -> None:
        """The scenario's progress, from its records: live, not only when it ends."""
        p = self._progress.get(r.profile, Progress())
        if r.warmup:
            p = replace(p, warmup_finished=p.warmup_finished + 1)
        elif r.ok:
            p = replace(p, finished=p.finished + 1)
        else:
            error = f"{r.error_kind}: {r.error_message}" if r.error_message else str(r.error_kind)
            p = replace(p, finished=p.finished + 1, failed=p.failed + 1, last_error=error)
        self._progress[r.profile] = p

    def _snapshot(self, e: SnapshotTaken) -> None:
        if not e.warmup:
            self._history.snapshot(e)
        # A snapshot of a scenario that has ended (a replay's rebuilt ones run on a moment)
        # must not bring its rates back.
        if e.profile == self._running:
            self._current = e
            self._rates.add(e)

    def _telemetry(self, e: TelemetrySampled) -> None:
        sample, t_s = e.sample, e.t_ns / 1e9
        if isinstance(sample, GpuSample):
            self._gpus[sample.index] = sample
            self._history.gpu(t_s, sample)
            if sample.energy_mj is not None:
                self._energy_start_mj.setdefault(sample.index, float(sample.energy_mj))
        elif isinstance(sample, ServerMetricsSample):
            self._server = sample
            self._history.server(t_s, sample)
        elif isinstance(sample, HostSample):
            self._host = sample
            self._history.host(t_s, sample)

    def _profile_finished(self, e: ProfileFinished) -> None:
        self._exact[e.summary.profile] = e.summary
        self._live.pop(e.summary.profile, None)
        if self._running == e.summary.profile:
            self._running, self._current = None, None
            self._rates.clear()
        if e.summary.error:
            # The engine fails a profile whose requests all failed but the run goes on: the
            # screen says why at once, not only in the summary at the end.
            self._notice(NoticeRaised("error", f"{e.summary.profile}: {e.summary.error}"))

    def _notice(self, e: NoticeRaised) -> None:
        self._notices.append((e.level, e.message))
        self._notices_total += 1
        if e.message.endswith(NO_GPU):
            self._gpu_notice = e.message

    def _validity(self, e: ValidityWarned) -> None:
        # Shown as a warning notice for now (the panes are being rewritten elsewhere): the
        # Notices tab lists it and a warning pops up as a notification.
        where = f"{e.profile}: " if e.profile else ""
        self._notice(NoticeRaised("warning", f"suspect: {where}{e.message}"))

    def _queue_changed(self, e: QueueChanged) -> None:
        self._queue = e.entries

    def _paused(self, e: SendingPaused) -> None:
        if self._summary is None:
            self._status = "paused" if e.paused else "running"

    def _run_finished(self, e: RunFinished) -> None:
        self._running, self._current = None, None
        self._rates.clear()
        self._summary = e.summary
        self._status = e.summary.status
        self._ended = self._clock()

    # -- view out (UI thread) --

    def view(self) -> LiveView:
        """An immutable copy of what to paint now (percentiles computed outside the lock)."""
        with self._lock:
            live = {
                name: {m: list(r.values) for m, r in metrics.items()}
                for name, metrics in self._live.items()
            }
            exact = dict(self._exact)
            view = LiveView(
                **self._info,
                elapsed_s=self._elapsed_locked(),
                status=self._status,
                queue=self._queue,
                current=self._current,
                rates=self._rates.rates(),
                progress=dict(self._progress),
                charts=self._history.views(),
                chart_now_s=self._history.now_s,
                slo=self._slo,
                slo_breaks=dict(self._slo_breaks),
                recent=tuple(self._recent),
                totals=dict(self._totals),
                gpus=tuple(self._gpus[i] for i in sorted(self._gpus)),
                gpu_energy_j=self._energy_j(),
                gpu_notice=self._gpu_notice,
                server_metrics=self._server,
                host=self._host,
                notices=tuple(self._notices),
                notices_total=self._notices_total,
                summary=self._summary,
                finished=tuple(exact.values()),
            )
        return replace(view, latency=_latency_rows(view.queue, exact, live))

    def elapsed_s(self) -> float:
        """Seconds since the run started (to its end once it ended)."""
        with self._lock:
            return self._elapsed_locked()

    def _elapsed_locked(self) -> float:
        if self._started is None:
            return 0.0
        return (self._ended if self._ended is not None else self._clock()) - self._started

    def _energy_j(self) -> dict[int, float]:
        """Energy per GPU since its first sample, from NVML's counter (``engine.telemetry.gpu``)."""
        spent = {
            i: energy_j(self._energy_start_mj.get(i), g.energy_mj) for i, g in self._gpus.items()
        }
        return {i: joules for i, joules in spent.items() if joules is not None}


def _over(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value > limit


def _latency_rows(
    queue: tuple[QueueEntry, ...],
    exact: dict[str, ProfileSummary],
    live: dict[str, dict[str, list[float]]],
) -> tuple[LatencyRow, ...]:
    """Per scenario in queue order: the engine's exact figures, else the live sample's."""
    rows = []
    for entry in queue:
        name = entry.name
        if name in exact:
            rows.append(LatencyRow(name, {m: getattr(exact[name], m) for m in METRICS}, True))
        elif name in live:
            rows.append(
                LatencyRow(name, {m: Distribution.of(v) for m, v in live[name].items()}, False)
            )
    return tuple(rows)


_HANDLERS: dict[type, Callable[[LiveState, Any], None]] = {
    RunStarted: LiveState._run_started,
    ProfileStarted: LiveState._profile_started,
    RequestFinished: LiveState._request_finished,
    SnapshotTaken: LiveState._snapshot,
    TelemetrySampled: LiveState._telemetry,
    ProfileFinished: LiveState._profile_finished,
    NoticeRaised: LiveState._notice,
    ValidityWarned: LiveState._validity,
    QueueChanged: LiveState._queue_changed,
    SendingPaused: LiveState._paused,
    RunFinished: LiveState._run_finished,
}
