"""``llmtop replay``: a results folder back in the live screen, at the end or any moment."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from engine.analysis.replay import ReplayError, load_recorded_run
from engine.events import SnapshotTaken
from engine.workload.queue import EntryStatus
from tests.support.builders import make_profile
from tests.support.paths import ROOT
from tests.support.run_fixtures import KILLED, SLOW, copy_run
from tui.cli import main
from tui.live.app import make_app
from tui.live.controls import ReadOnly
from tui.live.replay import state_at
from tui.live.screens.compare import CompareScreen, RunPicker


@pytest.fixture
def finished_run(fake_server, run_engine):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.02, 0.005
    return run_engine(
        fake_server.url,
        [
            make_profile(name="first", requests=6, concurrency=2),
            make_profile(name="second", requests=4),
        ],
    )


def test_end_state_matches_the_run(finished_run):
    recording = load_recorded_run(finished_run.run_dir)
    view = state_at(recording, recording.duration_s).view()
    assert view.totals["requests"] == 10 and view.totals["failed"] == 0
    assert [(e.name, e.status) for e in view.queue] == [
        ("first", EntryStatus.DONE),
        ("second", EntryStatus.DONE),
    ]
    assert view.summary == finished_run.summary and view.status == "completed"
    assert [row.exact for row in view.latency] == [True, True]
    assert view.latency[0].metrics["ttft_s"] == finished_run.summary.profiles[0].ttft_s
    assert abs(view.elapsed_s - recording.duration_s) < 1e-9
    assert view.gpu_notice is not None or view.gpus, "the GPU pane says why it is empty"
    assert view.rates is None and view.current is None, "no rate outlives its scenario"


def test_scrubbing_shows_the_run_as_it_stood(finished_run):
    recording = load_recorded_run(finished_run.run_dir)
    first_end = max(r["end_ns"] for r in finished_run.records if r["profile"] == "first")
    view = state_at(recording, first_end / 1e9).view()
    assert view.totals["requests"] == 6
    assert [e.status for e in view.queue] == [EntryStatus.DONE, EntryStatus.QUEUED]
    assert view.summary is None and state_at(recording, 0).view().totals["requests"] == 0


def test_a_killed_run_replays_with_a_note(finished_run):
    folder = finished_run.run_dir
    (folder / "summary.json").unlink()
    text = (folder / "requests.jsonl").read_text()
    (folder / "requests.jsonl").write_text(text[: len(text) - 40])  # last line cut short
    recording = load_recorded_run(folder)
    view = state_at(recording, recording.duration_s).view()
    assert view.totals["requests"] == 9 and view.summary is None
    assert view.status == "incomplete", "a killed run does not read as running"
    assert any("truncated last line" in n for n in recording.notes)
    assert any("no final summary.json" in n for n in recording.notes)


def test_rebuilt_snapshots_count_requests_sent_apart_from_finished(tmp_path):
    # 1 slot, c=4: just after 1.95 s six measured requests were sent (four at 1.37 s, then
    # one as each of the first two ended at 1.69 and 1.95 s) and two had finished.
    recording = load_recorded_run(copy_run(SLOW, tmp_path))
    snapshots = [(t, e) for t, e in recording.events if isinstance(e, SnapshotTaken)]
    after = next(e for t, e in snapshots if t > 1.95)
    assert (after.sent_total, after.finished_total, after.in_flight) == (6, 2, 4)
    measured = [e for _, e in snapshots if not e.warmup]
    assert all(s.sent_total - s.finished_total == s.in_flight for s in measured)


def test_a_killed_run_counts_its_unfinished_requests_as_sent(tmp_path):
    recording = load_recorded_run(copy_run(KILLED, tmp_path))
    at_3s = next(e for t, e in recording.events if isinstance(e, SnapshotTaken) and t >= 3.0)
    assert (at_3s.sent_total, at_3s.finished_total) == (3, 0)


def test_the_replay_command_module_loads_no_textual():
    code = "import sys, tui.commands.replay; assert 'textual' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_bad_folders_are_named(tmp_path, capsys):
    with pytest.raises(ReplayError, match="not a folder"):
        load_recorded_run(tmp_path / "missing")
    with pytest.raises(ReplayError, match="no requests.jsonl"):
        load_recorded_run(tmp_path)
    assert main(["replay", str(tmp_path / "missing")]) == 2
    assert "missing: no such folder" in capsys.readouterr().err


def test_brackets_move_the_replay_cursor(finished_run):
    recording = load_recorded_run(finished_run.run_dir)

    async def drive() -> None:
        app = make_app(state_at(recording, recording.duration_s), ReadOnly(), recording=recording)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.2)
            assert app.view.totals["requests"] == 10
            await pilot.press(*["left_square_bracket"] * 40)
            assert app.cursor_s == 0 and app.view.totals["requests"] == 0
            await pilot.press("e")
            assert app.view.totals["requests"] == 10

    asyncio.run(drive())


def test_c_compares_the_run_on_screen_with_another(fake_server, run_engine):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.02, 0.005
    profile = make_profile(name="first", requests=12, concurrency=2)
    baseline = run_engine(fake_server.url, profile)
    fake_server.behaviour.ttft_s = 0.08  # the second run is slower to first token
    slower = run_engine(fake_server.url, profile)
    recording = load_recorded_run(slower.run_dir)

    async def drive() -> None:
        app = make_app(state_at(recording, recording.duration_s), ReadOnly(), recording=recording)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("c")
            assert isinstance(app.screen, RunPicker)
            assert app.screen.runs == [baseline.run_dir], "the other run, not this one"
            await pilot.press("enter")
            for _ in range(100):
                if isinstance(app.screen, CompareScreen):
                    break
                await pilot.pause(0.1)
            screen = app.screen
            assert isinstance(screen, CompareScreen)
            (first,) = screen.comparison.runs[0].profiles
            ttft = first.metric("ttft_s.p50")
            assert ttft.verdict == "worse" and ttft.ci_low > 0.03, "B is slower, and says so"
            assert screen.query_one("#compare").row_count > 10
            await pilot.press("escape")
            assert not isinstance(app.screen, CompareScreen)

    asyncio.run(drive())


def test_mid_scenario_the_queue_progress_and_rates_are_that_scenarios(finished_run):
    recording = load_recorded_run(finished_run.run_dir)
    second = [r for r in finished_run.records if r["profile"] == "second"]
    first_end = min(r["end_ns"] for r in second) / 1e9
    at = first_end + 1e-6  # one of the second scenario's requests has ended
    view = state_at(recording, at).view()
    assert [e.status for e in view.queue] == [EntryStatus.DONE, EntryStatus.RUNNING]
    ended = sum(1 for r in second if r["end_ns"] / 1e9 <= at and not r["warmup"])
    assert view.progress["second"].finished == ended
    assert view.current is None or view.current.profile == "second", "never the first's"
