"""The over-saturation stop against the real llama-server: a concurrency ladder over a server
with two slots stops at the step where added concurrency only queues, and skips the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.events import EventBus, QueueChanged
from engine.run.config import RunConfig
from engine.run.engine import Engine
from engine.workload.queue import EntryStatus
from engine.workload.suite import Suite
from tests.support.builders import Collect
from tests.support.real_server import MODEL, start_llama_server

pytestmark = pytest.mark.real_server


def test_a_ladder_on_the_real_server_stops_where_it_fell_over(tmp_path: Path):
    step = tmp_path / "step.toml"
    step.write_text(
        'description = "a short ladder step"\n'
        "concurrency = 1\nduration_s = 10\ninput_tokens = 16\nmax_tokens = 8\n"
        "exact_output = true\nwarmup_requests = 1\n"
        "saturation = { window_s = 10, min_duration_s = 4, min_requests = 4 }\n"
    )
    suite = Suite(name="lad", profiles=[str(step)], concurrency_ladder=[1, 2, 4, 8, 16, 32])
    queues: list[QueueChanged] = []
    bus = EventBus()
    bus.subscribe(Collect(queues, QueueChanged))
    server = start_llama_server(tmp_path, parallel=2)
    try:
        config = RunConfig(
            url=server.url,
            model=MODEL,
            profiles=suite.expand(),
            results_root=tmp_path / "runs",
            server_kind="llama.cpp",
        )
        summary = asyncio.run(asyncio.wait_for(Engine(config, bus).run(), 240))
    finally:
        server.stop()
    assert summary.status == "completed"
    stopped = [p for p in summary.profiles if p.saturation_stop]
    steps = [(p.profile, p.output_tokens_per_s, p.saturation_stop) for p in summary.profiles]
    assert len(stopped) == 1, steps
    (fell,) = stopped
    assert fell is summary.profiles[-1] and fell.concurrency is not None
    assert fell.concurrency <= 8, fell.saturation_stop
    assert fell.saturation_stop.startswith(f"stopped at concurrency {fell.concurrency}: ")
    skipped = [e for e in queues[-1].entries if e.status is EntryStatus.SKIPPED]
    assert {e.profile.concurrency for e in skipped} == {
        c for c in (1, 2, 4, 8, 16, 32) if c > fell.concurrency
    }
    if len(summary.profiles) == 1:
        # This shared machine's other load can slow the server within the first step (TTFT
        # doubling at concurrency 1 while throughput falls): then there is no ladder to mark.
        assert summary.knees == [], steps
        return
    (knee,) = summary.knees or [None]
    assert knee is not None, steps
    assert knee.stopped_load == fell.concurrency
    print("\n".join(knee.lines()))
