"""A replay's figures and queue are those the live screen showed at that moment, and the screen
says it is a replay. The H200 run in bench/gpu (c=1, 8, 32, exact 64-token answers) ends each
c=32 batch together, which made the end of its replay show 14.3k input tok/s.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.analysis.replay import load_recorded_run
from engine.events import SNAPSHOT_WINDOW_S, ProfileStarted, SnapshotTaken
from engine.results.folder import iter_records
from engine.workload.queue import EntryStatus
from tests.support.builders import make_profile
from tests.support.paths import ROOT
from tui.live.app import make_app
from tui.live.controls import ReadOnly
from tui.live.replay import on_grid, state_at
from tui.live.widgets.badge import ModeBadge

H200 = ROOT / "bench" / "gpu" / "h200-telemetry-20261121"


@pytest.fixture(scope="module")
def h200():
    return load_recorded_run(H200), list(iter_records(H200, []))


def _span(records, profile: str) -> tuple[float, float]:
    own = [r for r in records if r.profile == profile]
    return min(r.scheduled_ns for r in own) / 1e9, max(r.end_ns for r in own) / 1e9


def _tokens_between(records, profile: str, a: float, b: float) -> float:
    """Output tokens the profile's measured requests generated in (a, b], each spread evenly
    between its first and last token (worked out here request by request)."""
    total = 0.0
    for r in records:
        if r.profile != profile or r.warmup or not r.completion_tokens or not r.first_token_ns:
            continue
        first, last = r.first_token_ns / 1e9, r.last_token_ns / 1e9
        overlap = max(0.0, min(b, last) - max(a, first))
        total += r.completion_tokens * overlap / (last - first) if last > first else 0.0
    return total


def test_rebuilt_snapshots_say_what_the_engine_would_have(h200):
    recording, records = h200
    snapshots = [(t, e) for t, e in recording.events if isinstance(e, SnapshotTaken)]
    assert snapshots
    for t, snap in snapshots:
        start, end = _span(records, snap.profile)
        assert start < t <= end, "only while its profile runs, as the engine publishes them"
        assert 0 <= snap.window_s <= SNAPSHOT_WINDOW_S + 1e-9
        since = t - snap.window_s
        ended = [
            r
            for r in records
            if r.profile == snap.profile and r.ok and not r.warmup and since < r.end_ns / 1e9 <= t
        ]
        if snap.window_s:
            prompt = sum(r.prompt_tokens for r in ended) / snap.window_s
            out = _tokens_between(records, snap.profile, since, t) / snap.window_s
            assert snap.input_tokens_per_s == pytest.approx(prompt)
            assert snap.requests_per_s == pytest.approx(len(ended) / snap.window_s)
            assert snap.output_tokens_per_s == pytest.approx(out, rel=1e-6, abs=1e-6)


def test_the_end_of_a_replay_shows_no_figure_from_after_the_run(h200):
    """No 14.3k tok/s burst at the end: the last rebuilt snapshot is inside the last scenario
    and as calm as the ones before it; at the end, as live, no rate outlives its scenario."""
    recording, records = h200
    last_end = max(r.end_ns for r in records) / 1e9
    snapshots = [e for _, e in recording.events if isinstance(e, SnapshotTaken)]
    assert snapshots[-1].t_ns / 1e9 <= last_end
    assert snapshots[-1].input_tokens_per_s < 4000
    view = state_at(recording, recording.duration_s).view()
    assert view.current is None and view.rates is None


def test_mid_run_the_running_scenario_shows_its_own_progress(h200):
    recording, records = h200
    start, _ = _span(records, "c32")
    for t in (start + 0.3, start + 6.0, 40.0):
        view = state_at(recording, t).view()
        running = [e.name for e in view.queue if e.status is EntryStatus.RUNNING]
        assert running == ["c32"]
        assert view.current is not None and view.current.profile == "c32", t
        done = sum(
            1 for r in records if r.profile == "c32" and not r.warmup and r.end_ns / 1e9 <= t
        )
        assert view.current.finished_total == done


@pytest.fixture
def finished_run(fake_server, run_engine):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.02, 0.005
    return run_engine(
        fake_server.url,
        [make_profile(name="first", requests=4), make_profile(name="second", requests=4)],
    )


def _rewrite_profiles(run_dir, order):
    """run.json as a session that queued these profiles in this order (then ran them as they
    ran: a person switched to another, or stopped before one)."""
    meta = json.loads((run_dir / "run.json").read_text())
    by_name = {p["name"]: p for p in meta["profiles"]}
    spare = dict(meta["profiles"][0], name="never-ran")
    meta["profiles"] = [by_name.get(name, spare) for name in order]
    (run_dir / "run.json").write_text(json.dumps(meta))


def test_the_queue_follows_the_order_the_scenarios_ran(finished_run):
    _rewrite_profiles(finished_run.run_dir, ["second", "first"])
    recording = load_recorded_run(finished_run.run_dir)
    started = [(t, e.profile.name) for t, e in recording.events if isinstance(e, ProfileStarted)]
    between = (started[0][0] + started[1][0]) / 2
    queue = {e.name: e.status for e in state_at(recording, between).view().queue}
    assert queue == {"first": EntryStatus.RUNNING, "second": EntryStatus.QUEUED}


def test_scenarios_that_never_ran_end_skipped(finished_run):
    _rewrite_profiles(finished_run.run_dir, ["first", "second", "never-ran"])
    recording = load_recorded_run(finished_run.run_dir)
    queue = {e.name: e.status for e in state_at(recording, recording.duration_s).view().queue}
    assert queue["never-ran"] is EntryStatus.SKIPPED, "as the engine marks it when a run ends"


def test_a_replay_says_so_with_its_cursor(h200):
    recording, _ = h200

    async def drive() -> None:
        app = make_app(state_at(recording, recording.duration_s), ReadOnly(), recording=recording)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            header = str(app.query_one("#header").render())
            assert "REPLAY 00:00:52/00:00:52" in header
            await pilot.press(*["left_square_bracket"] * 20)
            await pilot.pause()
            assert "REPLAY 00:00:26/00:00:52" in str(app.query_one("#header").render())
            assert not app.query(ModeBadge), "the header says REPLAY: no second line for it"

    asyncio.run(drive())


def test_the_cursor_lands_on_the_run_s_own_ends():
    length = 90.15260301538721  # (length / 40) * 40 falls short of it
    assert on_grid(length, length, 40) == length, "else the last events are not shown"
    assert on_grid(length - 40 * (length / 40), length, 40) == 0.0
    assert on_grid(-5.0, length, 40) == 0.0 and on_grid(1e9, length, 40) == length
    assert on_grid(1.0, 0.0, 40) == 0.0
