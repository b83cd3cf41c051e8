"""The workload runner: drives profiles at a server and reports through the event bus.

Load shapes:

* closed loop: ``concurrency`` workers, each sending its next request as soon as its previous
  one ends (optionally in rounds with a pause between them);
* open loop: requests arrive at ``rate_rps`` (constant spacing or seeded Poisson) regardless of
  completions; latency is also measured from each request's scheduled arrival, so a client
  that falls behind cannot hide queueing.

Each profile runs its warm-up requests first (recorded, excluded from aggregates), then its
measured phase, which stops at ``requests`` or ``duration_s``, whichever comes first.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine import __version__
from engine.client import RequestSpec, ServerQuirks, StreamingClient
from engine.events import (
    EventBus,
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    RequestFinished,
    RequestStarted,
    RunFinished,
    RunStarted,
    SnapshotTaken,
)
from engine.exchange import NS, Exchange
from engine.loop_lag import LoopLagMonitor
from engine.profile import Profile
from engine.prompts import PromptFactory
from engine.records import ErrorKind
from engine.results import ResultsWriter, new_run_id
from engine.summary import ClientHealth, ProfileAggregate, ProfileSummary, RunSummary, Slo

EXIT_OK = 0
EXIT_INTERRUPTED = 130
RECENT_TTFT_SAMPLES = 256
RATE_WINDOW_S = 2.0
GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections during a run (Python's default is 700)."""
FD_HEADROOM = 256
"""Descriptors kept free beyond one socket per connection: results files, logs, the UI."""
EXACT_OUTPUT_FIELDS = {"vllm": ("ignore_eos", "min_tokens"), "llama.cpp": ("ignore_eos",),
                       "sglang": ("ignore_eos",)}
"""Request fields that make each server generate exactly max_tokens tokens. Unknown servers
get ``ignore_eos`` (dropped if rejected); ``exact_output_honoured`` records the outcome."""


class RunConfig(BaseModel):
    """Everything a run needs. ``api_key`` is never serialised."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    url: str
    """Server base URL without ``/v1`` (credentials are never stored)."""
    model: str
    """Model name sent in every request."""
    profiles: list[Profile]
    """Profiles to run, in order."""
    results_root: Path
    """Folder under which the run's own folder is created."""
    api_key: SecretStr | None = Field(default=None, exclude=True)
    """Bearer token; kept in memory only."""
    slo: Slo = Slo()
    """Objectives for goodput."""
    connect_timeout_s: float = 10.0
    """Give up connecting after this long."""
    stall_timeout_s: float = 300.0
    """Fail a request after this long without a byte from the server."""
    save_itl: bool = False
    """Store every request's raw inter-token gaps in its record."""
    snapshot_interval_s: float = 0.25
    """How often live figures are published."""
    server_kind: str = "unknown"
    """Detected server implementation."""
    run_meta: dict[str, Any] = Field(default_factory=dict)
    """Extra metadata for ``run.json`` (arguments, detection, host)."""


