"""The command palette's own entries (Textual's Quit and Screenshot) behave as llmtop's keys do:
Quit asks first while requests are going, Screenshot lands in the run folder and says where.
"""

from __future__ import annotations

from pathlib import Path

from textual.command import CommandPalette

from engine.events import RunStarted
from tests.support.tui_data import SeededRun
from tests.tui.test_tui_app import RecordingControls, sync
from tui.live.app import make_app
from tui.live.screens.modals import ConfirmScreen

SIZE = (100, 30)


async def _palette(pilot, app, command: str) -> None:
    """Open the palette, type ``command`` and run the entry it highlights."""
    await pilot.press("ctrl+p")
    for _ in range(20):
        if isinstance(app.screen, CommandPalette):
            break
        await pilot.pause(0.05)
    await pilot.press(*command)
    await pilot.pause(0.5)  # the palette searches in a worker
    await pilot.press("enter")
    await pilot.pause(0.3)


@sync
async def test_palette_quit_asks_while_requests_are_going():
    controls = RecordingControls()
    app = make_app(SeededRun().state(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _palette(pilot, app, "quit")
        assert isinstance(app.screen, ConfirmScreen), "the question `q` asks"
        assert app.is_running and controls.calls == []
        await pilot.press("n")
        assert app.is_running and controls.calls == []


def _run_in(folder: Path):
    """The seeded run, its results folder moved to ``folder``."""
    state = SeededRun().state()
    state.apply(RunStarted("seeded", str(folder), "http://127.0.0.1:8000", "m", "vllm", ()))
    return state


@sync
async def test_palette_screenshot_goes_to_the_run_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"  # no Downloads folder in it
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    app = make_app(_run_in(run_dir), RecordingControls())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await _palette(pilot, app, "screenshot")
        for _ in range(40):
            if list(run_dir.glob("*.svg")):
                break
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        (shot,) = run_dir.glob("*.svg")
        assert "<svg" in shot.read_text()[:2000]
        messages = [str(n.message) for n in app._notifications]
        assert any(str(shot) in m for m in messages), messages
        assert not any("fail" in m.lower() for m in messages), messages
