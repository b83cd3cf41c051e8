"""Events the engine emits, and the bus that hands them to consumers.

Events are small immutable records named in the past tense. Per-token activity never becomes an
event: live figures travel in ``SnapshotTaken``, a few times a second. Consumers (the JSONL
writer, the headless console, the TUI) implement ``EventSink``.

The bus calls sinks synchronously, in subscription order, on the engine's event loop. That keeps
records ordered and lossless, and it is why a sink must be cheap: write a line, update a counter,
or hand the event to another thread (the TUI posts a message). The bus measures the time spent
in sinks (``sink_time_s``) so a slow consumer shows up in the run summary instead of silently
skewing timings, and a sink that raises is detached with a notice instead of stopping the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import TYPE_CHECKING, Literal, Protocol

from engine.errors import WriteFailed

if TYPE_CHECKING:
    from engine.metrics.summary import ProfileSummary, RunSummary
    from engine.metrics.validity import ValidityRule
    from engine.records import RequestRecord
    from engine.telemetry.samples import Sample, SampleKind
    from engine.workload.profile import Profile
    from engine.workload.queue import QueueEntry


MAX_NOTICES = 100
SNAPSHOT_INTERVAL_S = 0.25
"""How often a running profile publishes a ``SnapshotTaken`` (``RunConfig`` may change it)."""
SNAPSHOT_WINDOW_S = 2.0
"""Window of a snapshot's rates. Here, not in the run package, because a replay rebuilds
snapshots from records (``engine.analysis.snapshots``) and must use the engine's window."""
NoticeLevel = Literal["info", "warning", "error"]
"""How much a notice matters: ``info`` (an observation), ``warning`` (figures may be affected),
``error`` (something broke: a detached sink, a dead engine)."""


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run began: results folder created, server reachable."""

    run_id: str
    results_dir: str
    url: str
    model: str
    server_kind: str
    profiles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProfileStarted:
    """A profile (scenario) began sending."""

    profile: Profile
    index: int
    total: int


@dataclass(frozen=True, slots=True)
class RequestStarted:
    """A request was handed to the HTTP client."""

    request_id: str
    profile: str
    warmup: bool
    t_ns: int


@dataclass(frozen=True, slots=True)
class RequestFinished:
    """A request ended (success, failure or cancellation); its record is final.

    An open-loop arrival that was never sent (``max_in_flight`` reached) gets only this event,
    with ``error_kind`` ``cancelled`` and no ``RequestStarted`` before it.
    """

    record: RequestRecord


@dataclass(frozen=True, slots=True)
class SnapshotTaken:
    """Live figures of the running profile, a few times a second.

    Rates are over the last ``window_s`` seconds; ``*_total`` counters are for the measured
    phase, or for the warm-up while ``warmup`` is set (``planned_total``: its request count).
    """

    profile: str
    t_ns: int
    elapsed_s: float
    window_s: float
    in_flight: int
    sent_total: int
    finished_total: int
    failed_total: int
    planned_total: int | None
    output_tokens_per_s: float
    input_tokens_per_s: float
    requests_per_s: float
    ttft_p50_s: float | None
    tpot_p50_s: float | None
    warmup: bool


@dataclass(frozen=True, slots=True)
class TelemetrySampled:
    """One telemetry reading, a few per second, never per token: ``sample`` is the typed
    reading (``GpuSample``, ``HostSample``, ``ServerMetricsSample``, ``LoadedModels``) and
    ``kind`` its ``SampleKind``. Rebuilt from ``samples.jsonl`` by
    ``engine.telemetry.samples.parse_sample`` for a replay or a screen in another process.
    """

    kind: SampleKind
    t_ns: int
    sample: Sample


@dataclass(frozen=True, slots=True)
class ProfileFinished:
    """A profile ended; its aggregate is final."""

    summary: ProfileSummary


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended (completed, interrupted or failed); the summary is on disk."""

    summary: RunSummary


