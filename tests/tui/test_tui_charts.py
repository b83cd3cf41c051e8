"""The live screen's charts and figures: bounded history, stable rates on the engine's clock,
state that goes with its scenario, and text that shortens instead of being cut."""

from __future__ import annotations

import pytest
from rich.text import Text

from engine.events import ProfileFinished, ProfileStarted, RequestFinished, SnapshotTaken
from engine.records import ErrorKind
from tests.support.builders import make_profile
from tests.support.tui_data import FrozenClock, SeededRun, record
from tui.live.charts import SPANS, chart, time_axis
from tui.live.history import RATE_WINDOW_S
from tui.live.render import fit, header
from tui.live.series import RECENT_BUCKETS, WHOLE_POINTS, TimeSeries
from tui.live.state import LiveState
from tui.live.widgets.load import latency_lines, rates_line, throughput_lines
from tui.live.widgets.system import system_lines


def _snap(t_s: float, profile: str = "p", out: float = 100.0, done: int = 0, warmup=False):
    return SnapshotTaken(
        profile, int(t_s * 1e9), t_s, 2.0, 4, done, done, 0, 100, out, 10.0, 1.0, None, None, warmup
    )


def test_history_is_bounded_whatever_the_runs_length():
    series = TimeSeries()
    for i in range(4 * 3600):  # an hour at 4 readings a second
        series.add(i / 4, float(i % 100))
    view = series.snapshot()
    assert len(view.recent) == RECENT_BUCKETS and len(view.whole) <= WHOLE_POINTS
    ten_min = view.columns(600, 60, 3600)
    assert all(c.value is not None for c in ten_min), "10 minutes are kept to the second"
    whole = view.columns(3600, 60, 3600)
    assert all(c.value is not None for c in whole)


def test_a_doubling_shows_as_a_doubling_with_the_top_labelled():
    series = TimeSeries()
    for t in range(60):
        series.add(t, 100.0 if t < 30 else 200.0)
    rows = chart(
        series.snapshot(), span_s=60, now_s=60, width=68, height=2, fmt=lambda v: f"{v:.0f}"
    )
    assert rows[0].plain.startswith("    200┤") and rows[1].plain.startswith("      0┤")
    top = rows[0].plain[8:]
    assert set(top[:28]) == {" "} and set(top[-28:]) == {"█"}, "half height, then full"
    assert time_axis(60, 68).plain.split() == ["-60s", "-30s", "now"]


def test_rates_cover_ten_seconds_of_the_engines_clock_and_end_with_their_scenario():
    state = LiveState(clock=FrozenClock())
    state.apply(ProfileStarted(make_profile(name="p"), 0, 1))
    for i in range(80):  # 20 s at 4 Hz; the engine's 2 s rate alternates 0 and 200
        state.apply(_snap(i / 4, out=200.0 * (i % 2), done=i))
    rates = state.view().rates
    assert rates is not None and rates.window_s == RATE_WINDOW_S
    assert rates.output_tokens_per_s == pytest.approx(100, rel=0.05), "waves average out"
    assert rates.requests_per_s == 4.0, "successes counted between snapshots, exactly"
    state.apply(ProfileFinished(_summary_of("p")))
    state.apply(_snap(20.5))  # a late snapshot of the ended scenario
    view = state.view()
    assert view.rates is None and view.current is None
    assert "no scenario sending" in rates_line(view).plain


def _summary_of(name: str):
    from engine.metrics.summary import ProfileAggregate, Slo

    return ProfileAggregate(make_profile(name=name), Slo()).summarize(1.0, "completed")


def test_warm_up_shows_its_own_progress():
    state = LiveState(clock=FrozenClock())
    profile = make_profile(name="p", warmup_requests=8, requests=40)
    from engine.events import QueueChanged
    from engine.workload.queue import ScenarioQueue

    queue = ScenarioQueue([profile])
    queue.start_next()
    state.apply(QueueChanged(queue.entries))
    state.apply(ProfileStarted(profile, 0, 1))
    for i in range(3):
        state.apply(RequestFinished(record(i, "p", rng=_rng()).model_copy(update={"warmup": True})))
    state.apply(_snap(1.0, warmup=True))
    view = state.view()
    assert "warm-up 3/8 requests done" in rates_line(view).plain
    from tui.live.widgets.queue import progress_cell

    assert progress_cell(view.queue[0], view, view.progress["p"]).plain == "warm-up 3/8"


def _rng():
    import random

    return random.Random(1)


