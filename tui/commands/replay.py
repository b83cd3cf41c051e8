"""``llmtop replay RESULTS_DIR``: a finished (or killed) run on the live screen.

Textual and the live screen are imported inside the command, so importing this module (as the
command line does to dispatch) loads neither.
"""

from __future__ import annotations

from pathlib import Path

from engine.analysis.replay import load_recorded_run
from engine.errors import ExitCode


def replay_command(run_dir: Path) -> int:
    """Open a results folder in the live screen; returns the exit code.

    ``engine.analysis.replay.ReplayError`` when the folder is not a run.
    """
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
