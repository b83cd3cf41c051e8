"""A slow consumer must not change what is measured."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine.events import EventBus, RequestFinished, SnapshotTaken
from engine.run.config import RunConfig
from engine.run.engine import Engine
from engine.run.sinks import ThreadedSink
from engine.workload.profile import validate_profile
from tests.support.fakeserver import Behaviour, FakeServer


class SlowSink:
    """Takes 30 ms per event, like a terminal that scrolls slowly."""

    def __init__(self) -> None:
        self.finished = 0

    def handle(self, event: object) -> None:
        time.sleep(0.030)
        if isinstance(event, RequestFinished):
            self.finished += 1


def test_slow_consumer_behind_threaded_sink_does_not_distort_timings(tmp_path):
    profile = validate_profile(
        {"name": "t", "concurrency": 4, "requests": 16, "max_tokens": 10}, "test"
    )
    slow = SlowSink()
    sink = ThreadedSink(slow)
    bus = EventBus()
    bus.subscribe(sink)
    with FakeServer(Behaviour(ttft_s=0.050, itl_s=0.010)) as server:
        config = RunConfig(
            url=server.url,
            model="fake-model",
            profiles=[profile],
            results_root=tmp_path,
            snapshot_interval_s=0.05,
        )
        summary = asyncio.run(Engine(config, bus).run())
    sink.close()
    p = summary.profiles[0]
    # 16 requests x (50 ms + 9 x 10 ms) at concurrency 4 take ~0.56 s. Delivering ~40 events
    # at 30 ms each inline would add over a second and inflate every latency measured meanwhile.
    assert p.ttft_s.p50 == pytest.approx(0.050, abs=0.015)
    assert p.e2e_s.p99 < 0.140 + 0.040
    assert p.duration_s < 1.0
    assert bus.sink_time_s < 0.05
    assert slow.finished == 16 and sink.dropped == 0 and sink.errors == []


def test_threaded_sink_coalesces_snapshots_and_bounds_its_queue():
    class Blocked:
        def __init__(self) -> None:
            self.events: list[object] = []

        def handle(self, event: object) -> None:
            time.sleep(0.2)
            self.events.append(event)

    inner = Blocked()
    sink = ThreadedSink(inner, max_pending=5)
    snapshot = SnapshotTaken("p", 0, 0.0, 0.0, 0, 0, 0, 0, None, 0.0, 0.0, 0.0, None, None, False)
    for _ in range(50):
        sink.handle(snapshot)
    for i in range(8):
        sink.handle(("event", i))
    sink.close()
    kept = [e for e in inner.events if isinstance(e, tuple)]
    assert sink.dropped >= 3
    assert kept == [("event", i) for i in range(8 - len(kept), 8)]
    assert sum(isinstance(e, SnapshotTaken) for e in inner.events) <= 2
