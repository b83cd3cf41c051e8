"""``llmtop replay RESULTS_DIR``: a finished (or killed) run on the live screen.

Textual and the live screen are imported inside the command, so importing this module (as the
command line does to dispatch) loads neither.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.analysis.replay import load_recorded_run
from engine.errors import ExitCode, InputError


class NoTerminal(InputError):
    """The replay was asked for where no screen can be drawn (a pipe, a file, no tty)."""


def replay_command(run_dir: Path) -> int:
    """Open a results folder in the live screen; returns the exit code.

    ``engine.analysis.replay.ReplayError`` when the folder is not a run; ``NoTerminal`` when
    stdin or stdout is not a terminal (the screen would be drawn into a pipe and wait for
    keys that never come).
    """
    for name, stream in (("stdout", sys.stdout), ("stdin", sys.stdin)):
        if not stream.isatty():
            raise NoTerminal(
                f"replay draws the live screen: it needs a terminal, and {name} is not one "
                "(`llmtop runs` and `llmtop report RUN` give the figures without a screen)"
            )
    from tui.live.app import make_app
    from tui.live.controls import ReadOnly
    from tui.live.replay import state_at

    recording = load_recorded_run(run_dir)
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
