"""Screenshots of the live screen at fixed sizes, seeded data and a frozen clock.

Update after an intended change with ``scripts/test tests/test_tui_snapshots.py
--snapshot-update`` and look at the SVGs under ``tests/__snapshots__`` before committing.
"""

from __future__ import annotations

from tests.support.tui_data import IdleControls, SeededRun
from tui.live.app import make_app


async def _settle(pilot) -> None:
    """Let the first repaints and the tables' scrolling finish, however busy the machine."""
    await pilot.pause(0.5)
    await pilot.wait_for_scheduled_animations()


def _app(run: SeededRun, *, finished: bool = False):
    return make_app(run.state(finished=finished), IdleControls())


def test_main_screen(snap_compare):
    assert snap_compare(_app(SeededRun()), terminal_size=(120, 36), run_before=_settle)


def test_main_screen_at_80x24(snap_compare):
    assert snap_compare(_app(SeededRun()), terminal_size=(80, 24), run_before=_settle)


def test_no_gpu(snap_compare):
    assert snap_compare(
        _app(SeededRun(gpu=False, server_metrics=False)),
        terminal_size=(100, 30),
        run_before=_settle,
    )


def test_failed_run_with_errors(snap_compare):
    assert snap_compare(
        _app(SeededRun(failures=True), finished=True), terminal_size=(100, 30), run_before=_settle
    )


def test_help_screen(snap_compare):
    assert snap_compare(
        _app(SeededRun()), terminal_size=(100, 36), press=["question_mark"], run_before=_settle
    )
