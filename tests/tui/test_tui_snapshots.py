"""Screenshots of the live screen at fixed sizes, seeded data and a frozen clock.

Every screen a reviewer checks is drawn at 80x24, 120x36 and 200x50: a live run, an 8-GPU
box, a failed run and a replay of a real H200 run. Update after an intended change with
``scripts/test tests/tui/test_tui_snapshots.py --snapshot-update`` and look at the SVGs under
``tests/tui/__snapshots__`` before committing.
"""

from __future__ import annotations

import pytest

from engine.analysis.replay import load_recorded_run
from tests.support.paths import ROOT
from tests.support.tui_data import IdleControls, SeededRun, ladder_profiles
from tui.live.app import make_app
from tui.live.controls import ReadOnly
from tui.live.replay import state_at

SIZES = [(80, 24), (120, 36), (200, 50)]
H200_RUN = ROOT / "bench" / "gpu" / "h200-telemetry-20261121"
"""A real run on an H200 (bench/RESULTS-gpu.md), with GPU samples."""


async def _settle(pilot) -> None:
    """Let the first repaints and the tables' scrolling finish, however busy the machine."""
    await pilot.pause(0.5)
    await pilot.wait_for_scheduled_animations()


def _app(run: SeededRun, *, finished: bool = False):
    return make_app(run.state(finished=finished), IdleControls())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_live_run(snap_compare, size):
    assert snap_compare(_app(SeededRun()), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_eight_gpus(snap_compare, size):
    assert snap_compare(_app(SeededRun(gpus=8)), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_failed_run(snap_compare, size):
    app = _app(SeededRun(failures=True, client_cpu_pct=93.0), finished=True)
    assert snap_compare(app, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_mid_run(snap_compare, size, monkeypatch):
    """Scrubbed back to the middle: the queue, the charts and the badge say where it is."""
    # The header shows the folder as given: relative, so the picture is the same in any clone.
    monkeypatch.chdir(ROOT)
    recording = load_recorded_run(H200_RUN.relative_to(ROOT))
    app = make_app(state_at(recording, recording.duration_s), ReadOnly(), recording=recording)
    back = ["left_square_bracket"] * (app.SCRUB_STEPS // 2)
    assert snap_compare(app, terminal_size=size, press=back, run_before=_settle)


def test_no_gpu(snap_compare):
    assert snap_compare(
        _app(SeededRun(gpu=False, server_metrics=False)),
        terminal_size=(100, 30),
        run_before=_settle,
    )


def test_ladder_climbing(snap_compare):
    run = SeededRun(gpus=2, profiles=ladder_profiles())
    assert snap_compare(_app(run), terminal_size=(120, 36), press=["t", "t"], run_before=_settle)


def test_results_table(snap_compare):
    app = _app(SeededRun(failures=True), finished=True)
    assert snap_compare(app, terminal_size=(120, 36), press=["t"], run_before=_settle)


def test_request_timeline(snap_compare):
    app = _app(SeededRun())
    assert snap_compare(app, terminal_size=(100, 36), press=["tab", "enter"], run_before=_settle)


def test_help_screen(snap_compare):
    assert snap_compare(
        _app(SeededRun()), terminal_size=(100, 36), press=["question_mark"], run_before=_settle
    )