@dataclass(frozen=True, slots=True)
class NoticeRaised:
    """Something a person should know (an adaptation to the server, a detached sink)."""

    level: NoticeLevel
    message: str


@dataclass(frozen=True, slots=True)
class ValidityWarned:
    """A validity rule broke for the first time in this profile (engine/run/validity.py):
    the figures from here on are suspect for the reason ``message`` gives. Later breaches of
    the same rule in the same profile are only counted (``summary.json`` ``validity``).
    """

    rule: ValidityRule
    profile: str | None
    message: str
    value: float
    """The value that broke the rule, in the rule's unit."""
    threshold: float
    t_ns: int


@dataclass(frozen=True, slots=True)
class QueueChanged:
    """The scenario queue changed (an entry started, ended, was added, moved or removed)."""

    entries: tuple[QueueEntry, ...]


@dataclass(frozen=True, slots=True)
class SendingPaused:
    """Sending was paused (``paused``) or resumed; in-flight requests were left running."""

    paused: bool
    t_ns: int


Event = (
    RunStarted
    | ProfileStarted
    | RequestStarted
    | RequestFinished
    | SnapshotTaken
    | TelemetrySampled
    | ProfileFinished
    | RunFinished
    | NoticeRaised
    | ValidityWarned
    | QueueChanged
    | SendingPaused
)
LOW_RATE_EVENTS = (
    RunStarted,
    ProfileStarted,
    ProfileFinished,
    RunFinished,
    NoticeRaised,
    QueueChanged,
    SendingPaused,
    SnapshotTaken,
    ValidityWarned,
)
"""Events published a few times a second at most: what a screen in another process is sent.
It reads per-request records and telemetry samples from the results folder instead, which
costs the engine nothing more per request."""


class EventSink(Protocol):
    """A consumer of engine events. ``handle`` must return quickly and never block."""

    def handle(self, event: Event) -> None:
        """Take one event."""


@dataclass
class EventBus:
    """Fans events out to sinks synchronously; isolates failing sinks; times them.

    A sink that raises is detached with an error notice, except one that raises
    ``WriteFailed`` (a results file could not be written): that goes to ``on_write_failed``,
    and the engine ends the run, since records would be lost from then on.
    """

    sinks: list[EventSink] = field(default_factory=list)
    sink_time_ns: int = 0
    notices: list[str] = field(default_factory=list)
    """Messages of the notices published so far (at most ``MAX_NOTICES``), for the summary."""

    on_write_failed: Callable[[WriteFailed], None] | None = None
    """Called when a results file could not be written (the engine stops the run); without
    it, an error notice is published."""

    def write_failed(self, error: WriteFailed) -> None:
        """A results file (requests, samples, summary) could not be written: tell the run."""
        if self.on_write_failed is not None:
            self.on_write_failed(error)
        else:
            self.publish(NoticeRaised("error", f"results could not be written: {error}"))

    def subscribe(self, sink: EventSink) -> None:
        """Add a consumer; it receives every later event."""
        self.sinks.append(sink)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every sink, in order."""
        if isinstance(event, NoticeRaised) and len(self.notices) < MAX_NOTICES:
            self.notices.append(event.message)
        started = perf_counter_ns()
        for sink in list(self.sinks):
            try:
                sink.handle(event)
            except WriteFailed as exc:
                self.sinks.remove(sink)
                self.write_failed(exc)
            except Exception as exc:  # noqa: BLE001 - a consumer must never stop the run
                self.sinks.remove(sink)
                self.publish(
                    NoticeRaised(
                        "error",
                        f"{type(sink).__name__} failed and was "
                        f"detached: {type(exc).__name__}: {exc}",
                    )
                )
        self.sink_time_ns += perf_counter_ns() - started

    @property
    def sink_time_s(self) -> float:
        """Total time spent inside sinks so far."""
        return self.sink_time_ns / 1e9
