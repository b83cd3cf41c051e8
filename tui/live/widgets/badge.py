"""The line under the header that says when the screen is not a live run's own: a replay (and
where its cursor is), or a read-only view such as a browser following a run.

A replay looked exactly like a finished live run, so a person could not tell a recording from
the run itself, nor where in it the screen stood.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from tui.format import fmt_elapsed
from tui.live.controls import Controls

if TYPE_CHECKING:  # numpy behind it: a live run never needs it
    from engine.analysis.replay import RecordedRun


class ModeBadge(Static):
    """One line: what kind of screen this is; the app updates it as the replay cursor moves."""

    DEFAULT_CSS = "ModeBadge { height: 1; background: $panel; }"

    def show(
        self, controls: Controls, recording: RecordedRun | None, cursor_s: float, steps: int
    ) -> None:
        """A replay says so, with its cursor; another read-only screen says why it is one."""
        if recording is None:
            self.update(read_only_badge(controls.read_only_reason))
        else:
            length = recording.duration_s
            self.update(replay_badge(cursor_s, length, length / steps))


def replay_badge(cursor_s: float, length_s: float, step_s: float) -> Text:
    """``REPLAY 00:00:26 of 00:00:53`` and the keys that move the cursor."""
    where = f"{cursor_s / length_s:.0%}" if length_s > 0 and cursor_s < length_s else "end"
    return Text.assemble(
        (" REPLAY ", "reverse bold magenta"),
        " ",
        (fmt_elapsed(cursor_s), "bold"),
        f" of {fmt_elapsed(length_s)} ({where})",
        (f"   [ ] move {step_s:.1f} s, e end; a recorded run: nothing here changes it", "dim"),
    )


def read_only_badge(reason: str) -> Text:
    """``READ-ONLY`` and why the keys that change a run do nothing here."""
    return Text.assemble((" READ-ONLY ", "reverse bold cyan"), " ", (reason, "dim"))
