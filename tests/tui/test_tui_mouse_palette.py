"""Pilot tests of the mouse, the command palette's own commands and the chart span key."""

from __future__ import annotations

from tests.support.tui_data import SeededRun
from tests.tui.test_tui_app import RecordingControls, sync
from tui.live.app import make_app
from tui.live.screens.modals import ConfirmScreen
from tui.live.screens.record import RecordScreen
from tui.live.widgets.queue import QueueTable
from tui.live.widgets.request_list import RequestList

SIZE = (120, 36)


@sync
async def test_a_click_selects_a_scenario_and_never_switches_to_it():
    controls = RecordingControls()
    app = make_app(SeededRun().state(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        queue = app.query_one(QueueTable)
        await pilot.click(QueueTable, offset=(4, 3))  # border, header, then the entries
        assert queue.selected_entry() == app.view.queue[1].entry_id
        assert controls.calls == [], "a stray click must not stop the running scenario"
        await pilot.press("enter")
        assert controls.calls == [("switch_to", app.view.queue[1].entry_id)]


@sync
async def test_clicks_on_tabs_and_requests_and_the_wheel():
    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        await pilot.click("#tabs Tab#--content-tab-tab-results")
        assert app.query_one("#tabs").active == "tab-results"
        await pilot.click("#tabs Tab#--content-tab-tab-requests")
        requests = app.query_one(RequestList)
        await pilot.click(RequestList, offset=(3, 1))  # the first drawn request
        first = requests.selected_record()
        assert first is not None and first is not app.view.recent[-1]
        await pilot.click(RequestList, offset=(3, 1))
        assert isinstance(app.screen, RecordScreen) and app.screen.record is first
        await pilot.press("escape")
        before = requests._index()
        requests.on_mouse_scroll_down(None)  # Pilot has no wheel: the handler it would call
        assert requests._index() == before + 3


@sync
async def test_the_palettes_quit_asks_first_like_q():
    controls = RecordingControls()
    app = make_app(SeededRun().state(), controls)
    async with app.run_test(size=SIZE) as pilot:
        (quit_command,) = [c for c in app.get_system_commands(app.screen) if c.title == "Quit"]
        quit_command.callback()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and controls.calls == []
        await pilot.press("n")
        await app.action_quit()  # Textual's own (Ctrl+Q) too
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)


@sync
async def test_a_screenshot_goes_to_the_runs_folder_and_says_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the seeded run's folder is relative: it lands under tmp_path
    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        (shot,) = [c for c in app.get_system_commands(app.screen) if c.title == "Screenshot"]
        shot.callback()
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        saved = list((tmp_path / app.view.results_dir).glob("llmtop-screen-*.svg"))
        assert len(saved) == 1 and "<svg" in saved[0].read_text()
        assert any(str(saved[0].name) in n.message for n in app._notifications)


@sync
async def test_w_changes_the_span_of_every_chart():
    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        assert "-60s" in str(app.query_one("#latency").render())
        await pilot.press("w")
        assert "10 min" in str(app.query_one("#header").render())
        assert "-10m" in str(app.query_one("#latency").render())
        assert "(10 min)" in app.query_one("#throughput").border_title
        await pilot.press("w", "w")
        assert "1 min" in str(app.query_one("#header").render())


@sync
async def test_a_resize_recomputes_the_layout():
    app = make_app(SeededRun(gpus=8).state(), RecordingControls())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert app.screen.has_class("-narrow", "-short")
        assert len(str(app.query_one("#system").render()).splitlines()) == 3, "GPUs folded"
        await pilot.resize_terminal(200, 50)
        await pilot.pause(0.5)
        assert app.screen.has_class("-wide", "-tall")
        assert app.query_one("#side").size.width == 44
        system = str(app.query_one("#system").render()).splitlines()
        assert len(system) == 11, "a line per GPU once there is room"


@sync
async def test_the_quit_question_wraps_at_80_columns():
    app = make_app(SeededRun().state(), RecordingControls())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        question = app.screen.query_one("#dialog Label")
        assert question.size.height >= 2 and question.size.width <= 60
        assert "results are kept." in str(question.render())
