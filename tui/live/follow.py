"""The live screen of a run that another llmtop process measures: what each browser gets.

``python -m tui.live.follow RELAY`` is the command textual-serve starts per browser
connection (``tui.web.server``). It reads the run's low-rate events from the relay file
(``tui.web.relay``) and its records and samples from the results folder, into a
``LiveState``, so every viewer sees the one run the engine measures, from its start even when
it joins late. It is read-only: keys that change a run (pause, next, add, stop...) belong to
the terminal that started it, and a line under the header says so.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from engine.events import RunFinished, RunStarted
from engine.metrics.summary import Slo
from engine.results.folder import read_json
from engine.results.layout import RUN_FILE
from tui.live.controls import ReadOnly
from tui.live.state import LiveState
from tui.live.tails import RunFolderTail
from tui.web.relay import RelayReader

POLL_S = 0.1
"""How often the relay file and the results files are read."""
READ_ONLY_REASON = (
    "a browser's view of the run: pause, next, add and stop work in the terminal that started "
    "it (Ctrl+C there stops the run)"
)
"""What a viewer is told when it presses a key that changes a run."""


class EventClock:
    """Wall time, except on the reader's thread while it applies an event: then the time the
    event was published, so a viewer that joins late shows the run's own elapsed time."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> float:
        published: float | None = getattr(self._local, "now", None)
        return published if published is not None else time.time()

    def set(self, now: float | None) -> None:
        """The time of the event being applied on this thread (``None``: wall time again)."""
        self._local.now = now


class Follower:
    """Reads the relay and the run's folder into ``state`` on a thread until the run ends."""

    def __init__(self, relay: Path, state: LiveState, clock: EventClock) -> None:
        self.state = state
        self._clock = clock
        self._relay = RelayReader(relay)
        self._folder: RunFolderTail | None = None
        self._thread = threading.Thread(target=self._follow, name="llmtop-follow", daemon=True)

    def start(self) -> None:
        """Start reading (returns at once)."""
        self._thread.start()

    def _follow(self) -> None:
        while not self.read_once():
            time.sleep(POLL_S)

    def read_once(self) -> bool:
        """Apply what the relay and the folder gained; True once the run has ended."""
        ended = False
        for published, event in self._relay.frames():
            if isinstance(event, RunStarted):
                self._started(Path(event.results_dir))
            if isinstance(event, RunFinished) and self._folder is not None:
                self._folder.read()  # every record before the end
            self._clock.set(published)
            try:
                self.state.apply(event)
            finally:
                self._clock.set(None)
            ended = ended or isinstance(event, RunFinished)
        if self._folder is not None:
            self._folder.read()
        return ended

    def _started(self, run_dir: Path) -> None:
        meta = read_json(run_dir / RUN_FILE, []) or {}
        self.state.set_slo(Slo.model_validate(meta.get("slo") or {}))
        self._folder = RunFolderTail(run_dir, self.state)


def main(argv: list[str]) -> int:
    """Follow the run whose relay file is ``argv[0]`` on this terminal (a browser's)."""
    from tui.live.app import make_app

    clock = EventClock()
    state = LiveState(clock=clock)
    follower = Follower(Path(argv[0]), state, clock)
    follower.start()
    make_app(state, ReadOnly(READ_ONLY_REASON), title="llmtop (browser view)").run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