def test_failures_reach_the_header_and_the_queue_as_they_happen():
    state = SeededRun().state()
    for i in range(3):
        bad = record(900 + i, "stress", rng=_rng(), error=ErrorKind.HTTP_5XX)
        state.apply(RequestFinished(bad))
    view = state.view()
    line = header(view, 200).plain
    assert "✗ 3 failed: http_5xx: HTTP 503: overloaded" in line
    from tui.live.widgets.queue import _row

    running = next(e for e in view.queue if e.name == "stress")
    mark, _, progress = _row(running, view, 40)
    assert mark.plain == "✗" and "3✗" in progress.plain


def test_nothing_is_cut_mid_number_at_80_columns():
    view = SeededRun(gpus=8).state().view()
    span = SPANS[0]
    for width in (49, 80):
        lines = [
            header(view, width, span),
            *latency_lines(view, span, width, 7),
            *throughput_lines(view, span, width, 7),
            *system_lines(view, span, 80, 6),
        ]
        for line in lines:
            assert line.cell_len <= max(width, 80), line.plain
    heads = latency_lines(view, span, 49, 7)
    assert heads[0].plain.startswith(" TTFT p50 400 ms p99 504 ms")


def test_eight_gpus_take_a_line_each_when_there_is_room_and_fold_when_not():
    view = SeededRun(gpus=8).state().view()
    tall = system_lines(view, SPANS[0], 120, 11)
    assert [line.plain.split()[0] for line in tall[1:9]] == [str(i) for i in range(8)]
    folded = system_lines(view, SPANS[0], 80, 8)
    assert folded[1].plain.split()[:2] == ["GPU", "#0"] and "util" in folded[2].plain
    short = system_lines(view, SPANS[0], 80, 3)
    assert short[0].plain.startswith(" 8 × NVIDIA H200: util") and len(short) == 3


def test_the_client_line_warns_when_llmtop_is_the_bottleneck():
    calm = system_lines(SeededRun().state().view(), SPANS[0], 200, 12)
    assert not any("CLIENT-BOUND" in line.plain for line in calm)
    busy = system_lines(SeededRun(client_cpu_pct=93.0).state().view(), SPANS[0], 200, 12)
    assert any("CLIENT-BOUND" in line.plain for line in busy)


def test_fit_shortens_the_least_important_part_first_and_never_cuts_one():
    parts = [[Text("must")], [Text(" middle"), Text()], [Text(" long tail"), Text(" t")]]
    assert fit(parts, 100).plain == "must middle long tail"
    assert fit(parts, 13).plain == "must middle t"
    assert fit(parts, 6).plain == "must t"


def test_the_ladder_climbs_with_its_knee_marked_once_three_steps_are_done():
    from tests.support.tui_data import ladder_profiles
    from tui.live.widgets.results import ladder_lines

    lines = [
        line.plain
        for line in ladder_lines(SeededRun(profiles=ladder_profiles()).state().view(), 120)
    ]
    assert lines[0].startswith(" sweep of 5 steps  (4 done)")
    steps = {line.split()[1]: line for line in lines[1:6]}
    assert "◀ SLO knee" in steps["c=2"] and "running" in steps["c=16"]
    assert any(line.strip().startswith("SLO knee: c=2:") for line in lines)
    alone = ladder_lines(SeededRun().state().view(), 120)
    assert "No sweep in this run" in alone[0].plain


def test_results_rows_are_exact_when_a_scenario_ends_and_marked_while_it_runs():
    from tui.live.widgets.results import result_row

    view = SeededRun().state().view()
    done, running = (result_row(e, view) for e in view.queue if e.name in ("long-qa", "stress"))
    assert done is not None and running is not None
    assert done[1].plain == "long-qa" and done[3].plain == "200/200"
    assert running[1].plain == "stress ~" and running[4].plain == "running"
    ttft = done[5]
    assert ttft.plain.endswith(" ms") and any("red" in str(span.style) for span in ttft.spans)


def test_a_requests_timeline_is_drawn_to_scale_with_a_tick_per_token():
    from tui.live.screens.record import timeline_lines

    r = record(1, "p", rng=_rng(), t_s=1.0, ttft_s=1.0)
    axis = timeline_lines(r, 60)[1].plain
    assert [c for c in axis if c.isalpha()] == list("SCHBTLE")
    assert axis.index("T") == round((r.first_token_ns - r.sent_ns) / (r.end_ns - r.sent_ns) * 59)
    gaps = [0.01] * 20
    ticked = r.model_copy(update={"itl_s": gaps})
    assert "┃" in timeline_lines(ticked, 60)[1].plain
