"""The live screen's data side: bounded buffers, exact rows replacing live ones, drawing."""

from __future__ import annotations

import random
from dataclasses import replace

from engine.events import (
    NoticeRaised,
    ProfileStarted,
    RequestFinished,
    RunStarted,
    TelemetrySampled,
)
from engine.records import ErrorKind
from engine.telemetry.samples import SampleKind
from tests.support.tui_data import GPU, FrozenClock, SeededRun, record
from tui.format import fmt_s
from tui.live.render import BLOCKS, sparkline
from tui.live.state import MAX_RECENT_REQUESTS, RESERVOIR_SIZE, LiveState
from tui.live.tails import LineTail
from tui.live.widgets.request_list import fit_columns


def _started(state: LiveState) -> None:
    state.apply(RunStarted("r", "/tmp/r", "http://x", "m", "vllm", ("p",)))


def test_buffers_stay_bounded_and_totals_count_everything():
    from tests.support.builders import make_profile

    state, rng = LiveState(), random.Random(1)
    _started(state)
    state.apply(ProfileStarted(make_profile(name="p"), 0, 1))
    n = RESERVOIR_SIZE + 1000
    for i in range(n):
        error = ErrorKind.TIMEOUT if i % 100 == 0 else None
        state.apply(RequestFinished(record(i, "p", rng=rng, error=error)))
    view = state.view()
    assert len(view.recent) == MAX_RECENT_REQUESTS
    assert view.recent[-1].request_id == f"req_{n - 1:06d}"
    assert view.totals["requests"] == n and view.totals["failed"] == n // 100 + 1
    assert view.latency == (), "no queue event yet: table rows follow the queue"
    live = state._live["p"]["ttft_s"]
    assert len(live.values) == RESERVOIR_SIZE and live.seen == n - (n // 100 + 1)


def test_exact_summary_replaces_the_live_sample_when_a_profile_ends():
    state = SeededRun().state()
    rows = {r.profile: r for r in state.view().latency}
    assert rows["short-qa"].exact and rows["long-qa"].exact and not rows["stress"].exact
    assert rows["stress"].metrics["ttft_s"].count == 40
    assert rows["stress"].metrics["itl_s"].count == 40, "live ITL: each request's mean gap"


def test_energy_is_counted_from_the_first_sample_and_no_gpu_is_explained():
    state = LiveState()
    for step, mj in enumerate((5_000_000, 5_250_000, 5_600_000)):
        state.apply(TelemetrySampled(SampleKind.GPU, step, replace(GPU, energy_mj=mj)))
    assert state.view().gpu_energy_j == {0: 600.0}
    quiet = LiveState()
    quiet.apply(NoticeRaised("info", "NVML sees no usable GPU: GPU figures are skipped"))
    assert quiet.view().gpu_notice.startswith("NVML sees no usable GPU")


def test_elapsed_stops_at_the_end_and_repaints_can_tell_nothing_changed():
    clock = FrozenClock(100.0)
    state = SeededRun().state(clock, finished=True)
    version = state.version
    clock.now += 500
    assert state.view().elapsed_s == 83.0 and state.version == version


def test_sparkline_scales_to_the_maximum_and_marks_gaps():
    (row,) = sparkline([1.0, 2.0, None, 4.0], width=4)
    assert row.plain == BLOCKS[2] + BLOCKS[4] + BLOCKS[0] + BLOCKS[8]
    top, bottom = sparkline([1.0, 4.0], width=2, height=2)
    assert bottom.plain == BLOCKS[4] + BLOCKS[8] and top.plain == BLOCKS[0] + BLOCKS[8]
    (only,) = sparkline(list(range(100)), width=10)
    assert len(only.plain) == 10, "only the latest values that fit"


def test_durations_read_as_people_write_them():
    assert [fmt_s(v) for v in (None, 0.00042, 0.0123, 0.456, 2.345)] == [
        "-",
        "420 us",
        "12.3 ms",
        "456 ms",
        "2.35 s",
    ]


def test_request_columns_drop_the_least_useful_first():
    names = [name for name, _ in fit_columns(50)]
    assert "profile" not in names and {"request", "status", "TTFT", "TPOT"} <= set(names)
    assert len(fit_columns(200)) == 8


def test_tail_returns_only_complete_lines(tmp_path):
    path = tmp_path / "requests.jsonl"
    tail = LineTail(path)
    assert tail.lines() == [], "no file yet"
    path.write_bytes(b'{"a": 1}\n{"b": 2')
    assert tail.lines() == [{"a": 1}]
    with path.open("ab") as handle:
        handle.write(b'}\nnot json\n{"c": 3}\n')
    assert tail.lines() == [{"b": 2}, {"c": 3}]


def test_a_server_killed_mid_run_shows_failed_a_cross_and_the_reason(run_engine):
    """The screen's data side fed by a real run whose server process is killed: the header
    says FAILED, the scenario is marked failed (✗), and the reason is a notice (a toast)."""
    import asyncio

    from engine.events import EventBus
    from engine.workload.queue import EntryStatus
    from tests.support.builders import make_profile
    from tests.support.processes import ServerProcess, free_port
    from tui.live.render import header
    from tui.live.widgets.queue import STATUS_MARK

    state = LiveState()
    bus = EventBus()
    bus.subscribe(state)
    with ServerProcess(free_port(), "--itl", "0.01") as server:

        async def kill(_engine) -> None:
            await asyncio.sleep(0.8)
            await asyncio.to_thread(server.kill)

        result = run_engine(
            server.url,
            make_profile(concurrency=2, requests=3000),
            bus=bus,
            during=kill,
            outage_grace_s=0.5,
        )
    view = state.view()
    assert view.status == "failed"
    assert header(view).plain.startswith(" FAILED ")
    (entry,) = view.queue
    assert entry.status is EntryStatus.FAILED and STATUS_MARK[entry.status][0] == "✗"
    assert ("error", result.summary.error) in view.notices
    assert "stopped answering" in (result.summary.error or "")


def test_a_profile_whose_requests_all_failed_is_a_notice_at_once():
    from engine.events import ProfileFinished
    from engine.metrics.summary import ProfileAggregate, Slo
    from tests.support.builders import make_profile

    state = LiveState()
    _started(state)
    aggregate = ProfileAggregate(make_profile(name="p"), Slo())
    failed = aggregate.summarize(1.0, "completed").model_copy(
        update={"status": "failed", "error": "all 24 requests failed: HTTP 401 invalid api key"}
    )
    state.apply(ProfileFinished(failed))
    assert state.view().notices[-1] == (
        "error",
        "p: all 24 requests failed: HTTP 401 invalid api key",
    )


def test_a_validity_warning_is_a_warning_notice_naming_the_profile():
    from engine.events import ValidityWarned
    from engine.metrics.validity import ValidityRule

    state = LiveState()
    _started(state)
    state.apply(ValidityWarned(ValidityRule.LOOP_LAG, "p", "llmtop's event loop lagged", 43, 20, 0))
    assert state.view().notices[-1] == ("warning", "suspect: p: llmtop's event loop lagged")
