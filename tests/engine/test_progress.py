"""The live progress a profile reports while it runs: warm-up, then the measured phase."""

from __future__ import annotations

import io

from rich.console import Console

from engine.events import EventBus, SnapshotTaken
from tests.support.builders import Collect, make_profile
from tui.console.reporter import ConsoleReporter


def test_warm_up_progress_counts_the_warm_up_requests(fake_server, run_engine):
    # 5 tokens x 20 ms: each warm-up request takes ~100 ms, snapshots come every 20 ms.
    fake_server.behaviour.itl_s = 0.02
    bus, snapshots = EventBus(), []
    bus.subscribe(Collect(snapshots, SnapshotTaken))
    profile = make_profile(concurrency=1, warmup_requests=4, requests=3)
    run_engine(fake_server.url, profile, bus=bus, snapshot_interval_s=0.02, limit_s=20)
    warm = [s for s in snapshots if s.warmup]
    assert warm, "no snapshot during the warm-up"
    # Before: the measured phase's 0/3 while 4 warm-up requests were going.
    assert {s.planned_total for s in warm} == {4}
    assert max(s.finished_total for s in warm) >= 2
    assert all(s.finished_total <= s.sent_total <= 4 for s in warm)
    measured = [s for s in snapshots if not s.warmup]
    assert measured and {s.planned_total for s in measured} == {3}
    assert all(s.sent_total <= 3 for s in measured)

    out = io.StringIO()
    ConsoleReporter(Console(file=out, width=200)).handle(warm[-1])
    assert f"warm-up {warm[-1].finished_total}/4 done" in out.getvalue()
