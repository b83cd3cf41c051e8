"""After the live screen closes, the console says what a ``--no-ui`` run says."""

from __future__ import annotations

import io
import random

from rich.console import Console

from engine.events import ProfileFinished, RunFinished
from engine.metrics.client_health import ClientHealth
from engine.metrics.knee import find_knees
from engine.metrics.summary import ProfileAggregate, RunSummary, Slo
from tests.support.tui_data import ladder_profiles, record
from tui.console.reporter import ConsoleReporter, print_after_screen


def _summary(profiles) -> RunSummary:
    rng, slo, summaries = random.Random(3), Slo(ttft_s=0.15), []
    for profile in profiles:
        aggregate = ProfileAggregate(profile, slo)
        for i in range(profile.requests):
            ttft = 0.05 * (1 + (profile.concurrency or 1) / 4)
            r = record(i, profile.name, rng=rng, ttft_s=ttft)
            aggregate.add(r, [r.tpot_s] * 4)
        summaries.append(aggregate.summarize(10.0, "completed"))
    return RunSummary(
        run_id="r",
        status="completed",
        exit_code=0,
        started_unix_s=0.0,
        duration_s=50.0,
        profiles=summaries,
        client=ClientHealth(
            loop_lag_p50_ms=None, loop_lag_p99_ms=None, loop_lag_max_ms=None, sink_time_s=0.0
        ),
        notices=[],
        knees=find_knees(summaries, profiles, slo),
    )


def _console() -> Console:
    return Console(file=io.StringIO(), width=140, record=True, color_system=None)


def test_the_console_after_the_screen_matches_a_headless_run():
    summary = _summary(ladder_profiles())
    headless = _console()
    reporter = ConsoleReporter(headless)
    for profile in summary.profiles:
        reporter.handle(ProfileFinished(profile))
    reporter.handle(RunFinished(summary))
    after = _console()
    print_after_screen(after, summary)
    text = after.export_text()
    assert text == headless.export_text()
    assert "knee of ladder" in text and "SLO knee: c=" in text


def test_a_single_profile_still_gets_its_table():
    summary = _summary(ladder_profiles()[:1])
    after = _console()
    print_after_screen(after, summary)
    text = after.export_text()
    assert "ladder-c1 (c=1) - completed" in text and "goodput" in text
