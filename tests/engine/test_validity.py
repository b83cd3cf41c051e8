"""Each validity rule, fed through ``ValidityMonitor`` with the events a run would publish:
one case that breaks it and one healthy case that leaves it quiet (engine/run/validity.py).
The same rules against the engine and the fake server are in test_validity_runs.py."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from engine.events import (
    EventBus,
    ProfileFinished,
    ProfileStarted,
    RequestFinished,
    SnapshotTaken,
    TelemetrySampled,
    ValidityWarned,
)
from engine.metrics.validity import ValidityRule
from engine.run.validity import GpuGapRule, ScheduleLagRule
from engine.run.validity_monitor import ValidityMonitor
from engine.telemetry.gpu import GpuSample
from engine.telemetry.host import HostSample
from engine.telemetry.samples import SampleKind
from engine.telemetry.server_metrics import ServerMetricsSample
from engine.workload.profile import Profile
from tests.support.builders import Collect, make_profile
from tests.support.tui_data import GPU, record

S = 1_000_000_000
WINDOW_S = 5.0


class Feed:
    """Drives a monitor through one profile on a clock the test moves."""

    def __init__(self, profile: Profile, *, gpu_interval_s: float | None = 0.25) -> None:
        self.now_ns = 0
        self.bus = EventBus()
        self.warned: list[ValidityWarned] = []
        self.bus.subscribe(Collect(self.warned, ValidityWarned))
        self.monitor = ValidityMonitor(
            self.bus, 0, gpu_interval_s=gpu_interval_s, clock=lambda: self.now_ns
        )
        self.bus.subscribe(self.monitor)
        self.profile = profile
        self.rng = random.Random(1)
        self.count = 0
        self.bus.publish(ProfileStarted(profile, 0, 1))

    def snapshot(self, *, warmup: bool = False) -> None:
        self.bus.publish(
            SnapshotTaken(
                self.profile.name, self.now_ns, 0, 2, 1, 0, 0, 0, None, 0, 0, 0, None, None, warmup
            )
        )

    def request(self, **fields: object) -> None:
        self.count += 1
        base = record(self.count, self.profile.name, rng=self.rng)
        base = base.model_copy(
            update={
                "requested_input_tokens": 512,
                "completion_tokens_by_source": {"usage": 128},
                "cached_prompt_tokens": 0,
                **fields,
            }
        )
        self.bus.publish(RequestFinished(base))

    def sample(self, sample: object, kind: SampleKind) -> None:
        self.bus.publish(TelemetrySampled(kind, self.now_ns, sample))  # type: ignore[arg-type]

    def seconds(self, total_s: float, each_tick: object = None, *, hz: float = 4.0) -> None:
        """Move the clock ``total_s`` in snapshot ticks, calling ``each_tick`` at each."""
        self.snapshot()
        for _ in range(round(total_s * hz)):
            self.now_ns += int(S / hz)
            if callable(each_tick):
                each_tick()
            self.snapshot()

    def finish(self) -> list[ValidityRule]:
        self.bus.publish(ProfileFinished(None))  # type: ignore[arg-type]
        return [w.rule for w in self.warned]


def host(cpu: float) -> HostSample:
    return HostSample(30.0, 4000.0, 16000.0, cpu, 80.0, None, None, None)


def test_client_cpu_near_a_core_is_suspect_and_a_light_client_is_not():
    busy, light = Feed(make_profile()), Feed(make_profile())
    busy.seconds(WINDOW_S, lambda: busy.sample(host(97.0), SampleKind.HOST))
    light.seconds(WINDOW_S, lambda: light.sample(host(35.0), SampleKind.HOST))
    assert busy.finish() == [ValidityRule.CLIENT_CPU]
    assert "llmtop used 97 % of a core over 5 s (> 85 %)" in busy.warned[0].message
    assert light.finish() == []


def test_loop_lag_p99_over_20_ms_in_a_window_is_suspect():
    lagging, smooth = Feed(make_profile()), Feed(make_profile())

    def lag(feed: Feed, spikes_ms: float) -> None:
        for i in range(25):  # 25 readings per 250 ms tick: the 10 ms timer
            feed.monitor.add_loop_lag(spikes_ms if i == 0 else 0.3)

    lagging.seconds(WINDOW_S, lambda: lag(lagging, 45.0))
    smooth.seconds(WINDOW_S, lambda: lag(smooth, 4.0))
    assert lagging.finish() == [ValidityRule.LOOP_LAG]
    assert smooth.finish() == []
    (issue,) = lagging.monitor.issues()
    assert issue.worst == pytest.approx(45.0) and issue.unit == "ms" and issue.count == 1


@pytest.mark.parametrize(
    ("rate_rps", "limit_ms"),
    [(1.0, 10.0), (50.0, 1.0), (4.0, 10.0), (10.0, 5.0)],
)
def test_the_schedule_lag_limit_is_10_ms_or_5_percent_of_the_gap_whichever_is_less(
    rate_rps, limit_ms
):
    assert ScheduleLagRule(rate_rps).threshold_ms == pytest.approx(limit_ms)


def test_open_loop_requests_sent_late_break_the_schedule_rule():
    profile = make_profile(rate_rps=10.0, requests=100)
    late, on_time = Feed(profile), Feed(profile)
    late.seconds(WINDOW_S, lambda: [late.request(schedule_lag_s=0.030) for _ in range(3)])
    on_time.seconds(WINDOW_S, lambda: [on_time.request(schedule_lag_s=0.0004) for _ in range(3)])
    assert late.finish() == [ValidityRule.SCHEDULE_LAG]
    assert "not the 10 rps asked for" in late.warned[0].message
    assert on_time.finish() == []


def test_closed_loop_pool_waits_break_the_pool_rule_but_not_in_open_loop():
    waited, quick = Feed(make_profile(concurrency=8)), Feed(make_profile(concurrency=8))
    waited.seconds(WINDOW_S, lambda: waited.request(client_queue_wait_s=0.004))
    quick.seconds(WINDOW_S, lambda: quick.request(client_queue_wait_s=0.00001))
    assert waited.finish() == [ValidityRule.POOL_WAIT]
    assert quick.finish() == []
    open_loop = Feed(make_profile(rate_rps=5.0, requests=100))
    open_loop.seconds(WINDOW_S, lambda: open_loop.request(client_queue_wait_s=0.004))
    assert open_loop.finish() == []


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"completion_tokens_by_source": {"chunks": 128}}, ValidityRule.USAGE_MISSING),
        ({"token_count_mismatch": True}, ValidityRule.TOKEN_MISMATCH),
        ({"prompt_tokens": 530}, ValidityRule.PROMPT_LENGTH),  # 3.5 % over 512
        ({"cached_prompt_tokens": 400}, ValidityRule.CACHE_HITS),
    ],
)
def test_token_provenance_rules_break_above_5_percent_of_requests(fields, rule):
    feed = Feed(make_profile(concurrency=8))
    for i in range(40):
        feed.request(**(fields if i % 10 == 0 else {}))  # 10 %
    assert feed.finish() == [rule]
    (issue,) = feed.monitor.issues()
    assert issue.count == 4 and issue.worst == pytest.approx(10.0) and issue.unit == "%"


def test_token_provenance_is_quiet_on_honest_requests_and_tolerates_a_stray_one():
    feed = Feed(make_profile(concurrency=8))
    for i in range(40):
        feed.request(prompt_tokens=515 if i else 600)  # 0.6 % off; one of 40 far off
    assert feed.finish() == []


def test_cache_hits_count_only_where_the_profile_busts_caches():
    shared = Feed(make_profile(concurrency=8, shared_prefix_tokens=256))
    for _ in range(40):
        shared.request(cached_prompt_tokens=256)
    assert shared.finish() == []
    template = Feed(make_profile(concurrency=8))
    for _ in range(40):
        template.request(cached_prompt_tokens=6)  # a chat template's common head: 1 %
    assert template.finish() == []


def server(waiting: float) -> ServerMetricsSample:
    return ServerMetricsSample(t_s=0.0, family="vllm", running=8.0, waiting=waiting)


def test_a_server_queue_throughout_a_latency_load_is_suspect_but_not_for_throughput():
    queued = Feed(make_profile(concurrency=64))
    queued.seconds(WINDOW_S, lambda: queued.sample(server(12.0), SampleKind.SERVER_METRICS))
    assert queued.finish() == [ValidityRule.SERVER_QUEUE]
    assert "queued requests throughout 5 s" in queued.warned[0].message
    meant = Feed(make_profile(concurrency=64, goal="throughput"))
    meant.seconds(WINDOW_S, lambda: meant.sample(server(12.0), SampleKind.SERVER_METRICS))
    assert meant.finish() == []


def test_an_idle_server_before_the_first_request_and_after_the_last_is_not_judged():
    feed = Feed(make_profile(concurrency=64))
    idle = ServerMetricsSample(t_s=0.0, family="vllm", running=0.0, waiting=0.0)
    scrapes = iter([idle] + [server(12.0)] * 18 + [idle] * 5)
    feed.seconds(WINDOW_S, lambda: feed.sample(next(scrapes), SampleKind.SERVER_METRICS))
    assert feed.finish() == [ValidityRule.SERVER_QUEUE]


def test_a_queue_that_drains_now_and_then_or_fills_in_warmup_is_not_throughout():
    waits = iter([3.0, 0.0] * 20)
    draining = Feed(make_profile(concurrency=8))
    draining.seconds(
        WINDOW_S, lambda: draining.sample(server(next(waits)), SampleKind.SERVER_METRICS)
    )
    assert draining.finish() == []
    warm = Feed(make_profile(concurrency=8))
    for _ in range(int(WINDOW_S * 4) + 1):
        warm.snapshot(warmup=True)
        warm.sample(server(5.0), SampleKind.SERVER_METRICS)
        warm.now_ns += S // 4
    assert warm.finish() == []


def test_a_missed_gpu_reading_breaks_the_gap_rule_and_steady_readings_do_not():
    steady = Feed(make_profile())
    steady.seconds(WINDOW_S, lambda: steady.sample(GPU, SampleKind.GPU))
    assert steady.finish() == []
    gappy = Feed(make_profile())
    ticks = iter(range(100))
    gappy.seconds(
        WINDOW_S, lambda: None if 4 <= next(ticks) < 10 else gappy.sample(GPU, SampleKind.GPU)
    )
    assert gappy.finish() == [ValidityRule.GPU_GAP]
    assert "1.8 s without one (sampling every 0.25 s)" in gappy.warned[0].message
    blank = Feed(make_profile())
    readings = iter([GPU, GPU, replace(GPU, utilization_pct=None), GPU])
    blank.seconds(1.0, lambda: blank.sample(next(readings), SampleKind.GPU))
    assert blank.finish() == [ValidityRule.GPU_GAP]


def test_the_gap_limit_allows_a_metrics_scrape_in_the_sampling_loop():
    assert GpuGapRule(0.05).add(0, GPU) is None
    assert GpuGapRule(0.05).add(0, GPU) is None
    rule = GpuGapRule(0.05)
    rule.add(0, GPU)
    assert rule.add(int(0.9 * S), GPU) is None  # 18 intervals, but under a second


def gpu(clock: float, util: float) -> GpuSample:
    return replace(GPU, sm_clock_mhz=clock, utilization_pct=util)


def test_a_busy_gpu_whose_clock_falls_throttles_and_an_idle_one_may_slow_down():
    clocks = iter([1980, 1980, 1950, 1100, 1100, 1900] + [1980] * 20)
    throttled = Feed(make_profile())
    throttled.seconds(5.0, lambda: throttled.sample(gpu(next(clocks), 90), SampleKind.GPU))
    assert throttled.finish() == [ValidityRule.GPU_CLOCK]
    (issue,) = throttled.monitor.issues()
    assert issue.count == 2 and issue.worst == pytest.approx(100 * 1100 / 1980)
    idle_clocks = iter([1980, 1980, 600, 600] + [1980] * 20)
    idle = Feed(make_profile())
    idle.seconds(5.0, lambda: idle.sample(gpu(next(idle_clocks), 0), SampleKind.GPU))
    assert idle.finish() == []


def test_a_breach_is_warned_once_per_profile_and_counted_with_its_worst_value():
    feed = Feed(make_profile())
    values = iter([90.0] * 20 + [99.0] * 20 + [95.0] * 20)
    feed.seconds(15.0, lambda: feed.sample(host(next(values)), SampleKind.HOST))
    assert feed.finish() == [ValidityRule.CLIENT_CPU]
    (issue,) = feed.monitor.issues()
    assert issue.count == 3 and issue.worst == pytest.approx(99.0)
    assert issue.profile == "t" and issue.first_s == pytest.approx(5.0)
    # The next profile gets its own warning for the same rule.
    feed.profile = make_profile(name="u")
    feed.bus.publish(ProfileStarted(feed.profile, 1, 2))
    feed.seconds(5.0, lambda: feed.sample(host(99.0), SampleKind.HOST))
    assert feed.finish() == [ValidityRule.CLIENT_CPU, ValidityRule.CLIENT_CPU]
    assert [i.profile for i in feed.monitor.issues()] == ["t", "u"]


def test_a_profile_that_ends_mid_window_is_still_judged():
    feed = Feed(make_profile())
    feed.seconds(2.0, lambda: feed.sample(host(99.0), SampleKind.HOST))
    assert feed.finish() == [ValidityRule.CLIENT_CPU]
    assert "over 2 s" in feed.warned[0].message


def test_warmup_records_and_other_profiles_records_are_not_judged():
    feed = Feed(make_profile(concurrency=8))
    for _ in range(40):
        feed.request(warmup=True, token_count_mismatch=True)
        feed.request(profile="other", token_count_mismatch=True)
    assert feed.finish() == []
