"""The over-saturation stop in runs against the fake server with a capacity limit: a ladder
stops at the step where the server fell over and skips the rest; an open loop above capacity
stops; a server with room, or a run that did not ask for the stop, goes on."""

from __future__ import annotations

from typing import Any

from engine.events import EventBus, NoticeRaised, QueueChanged
from engine.workload.queue import EntryStatus
from tests.support.builders import Collect, make_profile
from tests.support.fakeserver import Behaviour, FakeServer

FAST = {"window_s": 3.0, "min_duration_s": 1.5, "min_requests": 5}
"""Thresholds for steps of a few seconds (the defaults wait 10 s and look at 20)."""


def ladder(*loads: int, **fields: Any) -> list:
    return [
        make_profile(
            name=f"lad-c{c}",
            concurrency=c,
            duration_s=4.0,
            requests=None,
            max_tokens=10,
            saturation=FAST,
            **fields,
        )
        for c in loads
    ]


def test_a_ladder_stops_where_the_server_fell_over_and_skips_the_rest(run_engine):
    notices: list[NoticeRaised] = []
    queues: list[QueueChanged] = []
    bus = EventBus()
    bus.subscribe(Collect(notices, NoticeRaised))
    bus.subscribe(Collect(queues, QueueChanged))
    # Two requests generate at once, 10 tokens 5 ms apart: c=1 and c=2 gain, c=4 only queues.
    with FakeServer(Behaviour(capacity=2, itl_s=0.005, ttft_s=0.005)) as server:
        result = run_engine(server.url, ladder(1, 2, 4, 8, 16), bus=bus, limit_s=60)
    summary = result.summary
    assert summary.status == "completed" and summary.exit_code == 0
    ran = {p.profile: p for p in summary.profiles}
    stopped = [p for p in summary.profiles if p.saturation_stop]
    assert len(stopped) == 1, [p.saturation_stop for p in summary.profiles]
    (step,) = stopped
    assert step.profile in ("lad-c4", "lad-c8"), step.saturation_stop
    assert step.status == "stopped"
    assert step.saturation_stop.startswith(f"stopped at concurrency {step.concurrency}: ")
    assert "lad-c16" not in ran  # never ran
    final = {e.name: e.status for e in queues[-1].entries}
    assert final["lad-c16"] is EntryStatus.SKIPPED
    assert any(n.message.startswith(f"{step.profile}: stopped at concurrency") for n in notices)
    assert any("lad-c16" in n.message and "over-saturated" in n.message for n in notices)
    (knee,) = summary.knees
    assert knee.stopped_load == step.concurrency and knee.stop_reason == step.saturation_stop
    assert knee.saturation_load is not None and knee.saturation_load < step.concurrency


def test_a_ladder_on_a_server_with_room_runs_every_step(run_engine):
    with FakeServer(Behaviour(itl_s=0.02, ttft_s=0.02)) as server:
        result = run_engine(server.url, ladder(1, 2, 4), limit_s=60)
    assert [p.profile for p in result.summary.profiles] == ["lad-c1", "lad-c2", "lad-c4"]
    assert [p.saturation_stop for p in result.summary.profiles] == [None] * 3


def open_loop(rate: float, **fields: Any):
    return make_profile(
        name=f"r{rate:g}",
        rate_rps=rate,
        duration_s=6.0,
        requests=None,
        max_tokens=10,
        saturation=FAST,
        **fields,
    )


def test_an_open_loop_above_capacity_stops_when_asked_to(run_engine):
    # One request at a time, ~55 ms each: ~18 rps of capacity against 40 rps of arrivals.
    with FakeServer(Behaviour(capacity=1, itl_s=0.005, ttft_s=0.005)) as server:
        result = run_engine(server.url, open_loop(40, stop_when_saturated=True), limit_s=60)
    (profile,) = result.summary.profiles
    assert profile.saturation_stop is not None, profile
    assert profile.saturation_stop.startswith("stopped at 40 rps: ")
    assert (
        "grew" in profile.saturation_stop
        and "while throughput stayed at" in profile.saturation_stop
    )
    # Sending stopped well before the 240 arrivals of 6 s; those in flight then finished.
    assert profile.requests < 200, profile.saturation_stop


def test_an_open_loop_within_capacity_or_without_the_stop_goes_on(run_engine):
    with FakeServer(Behaviour(capacity=1, itl_s=0.005, ttft_s=0.005)) as server:
        within = run_engine(server.url, open_loop(5, stop_when_saturated=True), limit_s=60)
        unasked = run_engine(server.url, open_loop(40), limit_s=60)  # one profile: off
    assert within.summary.profiles[0].saturation_stop is None
    assert unasked.summary.profiles[0].saturation_stop is None


def test_errors_above_the_rate_stop_a_step(run_engine):
    behaviour = Behaviour(itl_s=0.005, per_request=lambda n: {"status": 503} if n % 2 else {})
    with FakeServer(behaviour) as server:
        result = run_engine(server.url, ladder(2, 4, 8), limit_s=60)
    first = result.summary.profiles[0]
    assert first.saturation_stop is not None and "failed (> 20 %)" in first.saturation_stop
    assert [p.profile for p in result.summary.profiles] == ["lad-c2"]
