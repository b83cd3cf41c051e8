"""What crosses between the parent and a worker: small frozen records, pickled.

Commands go parent to worker one at a time. Reports come back in ``Batch``es: a worker
collects its events for ``FLUSH_INTERVAL_S`` (or ``MAX_BATCH`` events) and sends them as
one message, never one per token or per request, and phase reports (``WarmedUp``,
``ShareDone``) go right after the batch before them, so the parent sees every record of a
phase before its end.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass
from typing import Literal

from engine.events import NoticeRaised, RequestStarted, SnapshotTaken
from engine.records import RequestRecord
from engine.workload.profile import Profile
from engine.workload.split import Share

FLUSH_INTERVAL_S = 0.1
"""How often a worker sends what it collected (also when nothing: the parent's finish-order
merge waits for every worker's latest batch)."""
MAX_BATCH = 512
"""Events after which a worker sends at once rather than waiting for the interval."""

# -- parent to worker ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """Asks for the worker's clock; ``sent_ns`` is the parent's ``perf_counter_ns``."""

    sent_ns: int


@dataclass(frozen=True, slots=True)
class StartProfile:
    """Send this share of a profile: warm up, report ``WarmedUp``, wait for ``Measure``."""

    token: int
    """The profile's number in the run: reports name it, so late ones are told apart."""
    profile: Profile
    share: Share
    id_base: int
    """Request numbers of this profile start after this one (ids unique across workers)."""
    origin_ns: int
    """The run's clock origin on this worker's clock (the parent's origin plus the offset)."""
    words: tuple[str, ...] | None
    """The prompt vocabulary the parent measured for this server."""
    calibration_points: tuple[tuple[int, int], ...] | None
    """The parent's prompt calibration (``(words, prompt_tokens)`` pairs), to fit the same."""
    holds: tuple[str, ...]
    """Pauses in force when it starts (``user``, ``outage``)."""


@dataclass(frozen=True, slots=True)
class Measure:
    """Every worker warmed up: begin the measured phase at ``start_ns`` (worker's clock)."""

    token: int
    start_ns: int


ControlName = Literal["stop_sending", "pause_sending", "resume_sending", "cancel_all"]


@dataclass(frozen=True, slots=True)
class Control:
    """A ``ProfileRun`` control the parent decided (the screen, the outage rule, Ctrl+C)."""

    name: ControlName
    reason: str = "user"


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The run is over: cancel what is in flight, report ``Bye``, exit."""


# -- worker to parent ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """The worker is up and listening."""

    worker: int
    pid: int
    host: str
    node: str | None
    """The Ray node it runs on; ``None`` for a process of the parent's machine."""
    perf_ns: int
    wall_ns: int
    """``perf_counter_ns`` and ``time_ns`` read together: on the parent's host the wall
    clock is the same clock, which gives the perf counter's offset to the microsecond."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to ``Ping``: the parent's send time and the worker's clock when it answered."""

    sent_ns: int
    worker_ns: int


@dataclass(frozen=True, slots=True)
class Finished:
    """A request ended: its record (``worker`` and ``host`` set) and its token gaps, which
    the parent's aggregate pools into ITL (empty for failed and warm-up requests).
    """

    record: RequestRecord
    gaps: array[float]


@dataclass(frozen=True, slots=True)
class Batch:
    """Events of one flush interval, in the order they happened on the worker."""

    token: int
    events: tuple[RequestStarted | Finished | NoticeRaised, ...]
    snapshot: SnapshotTaken | None
    """The worker's latest live figures, if it published any since the last batch."""
    flushed_ns: int
    """When it was sent, on the run's clock: every later record of this worker ends after."""


@dataclass(frozen=True, slots=True)
class Health:
    """A worker's health over a span (a profile, or its whole life)."""

    cpu_pct: float | None
    """CPU used over the span, percent of one core."""
    lag_ms: tuple[float | None, float | None, float | None]
    """Event-loop lag p50, p99 and max."""


@dataclass(frozen=True, slots=True)
class WarmedUp:
    """A worker's warm-up is over."""

    token: int


@dataclass(frozen=True, slots=True)
class ShareDone:
    """A worker's share of the profile is over; every record of it was sent before."""

    token: int
    paused_ns: int
    """Time its ``ProfileRun`` left out of the measured window (idle pauses, round pauses)."""
    health: Health


@dataclass(frozen=True, slots=True)
class Bye:
    """The worker is exiting after ``Shutdown``; its health over its whole life."""

    health: Health


@dataclass(frozen=True, slots=True)
class Crashed:
    """The worker's loop raised: the text of the error (it then exits)."""

    error: str


def clock_pair() -> tuple[int, int]:
    """``(perf_counter_ns, time_ns)`` read back to back."""
    return time.perf_counter_ns(), time.time_ns()


Command = Ping | StartProfile | Measure | Control | Shutdown
Report = Hello | Pong | Batch | WarmedUp | ShareDone | Bye | Crashed
