"""A worker's side: runs its share of each profile with an ordinary ``ProfileRun`` and
reports in batches, whatever carries the messages (a pipe, Ray).

The transport calls ``handle`` with each command, in order, on the worker's event loop,
and gives ``emit`` for reports. The worker decides nothing about the run: the parent tells
it when to measure, pause, stop and cancel. Its own records are on the parent's clock
(``StartProfile.origin_ns`` is the parent's origin on this clock) and numbered from the
parent's base, so the parent writes them as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter_ns

from engine.events import Event, EventBus, NoticeRaised, RequestStarted, SnapshotTaken
from engine.http.auth import remember_credentials
from engine.metrics.summary import ProfileAggregate
from engine.records import RequestRecord
from engine.run.config import RunConfig
from engine.run.loop_lag import LoopLagMonitor
from engine.run.outage import CONNECTION_FAILURES, FailureStreak
from engine.run.profile_run import ProfileRun, RunContext
from engine.run.setup import ensure_open_files, initial_quirks, make_client
from engine.run.workers.messages import (
    FLUSH_INTERVAL_S,
    MAX_BATCH,
    Batch,
    Bye,
    Command,
    Control,
    Finished,
    Health,
    Measure,
    Ping,
    Pong,
    Report,
    ShareDone,
    Shutdown,
    StartProfile,
    WarmedUp,
)
from engine.stats import NS, percentile

Emit = Callable[[Report], None]
MIN_LAG_SAMPLES = 50
"""Loop-lag samples (10 ms apart) below which a span's percentiles are not stated: the p99 of
a few samples is their worst one, and a share that lasted a blink would read saturated."""
SELF_HOLD_S = 1.0
"""After ``FAILURES_IN_A_ROW`` connection failures of its own, a worker holds its sending
this long at most: the parent's outage rule, a round trip away, takes the hold over (and
ends it), or, if the other workers' requests were answered meanwhile, lets it lapse."""
MIN_SPAN_S = 0.5
"""Shortest span whose mean CPU is stated, for the same reason."""


class _Forwarding(ProfileAggregate):
    """Where the worker's ``ProfileRun`` counts a finished request: it is handed to the
    parent instead, whose aggregate covers every worker (ITL pools gaps across them).
    """

    def __init__(self, runtime: WorkerRuntime) -> None:  # noqa: D107 - counts nothing itself
        self._runtime = runtime

    def add(self, record: RequestRecord, gaps: Iterable[float] = ()) -> None:
        rt = self._runtime
        record = record.model_copy(update={"worker": rt.worker, "host": rt.host})
        rt.collect(Finished(record, array("d", gaps)))
        if record.error_kind in CONNECTION_FAILURES:
            # The parent's outage rule counts these: a dead server fails requests in a
            # blink, and a batch held for 0.1 s would let hundreds more go before the hold.
            rt.flush()
        if rt.streak.add(record):
            rt.hold_self()


class _Collector:
    """The worker bus's sink: what the parent needs of its events (records come through
    ``_Forwarding``, with their gaps; the parent republishes ``RequestFinished``).
    """

    def __init__(self, runtime: WorkerRuntime) -> None:
        self._runtime = runtime

    def handle(self, event: Event) -> None:
        if isinstance(event, RequestStarted | NoticeRaised):
            self._runtime.collect(event)
        elif isinstance(event, SnapshotTaken):
            self._runtime.snapshot = event


