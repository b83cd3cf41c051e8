"""One profile being sent: load shapes, per-request bookkeeping and live figures.

Load shapes:

* closed loop: ``concurrency`` workers, each sending its next request as soon as its previous
  one ends (optionally in rounds with a pause between them);
* open loop: requests arrive at ``rate_rps`` (constant spacing or seeded Poisson) regardless of
  completions; latency is also measured from each request's scheduled arrival, so a client
  that falls behind cannot hide queueing.

Warm-up requests run first (recorded, excluded from aggregates), then the measured phase, which
stops at ``requests`` or ``duration_s``, whichever comes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from engine.events import (
    EventBus,
    NoticeRaised,
    RequestFinished,
    RequestStarted,
    SnapshotTaken,
)
from engine.http.client import RequestSpec, StreamingClient
from engine.http.exchange import Exchange
from engine.metrics.summary import ProfileAggregate, Slo
from engine.records import ErrorKind, RequestRecord
from engine.run.calibration import calibrate, learn_prompt_length
from engine.run.live_figures import RateWindow, RecentLatencies
from engine.stats import NS
from engine.workload.profile import Profile
from engine.workload.prompts import PromptFactory
from engine.workload.split import Share, whole


@dataclass(frozen=True)
class RunContext:
    """What a profile run needs from its run."""

    run_id: str
    origin_ns: int
    """The run's clock origin (``perf_counter_ns``), subtracted from every stored timestamp."""
    bus: EventBus
    model: str
    slo: Slo
    save_itl: bool
    ids: Iterator[int]
    """Shared request counter: ids are unique across the run's profiles."""
    on_request_finished: Callable[[RequestRecord], None]
    """Called with every finished request's record (warm-up included), after it was published:
    lets the run notice a server that died (a managed one's exit, or connection failures in
    a row) and stop sending rather than fail every later request."""
    on_measured_start: Callable[[], Awaitable[None]]
    """Called when the measured phase begins (telemetry opens the profile's window)."""
    on_failure: Callable[[str], None] | None = None
    """Ends the run as failed with this reason (``Engine.fail``): for what only the senders
    can see, such as every worker process lost."""
    calibrate_prompts: bool = False
    """Measure prompt tokens per word with two tiny requests before each profile."""
    words: tuple[str, ...] | None = None
    """Prompt vocabulary of single-token words for this server, when it could be measured."""


