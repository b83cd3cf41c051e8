"""Pilot tests: keys pressed on the live screen reach the run's controls, and quitting keeps
results. The run is seeded (tests/tui_data.py); the controls record what they were asked.
"""

from __future__ import annotations

import asyncio
import functools

import pytest

from engine.events import RunFinished, SendingPaused
from engine.metrics.client_health import ClientHealth
from engine.metrics.summary import RunSummary
from engine.workload.queue import EntryStatus
from tests.support.tui_data import FrozenClock, SeededRun
from tui.live.app import make_app
from tui.live.controls import ReadOnly
from tui.live.screens.modals import ConfirmScreen, HelpScreen, ProfilePicker
from tui.live.screens.record import RecordScreen
from tui.live.widgets.queue import QueueTable
from tui.live.widgets.request_list import RequestList

SIZE = (100, 30)


class RecordingControls:
    """Controls that remember each call instead of reaching an engine."""

    read_only = False

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, *args))


def sync(test):
    """Run an async test body on a fresh loop (no asyncio pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def _entry_ids(app) -> dict[str, int]:
    return {e.name: e.entry_id for e in app.view.queue}


def _finished(status: str = "interrupted", code: int = 130) -> RunFinished:
    return RunFinished(
        RunSummary(
            run_id="seeded",
            status=status,
            exit_code=code,
            started_unix_s=0.0,
            duration_s=1.0,
            profiles=[],
            client=ClientHealth(
                loop_lag_p50_ms=None, loop_lag_p99_ms=None, loop_lag_max_ms=None, sink_time_s=0.0
            ),
            notices=[],
        )
    )


@sync
async def test_arrows_and_enter_switch_to_the_selected_scenario():
    controls = RecordingControls()
    app = make_app(SeededRun().state(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.focused is app.query_one(QueueTable)
        await pilot.press("down", "enter")
        ids = _entry_ids(app)
        assert controls.calls == [("switch_to", ids["long-qa"])]
        await pilot.press("n", "r", "d")
        assert controls.calls[1:] == [
            ("next_profile",),
            ("rerun", ids["long-qa"]),
            ("remove_entry", ids["long-qa"]),
        ]


@sync
async def test_space_pauses_then_resumes_as_the_engine_reports():
    controls, state = RecordingControls(), SeededRun().state()
    app = make_app(state, controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        assert controls.calls == [("set_paused", True)]
        state.apply(SendingPaused(True, 0))
        await pilot.pause(0.3)
        assert "PAUSED" in str(app.query_one("#header").render())
        await pilot.press("space")
        assert controls.calls[-1] == ("set_paused", False)


@sync
async def test_a_adds_a_builtin_profile_from_the_picker():
    controls = RecordingControls()
    app = make_app(SeededRun().state(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, ProfilePicker)
        await pilot.press("down", "enter")  # the second built-in profile
        assert not isinstance(app.screen, ProfilePicker)
        ((name, profile),) = controls.calls
        assert name == "add_profile" and profile.name == sorted(_builtin())[1]


@sync
async def test_picker_names_a_bad_file_and_stays_open(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('concurrency = "many"\n')
    controls = RecordingControls()
    app = make_app(SeededRun().state(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        app.screen.query_one("#path").focus()
        await pilot.press(*str(bad), "enter")
        assert isinstance(app.screen, ProfilePicker) and controls.calls == []
        assert "concurrency" in str(app.screen.query_one("#error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, ProfilePicker)


@sync
async def test_s_ends_the_run_gracefully():
    controls = RecordingControls()
    app = make_app(SeededRun().state(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert controls.calls == [("end_run",)]


@sync
async def test_q_asks_then_interrupts_and_exits_once_the_summary_is_written():
    controls, state = RecordingControls(), SeededRun().state()
    app = make_app(state, controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert controls.calls == [] and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q", "y")
        assert controls.calls == [("interrupt",)]
        assert app.is_running, "it waits for the engine to record and write the summary"
        state.apply(_finished())
        await pilot.pause(0.5)
    assert app.return_value == 130


@sync
async def test_q_after_the_run_ended_exits_without_asking():
    app = make_app(SeededRun().state(finished=True), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0


@sync
async def test_enter_on_a_request_shows_its_full_record():
    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        app.query_one(RequestList).focus()
        await pilot.press("enter")
        assert isinstance(app.screen, RecordScreen)
        assert app.screen.record.request_id == app.view.recent[-1].request_id
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


@sync
async def test_a_replay_hides_run_controls():
    app = make_app(SeededRun().state(finished=True), ReadOnly())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "space", "a", "s")
        assert not isinstance(app.screen, ProfilePicker)
        shown = {
            key
            for key, b in app.screen.active_bindings.items()
            if app.check_action(b.binding.action, ())
        }
        assert not {"n", "space", "a", "d", "r", "s"} & shown
        assert {"q", "question_mark"} <= shown


@sync
async def test_every_action_is_in_the_command_palette():
    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
    for title in (
        "Switch to the selected scenario",
        "Next scenario",
        "Pause / resume sending",
        "Add a scenario",
        "Remove the selected scenario",
        "Re-run the selected scenario",
        "Stop the run",
        "Keys and definitions",
    ):
        assert title in titles


@sync
async def test_queue_shows_status_and_follows_engine_changes():
    state = SeededRun().state(FrozenClock())
    app = make_app(state, RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        statuses = [e.status for e in app.view.queue]
        assert statuses == [EntryStatus.DONE, EntryStatus.DONE, EntryStatus.RUNNING]
        assert app.query_one(QueueTable).row_count == 3


def _builtin() -> list[str]:
    from engine.workload.profile import builtin_names

    return builtin_names()


pytestmark = pytest.mark.timeout(60)


@sync
async def test_a_matrix_configurations_screen_closes_itself_after_its_run():
    state = SeededRun().state()
    app = make_app(state, RecordingControls(), close_when_done=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        assert app.is_running, "still running: stays"
        state.apply(_finished("completed", 0))
        await pilot.pause(1.0)
        assert app.return_value is None, "the end stays visible for a moment"
        await asyncio.sleep(3.0)  # (the pilot waits on the app's loop, which is ending)
        assert app.return_value == 0


@sync
async def test_tab_reaches_the_requests_and_t_switches_tables():
    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab")
        assert app.focused is app.query_one(RequestList)
        await pilot.press("enter")
        assert isinstance(app.screen, RecordScreen)
        await pilot.press("escape", "t")
        assert app.query_one("#tabs").active == "tab-results"
        await pilot.press("t", "t")
        assert app.query_one("#tabs").active == "tab-latency"
        await pilot.press("t", "t")
        assert app.query_one("#tabs").active == "tab-requests"


@sync
async def test_notices_keep_coming_after_the_buffer_is_full():
    from engine.events import NoticeRaised
    from tui.live.state import MAX_NOTICES

    state = SeededRun().state()
    app = make_app(state, RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        for i in range(MAX_NOTICES + 5):
            state.apply(NoticeRaised("warning", f"notice {i}"))
        await pilot.pause(0.5)
        state.apply(NoticeRaised("warning", "the last one"))
        await pilot.pause(0.5)
        messages = [n.message for n in app._notifications]
        assert "the last one" in messages
        assert app.query_one("#notices").lines[-1] == "[warning] the last one"


@sync
async def test_textual_logging_still_works_once_the_notices_tab_is_up(monkeypatch):
    # textual.log hands its lines to app._log (the devtools writer); the app once stored
    # its Notices widget under that name, so every log call under devtools raised.
    import textual
    from textual.app import App

    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        assert getattr(app._log, "__func__", None) is App._log
        monkeypatch.setattr(type(app), "_is_devtools_connected", property(lambda _: True))
        textual.log("a line for the devtools console")
        app.log.system("and one more")
        monkeypatch.undo()
