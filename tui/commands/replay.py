"""``llmtop replay RESULTS_DIR``: a finished (or killed) run on the live screen.

Textual and the live screen are imported inside the command, so importing this module (as the
command line does to dispatch) loads neither.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from engine.analysis.replay import load_recorded_run
from engine.errors import ExitCode, InputError


class NoTerminal(InputError):
    """The replay was asked for where no screen can be drawn (a pipe, a file, no tty)."""


def replay_command(run_dir: Path, *, web: tuple[str, int] | None = None) -> int:
    """Open a results folder in the live screen, or serve it to browsers at ``web`` (host,
    port) until Ctrl+C; returns the exit code.

    ``engine.analysis.replay.ReplayError`` when the folder is not a run; ``NoTerminal`` when
    stdin or stdout is not a terminal (the screen would be drawn into a pipe and wait for
    keys that never come).
    """
    recording = load_recorded_run(run_dir)  # a bad folder is refused before serving it
    if web is not None:
        from tui.web.session import serve_view, wait_until_told

        # Each browser gets a replay of its own (``python -m tui replay``), cursor and all.
        argv = [sys.executable, "-m", "tui", "replay", str(run_dir.resolve())]
        with serve_view(lambda _relay: argv, *web):
            wait_until_told("serving the replay; Ctrl+C to stop")
        return ExitCode.OK
    # A browser's copy (textual-serve runs it with its web driver and pipes) draws to the page.
    served = os.environ.get("TEXTUAL_DRIVER", "").endswith("WebDriver")
    for name, stream in (("stdout", sys.stdout), ("stdin", sys.stdin)):
        if not served and not stream.isatty():
            raise NoTerminal(
                f"replay draws the live screen: it needs a terminal, and {name} is not one "
                "(`llmtop runs` and `llmtop report RUN` give the figures without a screen)"
            )
    from tui.live.app import make_app
    from tui.live.controls import ReadOnly
    from tui.live.replay import state_at

    app = make_app(
        state_at(recording, recording.duration_s),
        ReadOnly(),
        title=f"replay {run_dir}",
        recording=recording,
    )
    for note in recording.notes[:5]:
        app.notify(note, severity="warning", timeout=10)
    app.run()
    return ExitCode.OK
