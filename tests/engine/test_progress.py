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


def test_the_console_says_suspect_at_once_and_lists_each_breach_at_the_end():
    from engine.events import ValidityWarned
    from engine.metrics.client_health import ClientHealth
    from engine.metrics.summary import RunSummary
    from engine.metrics.validity import ValidityIssue, ValidityRule
    from tui.console.reporter import print_run_summary

    out = io.StringIO()
    console = Console(file=out, width=200)
    ConsoleReporter(console).handle(
        ValidityWarned(ValidityRule.CLIENT_CPU, "p", "llmtop used 97 % of a core", 97, 85, 0)
    )
    issue = ValidityIssue(
        rule=ValidityRule.CLIENT_CPU,
        profile="p",
        first_s=5.0,
        count=3,
        worst=99.0,
        threshold=85.0,
        unit="%",
        message="llmtop used 97 % of a core",
    )
    summary = RunSummary(
        run_id="r",
        status="completed",
        exit_code=0,
        started_unix_s=0,
        duration_s=1,
        profiles=[],
        client=ClientHealth(
            loop_lag_p50_ms=None, loop_lag_p99_ms=None, loop_lag_max_ms=None, sink_time_s=0
        ),
        notices=[],
        validity=[issue],
    )
    print_run_summary(console, summary)
    lines = out.getvalue().splitlines()
    assert lines[0] == "suspect: llmtop used 97 % of a core"
    assert (
        "suspect: p: client_cpu x3, worst 99.0 % (limit 85 %); first: llmtop used 97 % of a core"
        in lines
    )