class WorkerRuntime:
    """One worker: a profile share at a time, its loop lag and CPU, batched reports."""

    def __init__(self, worker: int, config: RunConfig, run_id: str, host: str, emit: Emit) -> None:
        self.worker, self.config, self.run_id, self.host = worker, config, run_id, host
        self._emit = emit
        # Redaction is per process: a worker blanks the same key and password in the error
        # messages it records as the parent does.
        remember_credentials(*config.credentials())
        self.quirks = initial_quirks(config.server_kind, config.features)
        self.snapshot: SnapshotTaken | None = None
        self._pending: list[RequestStarted | Finished | NoticeRaised] = []
        self._token = -1
        self._origin_ns = perf_counter_ns()
        self._run: ProfileRun | None = None
        self._measure_at: asyncio.Future[int | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lag = LoopLagMonitor()
        self._done = asyncio.Event()
        self._life = (time.process_time(), perf_counter_ns(), 0)
        self.streak = FailureStreak()
        """This worker's own connection failures in a row (see ``hold_self``)."""
        self._parent_holds = False

    # -- the transport's side --

    async def serve(self) -> None:
        """Measure loop lag and flush batches until ``Shutdown`` (or the parent is gone)."""
        lag = asyncio.create_task(self._lag.run())
        flusher = asyncio.create_task(self._flush_every(FLUSH_INTERVAL_S))
        try:
            await self._done.wait()
            if self._task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        finally:
            lag.cancel()
            flusher.cancel()
        self.flush()
        self._emit(Bye(self._health_since(self._life)))

    def handle(self, command: Command) -> None:
        """Obey one command (called in order, on this worker's loop)."""
        if isinstance(command, Ping):
            self._emit(Pong(command.sent_ns, perf_counter_ns()))
        elif isinstance(command, StartProfile):
            self._start(command)
        elif isinstance(command, Measure):
            if command.token == self._token and self._measure_at and not self._measure_at.done():
                self._measure_at.set_result(command.start_ns)
        elif isinstance(command, Control):
            self._control(command)
        elif isinstance(command, Shutdown):
            self.parent_gone()

    def parent_gone(self) -> None:
        """Stop everything and let ``serve`` return (``Shutdown``, or the parent vanished)."""
        self._control(Control("cancel_all"))
        self._done.set()

    # -- reports --

    def collect(self, event: RequestStarted | Finished | NoticeRaised) -> None:
        """Queue an event for the next batch; send at once past ``MAX_BATCH``."""
        self._pending.append(event)
        if len(self._pending) >= MAX_BATCH:
            self.flush()

    def flush(self) -> None:
        """Send what was collected (an empty batch too: it moves the parent's merge on)."""
        events, self._pending = tuple(self._pending), []
        snapshot, self.snapshot = self.snapshot, None
        flushed = perf_counter_ns() - self._origin_ns
        self._emit(Batch(self._token, events, snapshot, flushed))

    async def _flush_every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if self._run is not None:
                self.flush()

    # -- one profile --

    def _start(self, command: StartProfile) -> None:
        """Build the share's ``ProfileRun`` now, so controls right behind this command find
        it; the sending runs in a task.
        """
        self._token = command.token
        self._origin_ns = command.origin_ns
        self.streak = FailureStreak()
        self._parent_holds = "outage" in command.holds
        share = command.share
        bus = EventBus()
        bus.subscribe(_Collector(self))
        ctx = RunContext(
            self.run_id,
            command.origin_ns,
            bus,
            self.config.model,
            self.config.slo,
            self.config.save_itl,
            _share_ids(command),
            lambda _record: None,
            _nothing,
            words=command.words,
        )
        connections = max(1, share.width or share.max_in_flight)
        problem = ensure_open_files(connections)
        if problem:
            bus.publish(NoticeRaised("warning", problem))
        client = make_client(self.config, connections, self.quirks, bus)
        run = ProfileRun(ctx, command.profile, client, share, _Forwarding(self))
        if command.calibration_points:
            run.factory.calibrate(list(command.calibration_points))
        for reason in command.holds:
            run.pause_sending(reason)
        self._run = run
        self._measure_at = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._drive(command.token, run))

    async def _drive(self, token: int, run: ProfileRun) -> None:
        started = (time.process_time(), perf_counter_ns(), len(self._lag.samples_ms))
        snapshots = asyncio.create_task(run.publish_snapshots(self.config.snapshot_interval_s))
        try:
            async with run.client:
                await run.warm_up()
                self.flush()
                self._emit(WarmedUp(token))
                assert self._measure_at is not None
                start_ns = await self._measure_at
                if start_ns is not None:
                    await run.measure(start_ns)
        except Exception as exc:  # noqa: BLE001 - said to the parent, which ends the share
            self.collect(
                NoticeRaised("error", f"worker {self.worker}: {type(exc).__name__}: {exc}")
            )
        finally:
            snapshots.cancel()
            self.snapshot = run.snapshot()
            self.flush()
            self._run = None
            self._emit(ShareDone(token, run.paused_ns, self._health_since(started)))

    def hold_self(self) -> None:
        """Hold sending now, as the parent's outage rule will a round trip later: a dead
        server fails each of this worker's streams in a blink, hundreds a second.
        """
        run = self._run
        if run is None:
            return
        run.pause_sending("outage")
        asyncio.get_running_loop().call_later(SELF_HOLD_S, self._lapse, run)

    def _lapse(self, run: ProfileRun) -> None:
        if run is self._run and not self._parent_holds:
            self.streak.reset()
            run.resume_sending("outage")

    def _control(self, control: Control) -> None:
        run = self._run
        if run is None:
            return
        if control.reason == "outage" and control.name in ("pause_sending", "resume_sending"):
            self._parent_holds = control.name == "pause_sending"
            self.streak.reset()
        waiting = self._measure_at is not None and not self._measure_at.done()
        if control.name in ("stop_sending", "cancel_all") and waiting:
            # A share waiting for the others' warm-up must not wait for a start now.
            assert self._measure_at is not None
            self._measure_at.set_result(None)
        if control.name == "stop_sending":
            run.stop_sending()
        elif control.name == "cancel_all":
            run.cancel_all()
        elif control.name == "pause_sending":
            run.pause_sending(control.reason)
        else:
            run.resume_sending(control.reason)

    def _health_since(self, start: tuple[float, int, int]) -> Health:
        cpu0, wall0, lag0 = start
        wall_s = (perf_counter_ns() - wall0) / NS
        cpu_pct = 100.0 * (time.process_time() - cpu0) / wall_s if wall_s >= MIN_SPAN_S else None
        lags = sorted(self._lag.samples_ms[lag0:])
        if len(lags) < MIN_LAG_SAMPLES:
            return Health(cpu_pct, (None, None, None))
        return Health(cpu_pct, (percentile(lags, 50), percentile(lags, 99), lags[-1]))


def _share_ids(command: StartProfile) -> Iterator[int]:
    """Request numbers of this worker's requests, in the order its ``ProfileRun`` takes them
    (the ``k``-th request it sends takes the ``k``-th number): the one process's numbers.
    """
    share, base = command.share, command.id_base
    return (base + 1 + share.global_index(k) for k in itertools.count())


async def _nothing() -> None:
    """The measured phase began: the parent opened the telemetry window already."""