class Engine:
    """Runs a ``RunConfig``'s profiles, publishing events; returns the run summary."""

    def __init__(self, config: RunConfig, bus: EventBus | None = None,
                 run_id: str | None = None) -> None:
        self.config = config
        self.bus = bus or EventBus()
        self.run_id = run_id or new_run_id()
        self.run_dir = config.results_root / self.run_id
        self.quirks = ServerQuirks(exact_output_fields=EXACT_OUTPUT_FIELDS.get(
            config.server_kind, ("ignore_eos",)))
        self._origin_ns = perf_counter_ns()
        self._origin_unix_ns = time.time_ns()
        self._ids = itertools.count(1)
        self._interrupted = False
        self._current: _ProfileRun | None = None
        self._lag = LoopLagMonitor()

    # -- control (safe to call from signal handlers on the engine's loop) --

    def interrupt(self) -> None:
        """Stop sending and cancel in-flight requests (recorded as ``cancelled``)."""
        self._interrupted = True
        if self._current is not None:
            self._current.cancel_all()

    def stop_sending(self) -> None:
        """End the current profile early: no new requests, in-flight ones finish and count."""
        if self._current is not None:
            self._current.stop_sending()

    # -- the run --

    async def run(self) -> RunSummary:
        """Execute every profile in order; always writes ``summary.json``."""
        writer = ResultsWriter(self.run_dir, self._meta())
        self.bus.sinks.insert(0, writer)
        self.bus.publish(RunStarted(self.run_id, str(self.run_dir), self.config.url,
                                    self.config.model, self.config.server_kind,
                                    tuple(p.name for p in self.config.profiles)))
        summaries: list[ProfileSummary] = []
        error: str | None = None
        # A full garbage collection stalls the loop for tens of milliseconds once many objects
        # exist, and every chunk arriving meanwhile is stamped late. Objects alive at the start
        # are frozen out of collection for the run.
        # Young collections less often, so objects that live one request are freed by refcount
        # rather than promoted and rescanned by the full collections that stall the loop.
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        lag_task = asyncio.create_task(self._lag.run())
        try:
            for index, profile in enumerate(self.config.profiles):
                if self._interrupted:
                    break
                summaries.append(await self._run_profile(profile, index))
        except Exception as exc:  # noqa: BLE001 - the summary of what finished is still written
            error = f"{type(exc).__name__}: {exc}"
        finally:
            lag_task.cancel()
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        summary = self._summary(summaries, error)
        self.bus.publish(RunFinished(summary))
        writer.close()
        return summary

    def _meta(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "run_id": self.run_id, "llmtop_version": __version__, "url": cfg.url,
            "model": cfg.model, "server_kind": cfg.server_kind,
            "profiles": [p.model_dump() for p in cfg.profiles],
            "slo": cfg.slo.model_dump(), "stall_timeout_s": cfg.stall_timeout_s,
            "connect_timeout_s": cfg.connect_timeout_s, "started_unix_s": self._origin_unix_ns / NS,
            "clock": {"origin_unix_ns": self._origin_unix_ns,
                      "origin_perf_counter_ns": self._origin_ns,
                      "note": "t_ns fields are perf_counter_ns offsets from origin"},
            **cfg.run_meta,
        }

    def _summary(self, profiles: list[ProfileSummary], error: str | None) -> RunSummary:
        status = "failed" if error else "interrupted" if self._interrupted else "completed"
        lag = self._lag.percentiles_ms()
        return RunSummary(
            run_id=self.run_id, status=status,
            exit_code=EXIT_INTERRUPTED if self._interrupted else (1 if error else EXIT_OK),
            started_unix_s=self._origin_unix_ns / NS,
            duration_s=(perf_counter_ns() - self._origin_ns) / NS, profiles=profiles,
            client=ClientHealth(loop_lag_p50_ms=lag[0], loop_lag_p99_ms=lag[1],
                                loop_lag_max_ms=lag[2], sink_time_s=self.bus.sink_time_s),
            notices=list(self.bus.notices), error=error,
        )

    async def _run_profile(self, profile: Profile, index: int) -> ProfileSummary:
        self.bus.publish(ProfileStarted(profile, index, len(self.config.profiles)))
        pool = profile.concurrency or profile.max_in_flight
        problem = ensure_open_files(pool)
        if problem:
            self.bus.publish(NoticeRaised("warning", problem))
        client = StreamingClient(
            self.config.url, max_connections=pool,
            api_key=self.config.api_key.get_secret_value() if self.config.api_key else None,
            connect_timeout_s=self.config.connect_timeout_s,
            stall_timeout_s=self.config.stall_timeout_s, quirks=self.quirks,
            on_notice=lambda m: self.bus.publish(NoticeRaised("warning", m)))
        run = _ProfileRun(self, profile, client)
        self._current = run
        snapshots = asyncio.create_task(run.publish_snapshots(self.config.snapshot_interval_s))
        try:
            async with client:
                await run.execute()
        finally:
            snapshots.cancel()
            self._current = None
        status = "interrupted" if self._interrupted else "stopped" if run.stopping else "completed"
        summary = run.aggregate.summarize(run.duration_s(), status)
        self.bus.publish(ProfileFinished(summary))
        return summary


