"""The over-saturation stop: a step whose server fell over ends early, and the later steps of
its ladder are skipped (README "When the server falls over").

``SaturationStop`` is an event sink for one step: it feeds the step's measured-phase records,
snapshots and the server's waiting requests to a ``SaturationDetector``
(engine/metrics/saturation.py), asks it for a verdict once a second, and on the first one stops
sending (in-flight requests finish and count; those still running ``SATURATION_DRAIN_S``
later are cancelled, since an over-saturated server may hold thousands) and says why.

On by default for a step of a ladder or sweep (``MIN_STEPS`` or more loads of one definition
in the queue), off otherwise; a profile's ``stop_when_saturated`` (``--stop-when-saturated``)
decides where it is set.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from engine.events import (
    EventBus,
    NoticeRaised,
    RequestFinished,
    SnapshotTaken,
    TelemetrySampled,
)
from engine.metrics.knee import MIN_STEPS, sweep_key
from engine.metrics.saturation import SaturationDetector, StepFigures
from engine.metrics.summary import ProfileSummary
from engine.records import ErrorKind
from engine.stats import NS
from engine.telemetry.server_metrics import ServerMetricsSample
from engine.workload.profile import Profile
from engine.workload.queue import QueueEntry, ScenarioQueue

CHECK_INTERVAL_S = 1.0
"""How often the detector is asked for a verdict (it reads at most a window of buckets)."""
SATURATION_DRAIN_S = 30.0
"""After a stop, in-flight requests get this long to finish before they are cancelled."""


class Step(Protocol):
    """What the stop holds: the profile being sent (``ProfileRun``)."""

    def stop_sending(self) -> None:
        """No new requests; in-flight ones finish."""

    def cancel_all(self) -> None:
        """Cancel every in-flight request."""


def _load(profile: Profile) -> float:
    return float(profile.concurrency or profile.rate_rps or 0.0)


def load_words(profile: Profile) -> str:
    """``concurrency 128`` or ``40 rps``: the load as the reason says it."""
    if profile.concurrency is not None:
        return f"concurrency {profile.concurrency}"
    return f"{profile.rate_rps:g} rps"


def ladder_of(profile: Profile, entries: tuple[QueueEntry, ...]) -> list[QueueEntry]:
    """The queue entries that are steps of ``profile``'s sweep (itself included)."""
    key = sweep_key(profile)
    return [e for e in entries if sweep_key(e.profile) == key]


def previous_step(
    profile: Profile, entries: tuple[QueueEntry, ...], done: list[ProfileSummary]
) -> StepFigures | None:
    """The figures of the highest finished step of the same sweep below this one's load."""
    loads = {e.name: _load(e.profile) for e in ladder_of(profile, entries)}
    below = [s for s in done if loads.get(s.profile, _load(profile)) < _load(profile)]
    if not below:
        return None
    step = max(below, key=lambda s: loads[s.profile])
    return StepFigures(
        label=step.load,
        output_tokens_per_s=step.output_tokens_per_s,
        ttft_mean_s=step.ttft_s.mean if step.ttft_s else None,
        e2e_mean_s=step.e2e_s.mean if step.e2e_s else None,
    )


def stop_enabled(profile: Profile, entries: tuple[QueueEntry, ...]) -> bool:
    """The profile's ``stop_when_saturated``, or, unset, whether it is a step of a ladder."""
    if profile.stop_when_saturated is not None:
        return profile.stop_when_saturated
    return len({_load(e.profile) for e in ladder_of(profile, entries)}) >= MIN_STEPS


def skip_later_steps(queue: ScenarioQueue, profile: Profile) -> list[str]:
    """Skip the queued steps of ``profile``'s sweep at a higher load; their names."""
    skipped = []
    for entry in ladder_of(profile, queue.entries):
        if _load(entry.profile) > _load(profile) and queue.skip(entry.entry_id):
            skipped.append(entry.name)
    return skipped


class SaturationStop:
    """Watches one step for over-saturation; ``reason`` is set once it stopped the step."""

    def __init__(
        self, profile: Profile, previous: StepFigures | None, step: Step, bus: EventBus
    ) -> None:
        self.profile = profile
        self.detector = SaturationDetector(profile.saturation, load_words(profile), previous)
        self.reason: str | None = None
        self._step = step
        self._bus = bus
        self._measuring = False
        self._next_check_s = 0.0
        self._drain: asyncio.TimerHandle | None = None

    def handle(self, event: Any) -> None:
        """``EventSink`` interface: measured-phase figures of this step go to the detector."""
        if self.reason is not None:
            return
        if isinstance(event, SnapshotTaken) and event.profile == self.profile.name:
            self._measuring = not event.warmup
            if self._measuring:
                t_s = event.t_ns / NS
                self.detector.add_snapshot(t_s, event.output_tokens_per_s, event.in_flight)
                self._check(t_s)
        elif isinstance(event, RequestFinished):
            r = event.record
            # Cancelled requests were stopped by llmtop: they say nothing about the server.
            mine = r.profile == self.profile.name and not r.warmup
            if mine and r.error_kind is not ErrorKind.CANCELLED:
                self.detector.add_request(r.end_ns / NS, ok=r.ok, ttft_s=r.ttft_s, e2e_s=r.e2e_s)
        elif isinstance(event, TelemetrySampled) and self._measuring:
            sample = event.sample
            if isinstance(sample, ServerMetricsSample) and sample.waiting is not None:
                self.detector.add_waiting(event.t_ns / NS, sample.waiting)

    def _check(self, t_s: float) -> None:
        if t_s < self._next_check_s:
            return
        self._next_check_s = t_s + CHECK_INTERVAL_S
        reason = self.detector.check(t_s)
        if reason is None:
            return
        self.reason = reason
        self._step.stop_sending()
        self._drain = asyncio.get_running_loop().call_later(
            SATURATION_DRAIN_S, self._step.cancel_all
        )
        self._bus.publish(NoticeRaised("warning", f"{self.profile.name}: {reason}"))

    def close(self) -> None:
        """The step ended: no cancelling after that."""
        if self._drain is not None:
            self._drain.cancel()


def saturation_stop_for(
    profile: Profile,
    queue: ScenarioQueue,
    done: list[ProfileSummary],
    step: Step,
    bus: EventBus,
) -> SaturationStop | None:
    """The stop for this step, subscribed to ``bus``; ``None`` where it is off."""
    if not stop_enabled(profile, queue.entries):
        return None
    stop = SaturationStop(profile, previous_step(profile, queue.entries, done), step, bus)
    bus.subscribe(stop)
    return stop
