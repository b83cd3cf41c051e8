"""Live snapshots (what the progress line and the live screen show) stay truthful."""

from __future__ import annotations

from engine.events import EventBus, SnapshotTaken
from tests.support.builders import Collect, make_profile


def test_rates_never_go_negative_across_the_warm_up_switch(fake_server, run_engine):
    # Found on an H200: warm-up tokens counted while streaming, then vanished when the
    # warm-up ended, and the next snapshot read -3,794 tok/s.
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.01, 0.01
    bus, snaps = EventBus(), []
    bus.subscribe(Collect(snaps, SnapshotTaken))
    run_engine(
        fake_server.url,
        make_profile(concurrency=4, requests=12, warmup_requests=4, max_tokens=30),
        bus=bus,
        snapshot_interval_s=0.02,
    )
    warm = [s for s in snaps if s.warmup]
    measured = [s for s in snaps if not s.warmup]
    assert warm and measured
    assert all(s.output_tokens_per_s == 0 for s in warm), "warm-up is not throughput"
    assert min(s.output_tokens_per_s for s in measured) >= 0
    assert max(s.output_tokens_per_s for s in measured) > 0
