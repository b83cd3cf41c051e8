"""Seeded, clock-free runs for the TUI tests: events as the engine would publish them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from engine.events import (
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RequestFinished,
    RunFinished,
    RunStarted,
    SnapshotTaken,
    TelemetrySampled,
)
from engine.metrics.summary import ClientHealth, ProfileAggregate, RunSummary, Slo
from engine.records import ErrorKind, RequestRecord
from engine.telemetry.gpu import GpuSample
from engine.telemetry.samples import SampleKind
from engine.telemetry.server_metrics import ServerMetricsSample
from engine.workload.profile import Profile
from engine.workload.queue import ScenarioQueue
from tests.support.builders import make_profile
from tui.live.state import LiveState

GPU = GpuSample(
    index=0,
    name="NVIDIA H200",
    uuid=None,
    utilization_pct=63.0,
    memory_used_mib=74210.0,
    memory_total_mib=143771.0,
    power_w=412.5,
    power_limit_w=700.0,
    energy_mj=None,
    temperature_c=58.0,
    sm_clock_mhz=None,
)
SERVER = ServerMetricsSample(
    t_s=0.0, family="vllm", running=12.0, waiting=3.0, kv_cache_usage_pct=41.5
)


class FrozenClock:
    """A clock that moves only when told: snapshots never depend on the time."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(
    i: int,
    profile: str,
    *,
    rng: random.Random,
    error: ErrorKind | None = None,
    ttft_s: float | None = None,
) -> RequestRecord:
    """A plausible finished request: ~120 ms TTFT, ~12 ms TPOT, 128 output tokens."""
    ttft = ttft_s if ttft_s is not None else rng.uniform(0.08, 0.16)
    tpot = rng.uniform(0.010, 0.014)
    ok = error is None
    e2e = ttft + tpot * 127 if ok else ttft
    return RequestRecord(
        run_id="seeded",
        request_id=f"req_{i:06d}",
        profile=profile,
        concurrency=8,
        rate_rps=None,
        warmup=False,
        endpoint="chat",
        scheduled_ns=i * 10**7,
        sent_ns=i * 10**7,
        connection_ready_ns=None,
        headers_ns=None,
        first_chunk_ns=None,
        first_token_ns=None,
        first_content_ns=None,
        last_token_ns=None,
        end_ns=i * 10**7 + int(e2e * 1e9),
        ttft_s=ttft if ok else None,
        ttfc_s=None,
        e2e_s=e2e if ok else None,
        tpot_s=tpot if ok else None,
        ttft_from_scheduled_s=None,
        e2e_from_scheduled_s=None,
        schedule_lag_s=0.0,
        client_queue_wait_s=0.0,
        itl=None,
        token_chunks=128 if ok else 0,
        prompt_tokens=512 if ok else None,
        prompt_tokens_source="usage" if ok else None,
        completion_tokens=128 if ok else None,
        completion_tokens_source="usage" if ok else None,
        ok=ok,
        error_kind=error,
        error_message="HTTP 503: overloaded" if error else None,
        http_status=503 if error else 200,
        finish_reason="length" if ok else None,
    )


@dataclass
class SeededRun:
    """A run of two finished profiles and one running, as events."""

    gpu: bool = True
    server_metrics: bool = True
    failures: bool = False
    profiles: list[Profile] = field(
        default_factory=lambda: [
            make_profile(name="short-qa", concurrency=8, requests=60),
            make_profile(name="long-qa", concurrency=8, requests=200),
            make_profile(name="stress", concurrency=64, requests=500),
        ]
    )

    def state(self, clock: FrozenClock | None = None, *, finished: bool = False) -> LiveState:
        clock = clock or FrozenClock()
        state = LiveState(clock=clock)
        state.set_slo(Slo(ttft_s=0.15, tpot_s=0.1))
        for event in self.events(clock, finished=finished):
            state.apply(event)
        return state

    def events(self, clock: FrozenClock, *, finished: bool):
        rng = random.Random(7)
        queue = ScenarioQueue(self.profiles)
        yield RunStarted(
            "seeded",
            "llmtop-results/20261121-090000-seeded",
            "http://127.0.0.1:8000",
            "Qwen/Qwen3-0.6B",
            "vllm",
            tuple(p.name for p in self.profiles),
        )
        clock.now += 83.0
        yield QueueChanged(queue.entries)
        number = 0
        summaries = []
        for index, profile in enumerate(self.profiles[:2]):
            entry = queue.start_next()
            yield ProfileStarted(profile, index, 3)
            aggregate = ProfileAggregate(profile, Slo(ttft_s=0.15, tpot_s=0.1))
            for _ in range(profile.requests):
                number += 1
                failed = self.failures and number % 17 == 0
                r = record(
                    number, profile.name, rng=rng, error=ErrorKind.HTTP_5XX if failed else None
                )
                aggregate.add(r, [r.tpot_s] * 4 if r.ok else ())
                yield RequestFinished(r)
            summary = aggregate.summarize(30.0, "completed")
            summaries.append(summary)
            yield ProfileFinished(summary)
            queue.finish(entry.entry_id, "completed", summary.requests, summary.failures)
        queue.start_next()
        yield QueueChanged(queue.entries)
        yield ProfileStarted(self.profiles[2], 2, 3)
        for step in range(120):
            yield SnapshotTaken(
                "stress",
                step * 250_000_000,
                step / 4,
                2.0,
                64,
                200,
                180,
                0,
                500,
                9000 + 3000 * ((step % 20) / 20),
                36000.0,
                70.0,
                0.14,
                0.012,
                False,
            )
            if self.gpu:
                yield TelemetrySampled(
                    SampleKind.GPU, step, replace(GPU, energy_mj=10**7 + step * 100_000)
                )
            if self.server_metrics:
                yield TelemetrySampled(SampleKind.SERVER_METRICS, step, SERVER)
        for _ in range(40):
            number += 1
            slow = 0.4 if number % 9 == 0 else None
            yield RequestFinished(record(number, "stress", rng=rng, ttft_s=slow))
        if not self.gpu:
            yield NoticeRaised(
                "info", "no NVIDIA driver found (NVML: library not found): GPU figures are skipped"
            )
        if self.failures:
            yield NoticeRaised("warning", "the server closed a keep-alive connection")
        if finished:
            yield RunFinished(
                RunSummary(
                    run_id="seeded",
                    status="failed" if self.failures else "completed",
                    exit_code=1 if self.failures else 0,
                    started_unix_s=0.0,
                    duration_s=83.0,
                    profiles=summaries,
                    client=ClientHealth(
                        loop_lag_p50_ms=None,
                        loop_lag_p99_ms=None,
                        loop_lag_max_ms=None,
                        sink_time_s=0.0,
                    ),
                    notices=[],
                    error="the server process exited with code 137 during the run"
                    if self.failures
                    else None,
                )
            )


class IdleControls:
    """Controls of a live run that ignore every call (snapshots only look)."""

    read_only = False

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: None
