"""One profile sent by the workers, as the parent drives it: the ``ProfileSender`` that
``Engine`` runs in place of a ``ProfileRun``.

The parent hands each worker its share (``engine.workload.split``), waits until every one
has warmed up, and gives them one start time for the measured phase (each on its own
clock), so open-loop arrivals and a duration stop line up as in one process. Reports come
back in batches; records are republished on the run's bus in the order requests ended
(``ordering``), after the aggregate, the outage rule and the live figures have had them,
exactly what ``ProfileRun._finish`` does in one process.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from time import perf_counter_ns
from typing import Any

from engine.events import NoticeRaised, RequestFinished, RequestStarted, SnapshotTaken
from engine.metrics.client_health import is_saturated
from engine.metrics.summary import ProfileAggregate
from engine.run.ids import RequestIds
from engine.run.live_figures import RecentLatencies
from engine.run.profile_run import RunContext
from engine.run.workers.messages import (
    Batch,
    Control,
    ControlName,
    Finished,
    Measure,
    Report,
    ShareDone,
    StartProfile,
    WarmedUp,
)
from engine.run.workers.ordering import FinishOrder
from engine.run.workers.state import WorkerState
from engine.stats import NS
from engine.workload.profile import Profile
from engine.workload.split import Share, split

START_LEAD_NS = 50_000_000
"""How far ahead the common start of the measured phase is set, so that every worker has
its ``Measure`` before the time comes (plus the slowest worker's round trip)."""
STARTED, WARM, DONE = 0, 1, 2
"""How far each worker is through the profile."""
Calibrate = Callable[[], Awaitable[dict[str, Any] | None]]


class PooledProfileRun:
    """Sends one profile through the workers; ``Engine`` drives it as a ``ProfileRun``."""

    def __init__(
        self,
        ctx: RunContext,
        profile: Profile,
        workers: list[WorkerState],
        *,
        token: int,
        ids: RequestIds,
        calibrate: Calibrate | None,
        notices_seen: set[str],
    ) -> None:
        self.ctx, self.profile, self.token = ctx, profile, token
        self.shares: list[Share] = split(profile, len(workers))
        self.workers = workers[: len(self.shares)]
        self._slot = {w.number: i for i, w in enumerate(self.workers)}
        self.aggregate = ProfileAggregate(profile, ctx.slo)
        self.stopping = self.interrupted = False
        self.calibration: dict[str, Any] | None = None
        self.saturated: list[int] = []
        """Workers that were saturated during this profile."""
        self._ids, self._id_base = ids, ids.next_number - 1
        self._max_number = self._id_base
        self._calibrate, self._notices_seen = calibrate, notices_seen
        self._holds: set[str] = set()
        self._started = False
        self._phase = {w.number: STARTED for w in self.workers}
        self._changed = asyncio.Event()
        self._order = FinishOrder(self._phase)
        self._snapshots: dict[int, SnapshotTaken] = {}
        self._recent = RecentLatencies()
        self._in_flight: dict[int, set[str]] = {w.number: set() for w in self.workers}
        self._lag_start = {w.number: len(w.schedule_lag_s) for w in self.workers}
        self._finished = dict.fromkeys(self._phase, 0)
        self._measured_start_ns: int | None = None
        self._last_end_ns = 0
        self._paused_ns: list[int] = []
        self._started_ns = perf_counter_ns()

    # -- the profile --

    async def execute(self) -> None:
        """Start every share, wait for their warm-ups, start the measured phase together,
        and return when every share has ended (or its worker was lost).
        """
        if self._calibrate is not None:
            self.calibration = await self._calibrate()
        if self.stopping or self.interrupted:
            return
        points = self.calibration.get("points") if self.calibration else None
        for state, share in zip(self.workers, self.shares):
            state.link.send(
                StartProfile(
                    token=self.token,
                    profile=self.profile,
                    share=share,
                    id_base=self._id_base,
                    origin_ns=self.ctx.origin_ns + state.offset_ns,
                    words=self.ctx.words,
                    calibration_points=tuple(map(tuple, points)) if points else None,
                    holds=tuple(sorted(self._holds)),
                )
            )
        self._started = True
        await self._until(WARM)
        if not (self.stopping or self.interrupted):
            await self._begin_measured()
        await self._until(DONE)
        for finished in self._order.drain():
            self._publish(finished)
        self._ids.skip_past(self._max_number)

    async def _begin_measured(self) -> None:
        slowest = max((w.error_ns for w in self.workers), default=0)
        start = perf_counter_ns() + START_LEAD_NS + 2 * slowest
        self._measured_start_ns = start
        for state in self._live():
            state.link.send(Measure(self.token, start + state.offset_ns))
        await asyncio.sleep(max(0, start - perf_counter_ns()) / NS)
        await self.ctx.on_measured_start()

    async def _until(self, phase: int) -> None:
        while any(p < phase for p in self._phase.values()):
            self._changed.clear()
            await self._changed.wait()

    def _live(self) -> list[WorkerState]:
        return [w for w in self.workers if w.alive and self._phase[w.number] < DONE]

    # -- controls: the parent decides, every worker obeys --

    def _broadcast(self, name: ControlName, reason: str = "user") -> None:
        if self._started:
            for state in self._live():
                state.link.send(Control(name, reason))

    def stop_sending(self) -> None:
        """No new requests on any worker; in-flight ones finish and count."""
        self.stopping = True
        self._broadcast("stop_sending")

    def pause_sending(self, reason: str = "user") -> None:
        """Every worker holds sending until ``resume_sending(reason)``."""
        if self.stopping or self.interrupted:
            return
        self._holds.add(reason)
        self._broadcast("pause_sending", reason)

    def resume_sending(self, reason: str = "user") -> None:
        """Undo ``pause_sending(reason)`` on every worker."""
        self._holds.discard(reason)
        self._broadcast("resume_sending", reason)

    def cancel_all(self) -> None:
        """Every worker cancels what it has in flight (recorded as ``cancelled``)."""
        self.interrupted = True
        self._broadcast("cancel_all")

    # -- reports --

    def on_report(self, state: WorkerState, report: Report) -> None:
        """A report of this profile from ``state``'s worker."""
        worker = state.number
        if isinstance(report, Batch):
            self._batch(state, report)
        elif isinstance(report, WarmedUp):
            self._phase[worker] = max(self._phase[worker], WARM)
            self._changed.set()
        elif isinstance(report, ShareDone):
            self._share_done(state, report)

    def _batch(self, state: WorkerState, batch: Batch) -> None:
        worker = state.number
        for event in batch.events:
            if isinstance(event, Finished):
                self._order.add(event)
                # The outage rule now, not after the merge's wait: it is about the server,
                # and the order of failures across workers does not change its count.
                self.ctx.on_request_finished(event.record)
            elif isinstance(event, RequestStarted):
                self._in_flight[worker].add(event.request_id)
                self.ctx.bus.publish(event)
            elif event.message not in self._notices_seen:  # N workers learn the same thing
                self._notices_seen.add(event.message)
                self.ctx.bus.publish(event)
        if batch.snapshot is not None:
            self._snapshots[worker] = batch.snapshot
        for finished in self._order.advance(worker, batch.flushed_ns):
            self._publish(finished)

    def _publish(self, finished: Finished) -> None:
        """What ``ProfileRun._finish`` does with a record, for a record a worker sent."""
        record = finished.record
        state = self.workers[self._slot[record.worker or 0]]
        self.ctx.bus.publish(RequestFinished(record))
        self.aggregate.add(record, finished.gaps)
        self._in_flight[state.number].discard(record.request_id)
        self._finished[state.number] += 1
        state.records += 1
        self._max_number = max(self._max_number, int(record.request_id.rpartition("_")[2]))
        if record.warmup:
            return
        if record.schedule_lag_s is not None:
            state.schedule_lag_s.append(record.schedule_lag_s)
        self._last_end_ns = max(self._last_end_ns, record.end_ns)
        if record.ok:
            self._recent.add(record)

    def _share_done(self, state: WorkerState, report: ShareDone) -> None:
        worker = state.number
        self._phase[worker] = DONE
        self._paused_ns.append(report.paused_ns)
        state.latest = report.health
        for finished in self._order.retire(worker):
            self._publish(finished)
        self._settle(worker)
        sched = state.schedule_lag_p99_ms(self._lag_start[worker])
        if is_saturated(report.health.cpu_pct, report.health.lag_ms[1], sched):
            self.saturated.append(worker)
            self.ctx.bus.publish(NoticeRaised("warning", self._saturated_words(state, sched)))

    def _saturated_words(self, state: WorkerState, sched_ms: float | None) -> str:
        health = state.latest
        assert health is not None
        cpu, lag = health.cpu_pct, health.lag_ms[1]
        n = len(self.workers)
        return (
            f"worker {state.number} was saturated during '{self.profile.name}' (CPU "
            f"{cpu or 0:.0f} % of a core, loop lag p99 {lag or 0:.1f} ms, schedule lag p99 "
            f"{sched_ms or 0:.1f} ms): its requests may have been sent or timed late; "
            f"--workers auto would have added one ({n + 1} workers)"
        )

    def _settle(self, worker: int) -> None:
        """A worker's share ended: its live figures stop counting as current."""
        snap = self._snapshots.get(worker)
        if snap is not None:
            self._snapshots[worker] = dataclasses.replace(
                snap,
                in_flight=0,
                output_tokens_per_s=0.0,
                input_tokens_per_s=0.0,
                requests_per_s=0.0,
            )
        self._changed.set()

    def worker_lost(self, state: WorkerState, reason: str) -> bool:
        """``state``'s worker died: keep what it sent, say what share of the load is gone.
        False when it had no part in this profile (or had finished it).
        """
        worker = state.number
        if worker not in self._phase or self._phase[worker] == DONE:
            return False
        self._phase[worker] = DONE
        for finished in self._order.retire(worker):
            self._publish(finished)
        self._settle(worker)
        self.ctx.bus.publish(NoticeRaised("warning", self._lost_words(state, reason)))
        if all(w.lost is not None for w in self.workers) and self.ctx.on_failure is not None:
            # Nobody is left to send: the profile did not run as asked, whatever was kept.
            self.ctx.on_failure(
                f"every worker of '{self.profile.name}' was lost (the last {reason}): "
                "nothing was sending any more"
            )
        return True

    def _lost_words(self, state: WorkerState, reason: str) -> str:
        p, share = self.profile, self.shares[self._slot[state.number]]
        if p.concurrency is not None:
            part, pct = f"{share.width} of {p.concurrency} streams", share.width / p.concurrency
        else:
            rate = (p.rate_rps or 0) / share.workers
            part, pct = f"{rate:g} of {p.rate_rps:g} arrivals/s", 1 / share.workers
        start = self._measured_start_ns
        when = f"{(perf_counter_ns() - start) / NS:.1f} s into" if start else "before"
        lost = len(self._in_flight[state.number])
        return (
            f"worker {state.number} ({state.link.kind} {state.link.pid} on {state.link.host}) "
            f"{reason} {when} the measured phase of '{p.name}': its share, {part} "
            f"({100 * pct:.1f} % of the load), was not sent from then on; {lost} requests in "
            f"flight on it have no record; the {self._finished[state.number]} it finished are "
            "kept"
        )

    # -- figures --

    async def publish_snapshots(self, interval_s: float) -> None:
        """Publish the workers' live figures, summed, every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            if self._snapshots:
                self.ctx.bus.publish(self.snapshot())

    def snapshot(self) -> SnapshotTaken:
        """The latest figures of every worker, summed; medians over the records received."""
        snaps = list(self._snapshots.values())
        warm = any(s.warmup for s in snaps)
        ttft, tpot = self._recent.medians()
        now = perf_counter_ns()
        return SnapshotTaken(
            profile=self.profile.name,
            t_ns=now - self.ctx.origin_ns,
            elapsed_s=(now - self._started_ns) / NS,
            window_s=max(s.window_s for s in snaps),
            in_flight=sum(s.in_flight for s in snaps),
            sent_total=sum(s.sent_total for s in snaps),
            finished_total=sum(s.finished_total for s in snaps),
            failed_total=sum(s.failed_total for s in snaps),
            planned_total=self.profile.warmup_requests if warm else self.profile.requests,
            output_tokens_per_s=sum(s.output_tokens_per_s for s in snaps),
            input_tokens_per_s=sum(s.input_tokens_per_s for s in snaps),
            requests_per_s=sum(s.requests_per_s for s in snaps),
            ttft_p50_s=ttft,
            tpot_p50_s=tpot,
            warmup=warm,
        )

    def duration_s(self) -> float:
        """Common start of the measured phase to the last measured end, less the pause time
        every worker left out (the least of theirs: a pause counts only while all were idle).
        """
        if self._measured_start_ns is None or not self._last_end_ns:
            return 0.0
        start = self._measured_start_ns - self.ctx.origin_ns
        paused = min(self._paused_ns, default=0)
        return max(0, self._last_end_ns - start - paused) / NS
