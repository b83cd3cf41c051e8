"""The command palette (Ctrl+P): every action of the live screen by name.

Textual's own "Quit" and "Screenshot" are replaced: quitting asks first while a run is going
(as ``q`` does), and the screenshot goes to the run's folder instead of ``~/Downloads``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import SystemCommand

if TYPE_CHECKING:
    from tui.live.app import LlmtopApp

REPLACED = {"Quit", "Screenshot"}
"""Textual's commands that llmtop gives its own meaning."""


def palette_commands(app: LlmtopApp, textual: Iterable[SystemCommand]) -> Iterable[SystemCommand]:
    """Textual's commands (less ``REPLACED``), then llmtop's."""
    yield from (c for c in textual if c.title not in REPLACED)
    for title, help_text, action in (
        ("Quit", "asks first while a run is going; results are kept", app.action_quit_app),
        ("Screenshot", "an SVG of the screen, saved in the run's folder", app.action_screenshot),
        (
            "Switch to the selected scenario",
            "stop the current one; run this now",
            app.action_switch,
        ),
        (
            "Next scenario",
            "stop the current scenario; the next queued one starts",
            app.action_next_profile,
        ),
        ("Pause / resume sending", "in-flight requests go on", app.action_toggle_pause),
        ("Add a scenario", "a built-in profile or a TOML file", app.action_add_profile),
        ("Remove the selected scenario", "queued ones only", app.action_remove_entry),
        ("Re-run the selected scenario", "queued next", app.action_rerun),
        ("Stop the run", "in-flight requests finish; summary written", app.action_stop_run),
        ("Chart span", "1 min, 10 min or the whole run", app.action_next_span),
        ("Next list", "Requests, Results, Ladder, Latency, Notices", app.action_next_tab),
        (
            "Compare with another run",
            "bootstrap intervals per profile and figure",
            app.action_compare,
        ),
        ("Keys and definitions", "the help screen", app.action_help),
    ):
        yield SystemCommand(title, help_text, action)


def save_screenshot(app: LlmtopApp, folder: Path, filename: str | None = None) -> None:
    """The screen as SVG in ``folder`` (the run's; Textual's default, ``~/Downloads``, is
    often missing on a server), written off the UI's loop, then a notice saying where."""
    target = folder / (filename or f"llmtop-screen-{time.strftime('%Y%m%d-%H%M%S')}.svg")
    svg = app.export_screenshot()

    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(svg, encoding="utf-8")
        app.call_from_thread(app.notify, f"screenshot saved: {target}", timeout=10)

    app.run_worker(write, name="screenshot", group="screenshot", thread=True, exit_on_error=False)


def screenshot_folder(results_dir: str) -> Path:
    """The run's folder when it exists and can be written (a replay may show a read-only
    one), else the current folder."""
    folder = Path(results_dir) if results_dir else Path.cwd()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path.cwd()
    return folder if os.access(folder, os.W_OK) else Path.cwd()
