"""Feeds the validity rules (engine/run/validity.py) from the engine's events, as they happen.

``ValidityMonitor`` is an event sink like the writer and the console: records, snapshots and
telemetry samples go to the rules that read them; the loop-lag monitor hands it each lag
reading. Windows of ``VALIDITY_WINDOW_S`` run time close on the snapshot that ends them (and a
partial one when a profile ends). The first breach of a rule in a profile is published as
``ValidityWarned``; every breach is counted for ``summary.json`` ``validity``.

Cheap per event (an append or a counter); the sorting a p99 needs happens once per window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, Protocol

from engine.events import (
    EventBus,
    ProfileFinished,
    ProfileStarted,
    RequestFinished,
    SnapshotTaken,
    TelemetrySampled,
    ValidityWarned,
)
from engine.metrics.validity import ValidityIssue, ValidityRule
from engine.run.validity import (
    VALIDITY_WINDOW_S,
    Breach,
    CacheHitRule,
    ClientCpuRule,
    GpuClockRule,
    GpuGapRule,
    LoopLagRule,
    PoolWaitRule,
    PromptLengthRule,
    ScheduleLagRule,
    ServerQueueRule,
    ShareRule,
    TokenMismatchRule,
    UsageMissingRule,
    WindowRule,
)
from engine.stats import NS
from engine.telemetry.gpu import GpuSample
from engine.telemetry.host import HostSample
from engine.telemetry.server_metrics import ServerMetricsSample
from engine.workload.profile import Profile

MIN_PARTIAL_WINDOW_S = 1.0
"""A window cut short by the end of its profile is judged only if it lasted this long."""


class _Rule(Protocol):
    @property
    def rule(self) -> ValidityRule: ...
    @property
    def unit(self) -> str: ...
    @property
    def lower_is_worse(self) -> bool: ...


@dataclass
class _Tally:
    """A stored issue while the run goes on (``ValidityIssue`` once it ends)."""

    first: ValidityIssue
    count: int
    worst: float


def busts_caches(profile: Profile) -> bool:
    """Whether every prompt of ``profile`` differs from its first token on: synthetic prompts,
    no shared prefix, no system prompt (a shared system prompt may be cached legitimately).
    """
    return (
        profile.prompt_file is None
        and profile.shared_prefix_tokens == 0
        and not profile.system_prompt
    )


class ValidityMonitor:
    """An event sink that runs the validity rules and publishes their first breaches."""

    def __init__(
        self,
        bus: EventBus,
        origin_ns: int,
        *,
        gpu_interval_s: float | None = None,
        window_s: float = VALIDITY_WINDOW_S,
        clock: Callable[[], int] = perf_counter_ns,
    ) -> None:
        """``gpu_interval_s``: the telemetry's sampling interval (``None``: no GPU gap rule);
        ``window_s`` and ``clock`` are for tests.
        """
        self.bus = bus
        self.origin_ns = origin_ns
        self.window_s = window_s
        self._clock = clock
        self._cpu = ClientCpuRule()
        self._lag = LoopLagRule()
        self._gpu_gap = GpuGapRule(gpu_interval_s) if gpu_interval_s else None
        self._gpu_clock = GpuClockRule()
        self._profile: Profile | None = None
        self._measuring = False
        self._window_start_ns: int | None = None
        self._schedule: ScheduleLagRule | None = None
        self._pool: PoolWaitRule | None = None
        self._queue: ServerQueueRule | None = None
        self._shares: list[ShareRule] = []
        self._tallies: dict[tuple[ValidityRule, str | None], _Tally] = {}

    # -- inputs --

    def handle(self, event: Any) -> None:
        """``EventSink`` interface: hand the event to the rules that read it."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def add_loop_lag(self, lag_ms: float) -> None:
        """One reading of the loop-lag monitor (engine/run/loop_lag.py)."""
        self._lag.add(lag_ms)

    def _profile_started(self, event: ProfileStarted) -> None:
        p = event.profile
        self._profile = p
        self._measuring = False
        self._window_start_ns = None
        for rule in self._window_rules():
            rule.values.clear()  # what came between profiles is no profile's
        self._schedule = ScheduleLagRule(p.rate_rps) if p.rate_rps else None
        self._pool = PoolWaitRule() if p.concurrency else None
        self._queue = ServerQueueRule() if p.goal == "latency" else None
        self._shares = [UsageMissingRule(), TokenMismatchRule(), PromptLengthRule()]
        if busts_caches(p):
            self._shares.append(CacheHitRule())

    def _request_finished(self, event: RequestFinished) -> None:
        record = event.record
        if record.warmup or self._profile is None or record.profile != self._profile.name:
            return
        if self._schedule is not None:
            self._schedule.add(record.schedule_lag_s)
        if self._pool is not None:
            self._pool.add(record.client_queue_wait_s)
        if record.ok:
            for rule in self._shares:
                rule.add(record)

    def _snapshot(self, event: SnapshotTaken) -> None:
        self._measuring = not event.warmup
        if self._window_start_ns is None:
            self._window_start_ns = event.t_ns
        elif event.t_ns - self._window_start_ns >= self.window_s * NS:
            self._close_window(event.t_ns)

    def _telemetry(self, event: TelemetrySampled) -> None:
        sample = event.sample
        if isinstance(sample, HostSample):
            self._cpu.add(sample.client_cpu_pct)
        elif isinstance(sample, ServerMetricsSample):
            busy = bool(sample.running) or bool(sample.waiting)
            if self._queue is not None and self._measuring and busy:
                self._queue.add(sample.waiting)
        elif isinstance(sample, GpuSample):
            if self._gpu_gap is not None:
                self._breach(self._gpu_gap, self._gpu_gap.add(event.t_ns, sample), event.t_ns)
            self._breach(self._gpu_clock, self._gpu_clock.add(event.t_ns, sample), event.t_ns)

    def _profile_finished(self, _event: ProfileFinished) -> None:
        now_ns = self._clock() - self.origin_ns
        start = self._window_start_ns
        if start is not None and now_ns - start >= MIN_PARTIAL_WINDOW_S * NS:
            self._close_window(now_ns)
        else:
            self._judge_shares(now_ns)
        self._profile = None
        self._measuring = False
        self._window_start_ns = None

    # -- judging --

    def _window_rules(self) -> list[WindowRule]:
        rules: list[WindowRule | None] = [self._cpu, self._lag, self._schedule, self._pool]
        rules.append(self._queue)
        return [r for r in rules if r is not None]

    def _close_window(self, t_ns: int) -> None:
        start = self._window_start_ns if self._window_start_ns is not None else t_ns
        span_s = (t_ns - start) / NS
        self._window_start_ns = t_ns
        for rule in self._window_rules():
            self._breach(rule, rule.close(span_s), t_ns)
        self._judge_shares(t_ns)

    def _judge_shares(self, t_ns: int) -> None:
        for rule in self._shares:
            self._breach(rule, rule.check(), t_ns, counts_requests=True)

    def _breach(
        self, rule: _Rule, breach: Breach | None, t_ns: int, *, counts_requests: bool = False
    ) -> None:
        """Count a breach; the first of its rule in this profile is published."""
        if breach is None:
            return
        profile = self._profile.name if self._profile is not None else None
        key = (rule.rule, profile)
        tally = self._tallies.get(key)
        if tally is None:
            issue = ValidityIssue(
                rule=rule.rule,
                profile=profile,
                first_s=t_ns / NS,
                count=breach.count,
                worst=breach.value,
                threshold=breach.threshold,
                unit=rule.unit,
                message=breach.message,
            )
            self._tallies[key] = _Tally(issue, breach.count, breach.value)
            self.bus.publish(
                ValidityWarned(
                    rule.rule, profile, breach.message, breach.value, breach.threshold, t_ns
                )
            )
            return
        tally.count = breach.count if counts_requests else tally.count + 1
        pick = min if rule.lower_is_worse else max
        tally.worst = pick(tally.worst, breach.value)

    def issues(self) -> list[ValidityIssue]:
        """Every rule broken so far, in the order each first broke."""
        return [
            t.first.model_copy(update={"count": t.count, "worst": t.worst})
            for t in sorted(self._tallies.values(), key=lambda t: t.first.first_s)
        ]


_HANDLERS: dict[type, Callable[[ValidityMonitor, Any], None]] = {
    ProfileStarted: ValidityMonitor._profile_started,
    RequestFinished: ValidityMonitor._request_finished,
    SnapshotTaken: ValidityMonitor._snapshot,
    TelemetrySampled: ValidityMonitor._telemetry,
    ProfileFinished: ValidityMonitor._profile_finished,
}
