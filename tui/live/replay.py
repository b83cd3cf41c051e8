"""A recorded run on the live screen: its events folded into a ``LiveState`` up to a moment.

``llmtop replay`` shows the end state first; ``[``/``]`` move the cursor through the run, and
each move folds the recorded events again, up to the cursor, under a clock that reads the
events' own times. Reading the folder into events is ``engine.analysis.replay``'s work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.live.state import LiveState

if TYPE_CHECKING:
    from engine.analysis.replay import RecordedRun


def state_at(run: RecordedRun, t_s: float) -> LiveState:
    """The live state as it stood ``t_s`` seconds into the recorded run."""
    clock = _Clock()
    state = LiveState(clock=clock)
    state.set_slo(run.slo)
    for when, event in run.events:
        if when > t_s:
            break
        clock.now = when
        state.apply(event)
    clock.now = t_s
    if not run.complete and t_s >= run.duration_s:
        state.mark_incomplete()
    return state


def on_grid(t_s: float, length_s: float, steps: int) -> float:
    """``t_s`` moved to the nearest of ``steps`` equal steps through the run, within it: 40
    steps back from the end is 0, not a rounding error left by subtracting fortieths."""
    if length_s <= 0:
        return 0.0
    index = max(0, min(steps, round(t_s * steps / length_s)))
    # The end is the end itself: fortieths added up can fall short of it and miss its events.
    return length_s if index == steps else index * length_s / steps


class _Clock:
    """A clock that reads what it is set to: the time of the event being folded."""

    now = 0.0

    def __call__(self) -> float:
        return self.now
