"""llmtop's own health: the client process's loop lag, and each worker's when several sent
the load (``--workers``, ``--ray``). Bad figures here make the run's latencies suspect.
"""

from __future__ import annotations

from pydantic import BaseModel

LAG_SATURATED_MS = 10.0
"""Event-loop lag p99 above which a client process's timestamps may be late (the console's
warning for the run, and a worker's ``saturated``)."""
CPU_SATURATED_PCT = 90.0
"""Mean CPU of one core above which a worker process has no room left."""
SCHEDULE_LAG_SATURATED_MS = 10.0
"""Schedule lag p99 above which a worker sends its requests late."""


class WorkerHealth(BaseModel):
    """One worker process (``--workers``, ``--ray``): if it was saturated, its requests were
    sent late or timed late, and more workers would have made the load more faithfully.
    """

    worker: int
    """Its number, 0-based (records carry it in ``worker``)."""
    host: str
    """The machine it ran on (records carry it in ``host``)."""
    node: str | None = None
    """The Ray node it ran on (``--ray``); ``None`` for a process of the parent's machine."""
    pid: int | None
    """Its process id on that machine."""
    cpu_pct: float | None
    """Mean CPU over its life, percent of one core (a worker is one Python loop: 100 % is
    all it can take)."""
    loop_lag_p50_ms: float | None
    """Median lag of its event loop (how late a 10 ms timer fired)."""
    loop_lag_p99_ms: float | None
    """99th percentile lag of its event loop."""
    loop_lag_max_ms: float | None
    """Worst lag of its event loop."""
    schedule_lag_p99_ms: float | None
    """p99 of ``schedule_lag_s`` over its measured requests: how late it sent them."""
    requests: int
    """Records it sent to the parent (warm-up included)."""
    clock_offset_ns: int
    """Its ``perf_counter_ns`` minus the parent's at the same instant (0 on one machine's
    monotonic clock; its records are already on the parent's clock)."""
    clock_error_ns: int
    """How far that offset may be off: on the parent's host, how long reading the two
    clocks took; elsewhere half the quickest round trip that measured it."""
    saturated: bool
    """CPU above 90 % of a core, or loop or schedule lag p99 above 10 ms."""
    lost: str | None = None
    """Why it ended before the run did (``killed by signal 9 at 12.3 s``); ``None`` if not."""


def is_saturated(
    cpu_pct: float | None, lag_p99_ms: float | None, sched_p99_ms: float | None
) -> bool:
    """The saturation rule of ``WorkerHealth.saturated``."""
    return (
        (cpu_pct or 0.0) > CPU_SATURATED_PCT
        or (lag_p99_ms or 0.0) > LAG_SATURATED_MS
        or (sched_p99_ms or 0.0) > SCHEDULE_LAG_SATURATED_MS
    )


class ClientHealth(BaseModel):
    """Signals about llmtop itself: if these are bad, its latencies are suspect."""

    loop_lag_p50_ms: float | None
    """Median event-loop lag (how late a 10 ms timer fired)."""
    loop_lag_p99_ms: float | None
    """99th percentile event-loop lag."""
    loop_lag_max_ms: float | None
    """Worst event-loop lag."""
    sink_time_s: float
    """Time spent in event consumers (writer, console, UI) on the engine's loop."""
    workers: list[WorkerHealth] = []
    """Per worker process when the load was sent by several (``--workers``, ``--ray``); the
    lag above is then the parent's, which merges and writes but times nothing."""