class _ProfileRun:
    """State of one profile while it runs."""

    def __init__(self, engine: Engine, profile: Profile, client: StreamingClient) -> None:
        self.engine = engine
        self.profile = profile
        self.client = client
        self.factory = PromptFactory(profile)
        self.aggregate = ProfileAggregate(profile, engine.config.slo)
        self.stopping = False
        self._woken = False
        self._sleepers: set[asyncio.Future[None]] = set()
        self.warmup_phase = profile.warmup_requests > 0
        self._next = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: dict[str, Exchange] = {}
        self._measured_start_ns: int | None = None
        self._deadline_ns: int | None = None
        self._last_end_ns = 0
        self._paused_ns = 0
        self._sent = self._finished = self._failed = 0
        self._out_tokens = self._in_tokens = 0
        self._recent_ttft: deque[float] = deque(maxlen=RECENT_TTFT_SAMPLES)
        self._recent_tpot: deque[float] = deque(maxlen=RECENT_TTFT_SAMPLES)
        self._window: deque[tuple[int, int, int, int]] = deque()
        self._started_ns = perf_counter_ns()

    # -- phases --

    async def execute(self) -> None:
        p = self.profile
        if p.warmup_requests:
            width = p.concurrency or min(p.warmup_requests, max(1, round(p.rate_rps or 1)))
            await self._closed_loop(width, limit=p.warmup_requests)
        self.warmup_phase = False
        if self.engine._interrupted or self.stopping:
            return
        self._measured_start_ns = perf_counter_ns()
        if p.duration_s:
            self._deadline_ns = self._measured_start_ns + int(p.duration_s * NS)
        limit = p.warmup_requests + p.requests if p.requests else None
        if p.rate_rps is not None:
            await self._open_loop(limit)
        elif p.round_pause_s:
            await self._rounds(limit)
        else:
            await self._closed_loop(p.concurrency or 1, limit)

    def _take_index(self, limit: int | None) -> int | None:
        """The next request's index, or ``None`` when this phase must stop sending."""
        if self._must_stop(limit):
            return None
        index = self._next
        self._next += 1
        return index

    async def _closed_loop(self, width: int, limit: int | None) -> None:
        async def worker() -> None:
            while (index := self._take_index(limit)) is not None:
                await self._one(index, perf_counter_ns())

        await self._gather(worker() for _ in range(width))

    async def _rounds(self, limit: int | None) -> None:
        width = self.profile.concurrency or 1
        while True:
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
        return (self.stopping or self.engine._interrupted
                or (limit is not None and self._next >= limit)
                or (self._deadline_ns is not None and perf_counter_ns() >= self._deadline_ns))

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

    async def _open_loop(self, limit: int | None) -> None:
        start = self._measured_start_ns or perf_counter_ns()
        for offset_s in _arrivals(self.profile):
            due = start + int(offset_s * NS)
            if self._deadline_ns is not None and due >= self._deadline_ns:
                break
            delay = (due - perf_counter_ns()) / NS
            if delay > 0:
                await self._sleep(delay)
            index = self._take_index(limit)
            if index is None:
                break
            if len(self._in_flight) >= self.profile.max_in_flight:
                self._not_sent(index, due)
                continue
            self._spawn(self._one(index, due))
        await self._gather(())

    async def _gather(self, coroutines: Any) -> None:
        for coroutine in coroutines:
            self._spawn(coroutine)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        """Cancel every worker and in-flight request (Ctrl+C)."""
        self._wake_sleepers()
        for task in list(self._tasks):
            task.cancel()

    # -- one request --

    async def _one(self, index: int, scheduled_ns: int) -> None:
        plan = self.factory.plan(index)
        exchange = Exchange(scheduled_ns)
        exchange.requested_input_tokens = plan.input_tokens
        exchange.requested_max_tokens = plan.max_tokens
        exchange.exact_output_requested = self.profile.exact_output
        spec = RequestSpec(self.profile.endpoint, self.factory.body(plan, self.engine.config.model),
                           exact_output=self.profile.exact_output)
        request_id = f"req_{next(self.engine._ids):06d}"
        warmup = self.warmup_phase
        self._in_flight[request_id] = exchange
        if not warmup:
            self._sent += 1
        self.engine.bus.publish(RequestStarted(request_id, self.profile.name, warmup,
                                               perf_counter_ns() - self.engine._origin_ns))
        try:
            await self.client.execute(spec, exchange)
        finally:
            del self._in_flight[request_id]
            self._finish(request_id, exchange, warmup)

    def _not_sent(self, index: int, due: int) -> None:
        exchange = Exchange(due)
        exchange.fail(ErrorKind.CANCELLED, "not sent: max_in_flight requests already in flight")
        self._sent += 1
        self._finish(f"req_{next(self.engine._ids):06d}", exchange, warmup=False)

    def _finish(self, request_id: str, exchange: Exchange, warmup: bool) -> None:
        engine = self.engine
        p = self.profile
        record = exchange.to_record(
            run_id=engine.run_id, request_id=request_id, profile=p.name,
            concurrency=p.concurrency, rate_rps=p.rate_rps, warmup=warmup, endpoint=p.endpoint,
            origin_ns=engine._origin_ns, save_itl=engine.config.save_itl)
        engine.bus.publish(RequestFinished(record))
        self.aggregate.add(record, exchange.gaps_s() if record.ok and not warmup else ())
        if warmup:
            return
        self._finished += 1
        self._last_end_ns = max(self._last_end_ns, exchange.end_ns)
        self._out_tokens += record.completion_tokens or exchange.streamed_tokens
        if not record.ok:
            self._failed += 1
            return
        self._in_tokens += record.prompt_tokens or 0
        if record.ttft_s is not None:
            self._recent_ttft.append(record.ttft_s)
        if record.tpot_s is not None:
            self._recent_tpot.append(record.tpot_s)

    def duration_s(self) -> float:
        """Measured window: first measured schedule to last measured end, minus pauses."""
        if self._measured_start_ns is None or not self._last_end_ns:
            return 0.0
        return max(0, self._last_end_ns - self._measured_start_ns - self._paused_ns) / NS

    # -- live figures --

    async def publish_snapshots(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.engine.bus.publish(self.snapshot())

    def snapshot(self) -> SnapshotTaken:
        """Live figures; output tokens count streamed chunks of in-flight requests too."""
        now = perf_counter_ns()
        streamed = self._out_tokens + sum(ex.streamed_tokens for ex in self._in_flight.values())
        self._window.append((now, streamed, self._in_tokens, self._finished - self._failed))
        while len(self._window) > 2 and now - self._window[0][0] > RATE_WINDOW_S * NS:
            self._window.popleft()
        t0, out0, in0, done0 = self._window[0]
        span = (now - t0) / NS

        def rate(delta: int) -> float:
            return delta / span if span > 0 else 0.0

        return SnapshotTaken(
            profile=self.profile.name, t_ns=now - self.engine._origin_ns,
            elapsed_s=(now - self._started_ns) / NS, window_s=span,
            in_flight=len(self._in_flight), sent_total=self._sent,
            finished_total=self._finished, failed_total=self._failed,
            planned_total=self.profile.requests, output_tokens_per_s=rate(streamed - out0),
            input_tokens_per_s=rate(self._in_tokens - in0),
            requests_per_s=rate(self._finished - self._failed - done0),
            ttft_p50_s=_median(self._recent_ttft), tpot_p50_s=_median(self._recent_tpot),
            warmup=self.warmup_phase,
        )


def ensure_open_files(connections: int) -> str | None:
    """Raise the soft ``RLIMIT_NOFILE`` so ``connections`` sockets fit; a notice if they cannot.

    Many systems start processes with a soft limit of 1024: without this, a run at 1024
    streams fails most connects with EMFILE (bench/RESULTS.md).
    """
    try:
        import resource
    except ImportError:  # Windows has no such limit
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + FD_HEADROOM
    if soft == resource.RLIM_INFINITY or soft >= want:
        return None
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        return f"could not raise the open-file limit from {soft} to {target}: {exc}"
    if target < want:
        return (f"the open-file limit ({hard}) is too low for {connections} connections; "
                f"raise it (ulimit -n) or lower the concurrency")
    return None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _median(values: deque[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _arrivals(profile: Profile) -> Iterator[float]:
    """Arrival offsets in seconds from the start of the measured phase."""
    rate = profile.rate_rps or 1.0
    if profile.arrival == "constant":
        for i in itertools.count():
            yield i / rate
    rng = random.Random(profile.seed)
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate)