class ProfileRun:
    """Sends one profile's requests and keeps its live state; the ``Engine`` runs one at a time."""

    def __init__(
        self,
        ctx: RunContext,
        profile: Profile,
        client: StreamingClient,
        share: Share | None = None,
        aggregate: ProfileAggregate | None = None,
    ) -> None:
        """``share``: the part of the profile this process sends (engine/workload/split.py),
        the whole of it by default; ``aggregate``: where finished requests are counted (a
        worker process hands them to its parent instead).
        """
        self.ctx = ctx
        self.interrupted = False
        self.profile = profile
        self.share = share or whole(profile)
        self.client = client
        self.factory = PromptFactory(profile, ctx.words)
        self.aggregate = aggregate or ProfileAggregate(profile, ctx.slo)
        self.stopping = False
        self.calibration: dict[str, Any] | None = None
        """The prompt-length calibration this profile measured, when it did."""
        self._woken = False
        self._sleepers: set[asyncio.Future[None]] = set()
        self.warmup_phase = profile.warmup_requests > 0
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, Exchange] = {}
        self._warmup_in_flight: set[str] = set()
        self._measured_start_ns: int | None = None
        self._deadline_ns: int | None = None
        self._last_end_ns = 0
        self._paused_ns = 0
        self._gate: asyncio.Future[None] | None = None
        """Set while sending is paused; workers and arrivals wait on it."""
        self._holds: set[str] = set()
        """Why sending is paused: ``user`` (the pause key), ``outage`` (the server is being
        probed); the gate opens when the last reason goes."""
        self._pause_started_ns = 0
        self._shift_ns = 0
        """How far open-loop arrivals moved back because of pauses."""
        self._sent = self._finished = self._failed = 0
        self._warmup_finished = self._warmup_failed = 0
        self._out_tokens = self._in_tokens = 0
        self._recent = RecentLatencies()
        self._window = RateWindow()
        self._started_ns = perf_counter_ns()

    # -- phases --

    async def execute(self) -> None:
        """Send warm-up, then the measured phase, until the profile's stop rule says stop."""
        p = self.profile
        if self.ctx.calibrate_prompts and p.prompt_rep is None and p.prompt_file is None:
            self.calibration = await calibrate(self.factory, self.client, p, self.ctx.model)
        await self.warm_up()
        await self.measure()

    async def warm_up(self) -> None:
        """Send this share's warm-up requests (closed loop), if any."""
        if self.share.warmup_requests:
            await self._closed_loop(self.share.warmup_width, limit=self.share.warmup_requests)
        self.warmup_phase = False

    async def measure(self, start_ns: int | None = None) -> None:
        """The measured phase, until the stop rule says stop. ``start_ns``: when it begins
        (``perf_counter_ns``), so that worker processes begin theirs together; now if None.
        """
        p, share = self.profile, self.share
        if self.interrupted or self.stopping:
            return
        if start_ns is not None:
            await self._sleep(max(0, start_ns - perf_counter_ns()) / NS)
        self._measured_start_ns = perf_counter_ns() if start_ns is None else start_ns
        await self.ctx.on_measured_start()
        if p.duration_s:
            self._deadline_ns = self._measured_start_ns + int(p.duration_s * NS)
        # `is not None`: a worker's share of a small profile may be 0 requests, not unbounded.
        limit = share.warmup_requests + share.requests if share.requests is not None else None
        if p.rate_rps is not None:
            await self._open_loop(limit)
        elif p.round_pause_s:
            await self._rounds(limit)
        else:
            await self._closed_loop(share.width or 1, limit)

    def _take_index(self, limit: int | None) -> int | None:
        """The next request's index, or ``None`` when this phase must stop sending."""
        if self._must_stop(limit):
            return None
        index = self._next
        self._next += 1
        return index

    async def _closed_loop(self, width: int, limit: int | None) -> None:
        async def worker() -> None:
            while await self._resumed() and (index := self._take_index(limit)) is not None:
                await self._one(index, perf_counter_ns())

        await self._gather(worker() for _ in range(width))

    async def _rounds(self, limit: int | None) -> None:
        width = self.share.width or 1
        while await self._resumed():
            batch = [i for i in (self._take_index(limit) for _ in range(width)) if i is not None]
            if not batch:
                return
            now = perf_counter_ns()
            await self._gather(self._one(i, now) for i in batch)
            if self._must_stop(limit):
                return
            paused = perf_counter_ns()
            await self._sleep(self.profile.round_pause_s)
            self._paused_ns += perf_counter_ns() - paused
            if self._deadline_ns is not None:
                self._deadline_ns += perf_counter_ns() - paused

    def _must_stop(self, limit: int | None) -> bool:
        """True when no further request may be sent (without consuming an index)."""
        return (
            self.stopping
            or self.interrupted
            or (limit is not None and self._next >= limit)
            or (self._deadline_ns is not None and perf_counter_ns() >= self._deadline_ns)
        )

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when sending must stop (interrupt, stop, next profile).

        A bare future woken by ``call_later`` (what ``asyncio.sleep`` does inside), so the open
        loop does not create a task per arrival.
        """
        if self._woken:
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        self._sleepers.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._sleepers.discard(waiter)

    def _wake_sleepers(self) -> None:
        self._woken = True
        for waiter in list(self._sleepers):
            _wake(waiter)

    def stop_sending(self) -> None:
        """No new requests; in-flight ones finish and count."""
        self.stopping = True
        self._wake_sleepers()
        self._open_gate()

    def pause_sending(self, reason: str = "user") -> None:
        """Send nothing new until ``resume_sending(reason)``; in-flight requests go on and count.

        The measured window excludes the part of a pause when nothing was in flight, a
        duration stop rule is extended by the whole pause, and open-loop arrivals move back by
        it (no burst of overdue arrivals on resume). A pause by the user and a hold while the
        server is probed (``reason`` ``outage``) overlap: sending resumes when both are over.
        """
        if self.stopping or self.interrupted:
            return
        if self._gate is None:
            self._gate = asyncio.get_running_loop().create_future()
            self._pause_started_ns = perf_counter_ns()
        self._holds.add(reason)

    def resume_sending(self, reason: str = "user") -> None:
        """Undo ``pause_sending(reason)``."""
        self._holds.discard(reason)
        if self._gate is None or self._holds:
            return
        now = perf_counter_ns()
        pause_ns = now - self._pause_started_ns
        if not self._in_flight and self._measured_start_ns is not None:
            idle_from = max(self._pause_started_ns, self._last_end_ns, self._measured_start_ns)
            self._paused_ns += max(0, now - idle_from)
        if self._deadline_ns is not None:
            self._deadline_ns += pause_ns
        self._shift_ns += pause_ns
        self._open_gate()

    def _open_gate(self) -> None:
        self._holds.clear()
        if self._gate is not None:
            _wake(self._gate)
            self._gate = None

    async def _resumed(self) -> bool:
        """Wait while paused; always True (written to sit inside a ``while`` condition)."""
        while self._gate is not None:
            await self._gate
        return True

    async def _open_loop(self, limit: int | None) -> None:
        start = self._measured_start_ns or perf_counter_ns()
        for offset_s in self.share.arrivals(self.profile):
            due = await self._arrival(start + int(offset_s * NS))
            if self._deadline_ns is not None and due >= self._deadline_ns:
                break
            index = self._take_index(limit)
            if index is None:
                break
            if len(self._in_flight) >= self.share.max_in_flight:
                self._not_sent(index, due)
                continue
            self._spawn(self._one(index, due))
        await self._gather(())

    async def _arrival(self, planned_ns: int) -> int:
        """Sleep until an arrival is due (planned time plus pauses so far); its due time."""
        while True:
            due = planned_ns + self._shift_ns
            delay = (due - perf_counter_ns()) / NS
            if delay > 0 and (self._deadline_ns is None or due < self._deadline_ns):
                await self._sleep(delay)
            if self._gate is None or self.stopping or self.interrupted:
                return due
            await self._resumed()

    async def _gather(self, coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
        for coroutine in coroutines:
            self._spawn(coroutine)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        """Cancel every worker and in-flight request (Ctrl+C)."""
        self.interrupted = True
        self._wake_sleepers()
        self._open_gate()
        for task in list(self._tasks):
            task.cancel()

    # -- one request --

    async def _one(self, index: int, scheduled_ns: int) -> None:
        plan = self.factory.plan(self.share.global_index(index))
        exchange = Exchange(scheduled_ns)
        exchange.requested_input_tokens = plan.input_tokens
        exchange.requested_max_tokens = plan.max_tokens
        exchange.exact_output_requested = self.profile.exact_output
        spec = RequestSpec(
            self.profile.endpoint,
            self.factory.body(plan, self.ctx.model),
            exact_output=self.profile.exact_output,
        )
        request_id = f"req_{next(self.ctx.ids):06d}"
        warmup = self.warmup_phase
        self._in_flight[request_id] = exchange
        if warmup:
            self._warmup_in_flight.add(request_id)
        if not warmup:
            self._sent += 1
        self.ctx.bus.publish(
            RequestStarted(
                request_id, self.profile.name, warmup, perf_counter_ns() - self.ctx.origin_ns
            )
        )
        try:
            await self.client.execute(spec, exchange)
        finally:
            del self._in_flight[request_id]
            self._warmup_in_flight.discard(request_id)
            record = self._finish(request_id, exchange, warmup)
            if record.ok and record.prompt_tokens is not None:
                notice = learn_prompt_length(self.factory, self.profile, plan, record.prompt_tokens)
                if notice is not None:
                    self.ctx.bus.publish(NoticeRaised("warning", notice))

    def _not_sent(self, index: int, due: int) -> None:
        exchange = Exchange(due)
        exchange.fail(ErrorKind.CANCELLED, "not sent: max_in_flight requests already in flight")
        self._sent += 1
        self._finish(f"req_{next(self.ctx.ids):06d}", exchange, warmup=False)

    def _finish(self, request_id: str, exchange: Exchange, warmup: bool) -> RequestRecord:
        ctx = self.ctx
        p = self.profile
        gaps = exchange.gaps_s()
        record = exchange.to_record(
            run_id=ctx.run_id,
            request_id=request_id,
            profile=p.name,
            concurrency=p.concurrency,
            rate_rps=p.rate_rps,
            warmup=warmup,
            endpoint=p.endpoint,
            origin_ns=ctx.origin_ns,
            save_itl=ctx.save_itl,
            gaps=gaps,
        )
        ctx.bus.publish(RequestFinished(record))
        self.aggregate.add(record, gaps if record.ok and not warmup else ())
        ctx.on_request_finished(record)
        if warmup:
            self._warmup_finished += 1
            self._warmup_failed += not record.ok
            return record
        self._finished += 1
        self._last_end_ns = max(self._last_end_ns, exchange.end_ns)
        # A failed request adds what it streamed, never what its server claimed (no_output).
        self._out_tokens += (
            (record.completion_tokens or 0) if record.ok else exchange.streamed_tokens
        )
        if not record.ok:
            self._failed += 1
            return record
        self._in_tokens += record.prompt_tokens or 0
        self._recent.add(record)
        return record

    @property
    def paused_ns(self) -> int:
        """Time left out of the measured window so far (idle pauses, round pauses)."""
        return self._paused_ns

    def duration_s(self) -> float:
        """Measured window: first measured schedule to last measured end, minus pauses."""
        if self._measured_start_ns is None or not self._last_end_ns:
            return 0.0
        return max(0, self._last_end_ns - self._measured_start_ns - self._paused_ns) / NS

    # -- live figures --

    async def publish_snapshots(self, interval_s: float) -> None:
        """Publish a ``SnapshotTaken`` every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            self.ctx.bus.publish(self.snapshot())

    def snapshot(self) -> SnapshotTaken:
        """Live figures; output tokens count streamed chunks of in-flight measured requests too
        (during warm-up every rate is 0, ``warmup`` is set and the counters are the warm-up's).
        """
        now = perf_counter_ns()
        # Measured requests only, finished or streaming: a warm-up request's streamed tokens
        # would count while it streams and vanish when it ends (a negative rate at the switch).
        streamed = self._out_tokens + sum(
            ex.streamed_tokens
            for rid, ex in self._in_flight.items()
            if rid not in self._warmup_in_flight
        )
        span, out_rate, in_rate, done_rate = self._window.rates(
            now, streamed, self._in_tokens, self._finished - self._failed
        )
        ttft_p50, tpot_p50 = self._recent.medians()
        # In warm-up the measured phase's "0 of requests" looked stuck and named the wrong
        # total; ``_next`` is the warm-up requests sent (indices go to the warm-up first).
        warm = self.warmup_phase
        return SnapshotTaken(
            profile=self.profile.name,
            t_ns=now - self.ctx.origin_ns,
            elapsed_s=(now - self._started_ns) / NS,
            window_s=span,
            in_flight=len(self._in_flight),
            sent_total=self._next if warm else self._sent,
            finished_total=self._warmup_finished if warm else self._finished,
            failed_total=self._warmup_failed if warm else self._failed,
            planned_total=self.profile.warmup_requests if warm else self.profile.requests,
            output_tokens_per_s=out_rate,
            input_tokens_per_s=in_rate,
            requests_per_s=done_rate,
            ttft_p50_s=ttft_p50,
            tpot_p50_s=tpot_p50,
            warmup=self.warmup_phase,
        )


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
