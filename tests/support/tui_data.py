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
from engine.metrics.client_health import ClientHealth
from engine.metrics.summary import ProfileAggregate, RunSummary, Slo
from engine.records import ErrorKind, ItlStats, RequestRecord
from engine.telemetry.gpu import GpuSample
from engine.telemetry.host import HostSample
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
    t_s: float | None = None,
) -> RequestRecord:
    """A plausible finished request: ~120 ms TTFT, ~12 ms TPOT, 128 output tokens, sent at
    ``t_s`` (default: 10 ms apart by number)."""
    ttft = ttft_s if ttft_s is not None else rng.uniform(0.08, 0.16)
    tpot = rng.uniform(0.010, 0.014)
    ok = error is None
    e2e = ttft + tpot * 127 if ok else ttft
    sent = int(t_s * 1e9) if t_s is not None else i * 10**7
    return RequestRecord(
        run_id="seeded",
        request_id=f"req_{i:06d}",
        profile=profile,
        concurrency=8,
        rate_rps=None,
        warmup=False,
        endpoint="chat",
        scheduled_ns=sent,
        sent_ns=sent,
        connection_ready_ns=sent + 200_000,
        headers_ns=sent + int(ttft * 0.4e9),
        first_chunk_ns=sent + int(ttft * 0.9e9),
        first_token_ns=sent + int(ttft * 1e9) if ok else None,
        first_content_ns=sent + int(ttft * 1e9) if ok else None,
        last_token_ns=sent + int(e2e * 1e9) - 100_000 if ok else None,
        end_ns=sent + int(e2e * 1e9),
        ttft_s=ttft if ok else None,
        ttfc_s=None,
        e2e_s=e2e if ok else None,
        tpot_s=tpot if ok else None,
        ttft_from_scheduled_s=None,
        e2e_from_scheduled_s=None,
        schedule_lag_s=0.0,
        client_queue_wait_s=0.0,
        itl=ItlStats(
            count=127, mean_s=tpot, p50_s=tpot, p90_s=tpot * 1.2, p99_s=tpot * 1.6, max_s=tpot * 3
        )
        if ok
        else None,
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


LADDER = (1, 2, 4, 8, 16)
"""Concurrency steps of the seeded ladder (the last one running)."""
RUN_S = 83.0
"""How long the seeded run has been going."""


def ladder_profiles() -> list[Profile]:
    """A concurrency ladder: profiles that differ only in load, as a suite writes them."""
    return [make_profile(name=f"ladder-c{c}", concurrency=c, requests=16 * c) for c in LADDER]


@dataclass
class SeededRun:
    """A run of finished profiles and a running last one, as events over ``RUN_S`` seconds,
    with GPU, host and server samples every second."""

    gpu: bool = True
    server_metrics: bool = True
    failures: bool = False
    gpus: int = 1
    """GPUs sampled (8: a box like an H100 x8)."""
    client_cpu_pct: float = 34.0
    """llmtop's engine CPU in the host samples (above 80: client-bound)."""
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
        yield RunStarted(
            "seeded",
            "llmtop-results/20261121-090000-seeded",
            "http://127.0.0.1:8000",
            "Qwen/Qwen3-0.6B",
            "vllm",
            tuple(p.name for p in self.profiles),
        )
        clock.now += RUN_S
        timed = sorted(self._timed(finished), key=lambda pair: pair[0])
        yield from (event for _, event in timed)

    def _timed(self, finished: bool):
        """``(t_s, event)`` for the whole run, in any order (``events`` sorts them)."""
        rng = random.Random(7)
        queue = ScenarioQueue(self.profiles)
        yield 0.0, QueueChanged(queue.entries)
        done = self.profiles[:-1]
        step_s = (RUN_S - 23.0) / max(1, len(done))
        number, summaries = 0, []
        for index, profile in enumerate(done):
            start = 1.0 + index * step_s
            entry = queue.start_next()
            yield start, ProfileStarted(profile, index, len(self.profiles))
            yield start, QueueChanged(queue.entries)
            aggregate = ProfileAggregate(profile, Slo(ttft_s=0.15, tpot_s=0.1))
            for k in range(profile.requests):
                number += 1
                failed = self.failures and number % 17 == 0
                r = record(
                    number,
                    profile.name,
                    rng=rng,
                    error=ErrorKind.HTTP_5XX if failed else None,
                    ttft_s=self._ttft(profile, rng),
                    t_s=start + (step_s - 3) * k / profile.requests,
                )
                aggregate.add(r, [r.tpot_s] * 4 if r.ok else ())
                yield r.end_ns / 1e9, RequestFinished(r)
            yield from self._snapshots(profile, start, start + step_s - 1)
            summary = aggregate.summarize(step_s - 1, "completed")
            summaries.append(summary)
            end = start + step_s - 0.5
            yield end, ProfileFinished(summary)
            queue.finish(entry.entry_id, "completed", summary.requests, summary.failures)
            yield end, QueueChanged(queue.entries)
        last, start = self.profiles[-1], RUN_S - 21.0
        running = queue.start_next()
        yield start, QueueChanged(queue.entries)
        yield start, ProfileStarted(last, len(done), len(self.profiles))
        yield from self._snapshots(last, start, RUN_S)
        for k in range(40):
            number += 1
            slow = 0.4 if number % 9 == 0 else self._ttft(last, rng)
            r = record(number, last.name, rng=rng, ttft_s=slow, t_s=start + 0.45 * k)
            yield r.end_ns / 1e9, RequestFinished(r)
        yield from self._samples()
        if not self.gpu:
            yield (
                0.0,
                NoticeRaised(
                    "info",
                    "no NVIDIA driver found (NVML: library not found): GPU figures are skipped",
                ),
            )
        if self.failures:
            yield RUN_S, NoticeRaised("warning", "the server closed a keep-alive connection")
        if finished:  # the running scenario ends with the run, failed or stopped by a person
            status = "failed" if self.failures else "stopped"
            queue.finish(running.entry_id, status, 40, 0)
            yield RUN_S, QueueChanged(queue.entries)
            yield RUN_S, RunFinished(self._summary(summaries))

    @staticmethod
    def _ttft(profile: Profile, rng: random.Random) -> float:
        """TTFT grows with load, as a server's queue does."""
        return rng.uniform(0.08, 0.14) * (1 + (profile.concurrency or 8) / 24)

    @staticmethod
    def _snapshots(profile: Profile, start: float, end: float):
        load = min(profile.concurrency or 8, 24)
        steps = int((end - start) * 4)
        for step in range(steps):
            t = start + step / 4
            wave = 3000 * ((step % 20) / 20)
            yield (
                t,
                SnapshotTaken(
                    profile.name,
                    int(t * 1e9),
                    step / 4,
                    2.0,
                    min(profile.concurrency or 8, 64),
                    step,
                    step,
                    0,
                    profile.requests,
                    400.0 * load + wave,
                    1600.0 * load,
                    3.0 * load,
                    0.14,
                    0.012,
                    False,
                ),
            )

    def _samples(self):
        for second in range(int(RUN_S) + 1):
            busy = 0.05 if second < 1 else 0.6 + 0.3 * ((second % 30) / 30)
            t_ns = second * 10**9
            for index in range(self.gpus if self.gpu else 0):
                util = min(100.0, 100 * busy + 3 * index)
                gpu = replace(
                    GPU,
                    index=index,
                    utilization_pct=util,
                    power_w=120 + 5.5 * util,
                    temperature_c=40 + util / 4,
                    energy_mj=10**7 + second * 400_000,
                )
                yield second, TelemetrySampled(SampleKind.GPU, t_ns, gpu)
            host = HostSample(
                system_cpu_pct=20 + 30 * busy,
                ram_used_mib=61_000.0,
                ram_total_mib=257_000.0,
                client_cpu_pct=self.client_cpu_pct * busy / 0.9,
                client_rss_mib=180.0,
                server_pid=4242,
                server_cpu_pct=100 + 80 * busy,
                server_rss_mib=2900.0,
            )
            yield second, TelemetrySampled(SampleKind.HOST, t_ns, host)
            if self.server_metrics:
                metrics = replace(
                    SERVER, t_s=float(second), running=round(12 * busy), waiting=second % 7 // 3
                )
                yield second, TelemetrySampled(SampleKind.SERVER_METRICS, t_ns, metrics)

    def _summary(self, summaries) -> RunSummary:
        return RunSummary(
            run_id="seeded",
            status="failed" if self.failures else "completed",
            exit_code=1 if self.failures else 0,
            started_unix_s=0.0,
            duration_s=RUN_S,
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


class IdleControls:
    """Controls of a live run that ignore every call (snapshots only look)."""

    read_only = False

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: None
