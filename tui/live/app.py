"""The live monitor: a Textual app painting a ``LiveState`` and driving a run's ``Controls``.

Data rate and paint rate are separate: events fold into ``LiveState`` on the sink's thread;
this app takes a ``LiveView`` on a timer (``REPAINT_HZ``) and never sees a token or a chunk.
``make_app`` builds it with its dependencies injected, so tests and ``llmtop replay`` reuse it.
"""

from __future__ import annotations

import asyncio
import signal
import textwrap
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Log, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from engine.telemetry.gpu import NO_GPU
from engine.workload.profile import Profile
from engine.workload.queue import EntryStatus
from tui.live.charts import SPANS
from tui.live.controls import Controls
from tui.live.palette import palette_commands, save_screenshot, screenshot_folder
from tui.live.replay import on_grid, state_at
from tui.live.screens.compare import pick_and_compare
from tui.live.screens.modals import ConfirmScreen, HelpScreen, ProfilePicker
from tui.live.screens.record import RecordScreen
from tui.live.state import LiveState, LiveView
from tui.live.widgets.badge import ModeBadge
from tui.live.widgets.load import LatencyPane, ThroughputPane
from tui.live.widgets.panes import HeaderBar, LatencyTable, TextPane
from tui.live.widgets.queue import QueueTable
from tui.live.widgets.request_list import RequestList
from tui.live.widgets.results import LadderPane, ResultsTable
from tui.live.widgets.system import TALL_ROWS, SystemPane

if TYPE_CHECKING:  # numpy behind it: a live run never needs it
    from engine.analysis.replay import RecordedRun

REPAINT_HZ = 4
"""Repaints per second: fast enough to follow a run; each costs the engine's thread GIL time
(bench/RESULTS.md, "With the live screen")."""
CLOSE_AFTER_S = 3.0
"""How long a matrix configuration's screen stays after its run ends."""
QUIT_WAIT_S = 15.0
"""How long quitting waits for the engine to record cancelled requests and the summary."""
WIDE_COLUMNS = 140
"""From this width the side column gets more room (app.tcss, ``Screen.-wide``)."""
TABS = ("tab-requests", "tab-results", "tab-ladder", "tab-latency", "tab-notices")
"""The lists under the charts, in the order ``t`` goes through them."""
LIVE_ACTIONS = (
    "next_profile",
    "toggle_pause",
    "add_profile",
    "remove_entry",
    "rerun",
    "stop_run",
    "switch",
)
"""Actions that change a run: hidden in a replay."""
NOTICE_SEVERITY: dict[str, SeverityLevel] = {
    "info": "information",
    "warning": "warning",
    "error": "error",
}
"""The engine's notice levels as Textual's notification severities."""


class _Pane(Protocol):
    """A widget the app repaints from each ``LiveView``."""

    def paint(self, view: LiveView) -> None: ...


class LlmtopApp(App[int]):
    """The live screen of one run (or a replay of a finished one)."""

    CSS_PATH = "app.tcss"
    TITLE = "llmtop"
    # Textual sets the class on the screen at every resize (a class set once at start
    # would keep the first layout).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL_ROWS, "-tall")]
    # The footer shows what a newcomer needs at 80 columns; every key is in `?` and Ctrl+P.
    BINDINGS = [
        Binding("space", "toggle_pause", "pause"),
        Binding("n", "next_profile", "next"),
        Binding("a", "add_profile", "add", show=False),
        Binding("d", "remove_entry", "remove", show=False),
        Binding("r", "rerun", "re-run", show=False),
        Binding("s", "stop_run", "stop", show=False),
        Binding("w", "next_span", "span"),
        Binding("t", "next_tab", "tab"),
        Binding("c", "compare", "compare", show=False),
        Binding("q", "quit_app", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("ctrl+c", "quit_now", "quit now", show=False, priority=True),
        Binding("left_square_bracket", "scrub(-1)", "back"),
        Binding("right_square_bracket", "scrub(1)", "fwd"),
        Binding("e", "scrub_end", "end"),
    ]
    SCRUB_STEPS = 40
    """A replay's ``[``/``]`` move the cursor by 1/SCRUB_STEPS of the run."""

    def __init__(
        self,
        state: LiveState,
        controls: Controls,
        *,
        title: str = "llmtop",
        recording: RecordedRun | None = None,
        close_when_done: bool = False,
    ) -> None:
        super().__init__()
        self.close_when_done = close_when_done
        """Close the screen by itself once the run has ended (a matrix's configuration)."""
        self.state = state
        self.controls = controls
        self.recording = recording
        """The run a replay shows (``None`` in a live run)."""
        self.cursor_s = recording.duration_s if recording else 0.0
        self.sub_title = title
        self._notices_seen = 0
        self._quitting = False
        self._exit_at: float | None = None
        """When to leave by the clock (a matrix's finished run; a quit the engine ignores)."""
        self._last_status = ""
        self.view: LiveView = state.view()
        self.repaints = 0
        """Full repaints so far (the UI benchmark reports it)."""
        self._painted_version = -1
        self.span_index = 0
        """Which of ``charts.SPANS`` the charts cover."""

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        if self.controls.read_only and self.recording is None:
            # A browser following a run; a replay says REPLAY and its time in the header.
            yield ModeBadge(id="badge")
        with Horizontal(id="main"):
            with Vertical(id="side"):
                yield QueueTable(id="queue")
            with Vertical(id="body"):
                yield LatencyPane(id="latency")
                yield ThroughputPane(id="throughput")
                with TabbedContent(id="tabs"):
                    with TabPane("Requests", id="tab-requests"):
                        yield RequestList(id="requests")
                    with TabPane("Results", id="tab-results"):
                        yield ResultsTable(id="results")
                    with TabPane("Ladder", id="tab-ladder"), VerticalScroll():
                        yield LadderPane(id="ladder")
                    with TabPane("Latency", id="tab-latency"):
                        yield LatencyTable(id="latency-table")
                    with TabPane("Notices", id="tab-notices"):
                        yield Log(id="notices", max_lines=500)
        yield SystemPane(id="system")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#queue").border_title = "Scenarios"
        self.query_one("#latency").border_title = "Latency per request"
        self.query_one("#throughput").border_title = "Throughput"
        self._title_panes()
        self.query_one("#queue").focus()
        # Tab goes from the queue straight to the list under the tabs; `t` switches tabs.
        self.query_one("#tabs").query_one(Tabs).can_focus = False
        # Held, not queried per tick: a tick can come while a modal screen is on top, or
        # while the app is shutting down and the main screen's widgets are gone.
        self._header = self.query_one(HeaderBar)
        self._panes: tuple[_Pane, ...] = (
            self._header,
            self.query_one(LatencyPane),
            self.query_one(ThroughputPane),
            self.query_one(SystemPane),
            self.query_one(QueueTable),
            self.query_one(RequestList),
            self.query_one(ResultsTable),
            self.query_one(LadderPane),
            self.query_one(LatencyTable),
        )
        if self.recording is not None:
            self._header.replay = (self.cursor_s, self.recording.duration_s)
        # Not ``_log``: that name is App._log, the writer Textual's own logging calls.
        self._notices = self.query_one("#notices", Log)
        self._queue_table = self.query_one(QueueTable)
        self._requests = self.query_one(RequestList)
        self._show_badge()
        self.repaint()
        self.set_interval(1 / REPAINT_HZ, self.repaint)
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.action_quit_now)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            pass

    def _title_panes(self) -> None:
        """Pane titles that say what the charts cover (they change with ``w``)."""
        span = SPANS[self.span_index].label
        self.query_one(
            "#system"
        ).border_title = (
            f"GPUs and host (history: {span}; util 0-100 %, VRAM 0-installed, power 0-limit)"
        )
        self.query_one("#latency").border_title = f"Latency per request ({span})"
        self.query_one("#throughput").border_title = f"Throughput ({span})"

    # -- painting --

    def repaint(self) -> None:
        """Take the current view and paint every pane from it."""
        header = self._header
        if not header.is_attached:  # shutting down
            return
        version = self.state.version
        if version == self._painted_version:
            # Nothing new: only the clock moved, and copying the view would be wasted work.
            view = self.view = replace(self.view, elapsed_s=self.state.elapsed_s())
            header.paint(view)
        else:
            view = self.view = self.state.view()
            self._painted_version = version
            self.repaints += 1
            with self.batch_update():
                for pane in self._panes:
                    pane.paint(view)
        self._announce(view)
        if view.summary is not None:
            if self._quitting:
                self.exit(self.exit_code_of(view))
            elif self.close_when_done and self._exit_at is None:
                # Let the end be seen, then make way for the matrix's next configuration.
                self._exit_at = time.monotonic() + CLOSE_AFTER_S
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.exit(self.exit_code_of(view) if view.summary is not None else 130)

    def _announce(self, view: LiveView) -> None:
        """Notices and the run's end as notifications, and into the Notices tab."""
        new = min(max(0, view.notices_total - self._notices_seen), len(view.notices))
        # A replay shows its notices in the tab only: toasts would pop again at every scrub.
        quiet = self.recording is not None
        # A hidden tab has no width yet: wrap for the width it will have beside the queue.
        width = max(40, self._notices.size.width or self.size.width - 34)
        for level, message in view.notices[len(view.notices) - new :]:
            # Wrapped here: the Log widget cuts long lines at its edge.
            lines = textwrap.wrap(f"[{level}] {message}", width - 1, subsequent_indent="  ")
            self._notices.write_lines(lines)
            if not message.endswith(NO_GPU) and not quiet:  # the GPU pane says that one
                self.notify(message, severity=NOTICE_SEVERITY.get(level, "information"), timeout=8)
        self._notices_seen = view.notices_total
        if view.summary is not None and self._last_status != view.status and not quiet:
            summary = view.summary
            if summary.status == "failed":
                self.notify(f"run failed: {summary.error}", severity="error", timeout=30)
            else:
                self.notify(f"run {summary.status}: results in {view.results_dir}", timeout=10)
        self._last_status = view.status

    @staticmethod
    def exit_code_of(view: LiveView) -> int:
        """The run's exit code (0, 1 or 130), or 0 when it never ran."""
        return view.summary.exit_code if view.summary is not None else 0

    # -- actions --

    @property
    def run_active(self) -> bool:
        return not self.controls.read_only and self.view.summary is None

    @property
    def idle(self) -> bool:
        """The run is waiting for scenarios: nothing runs and nothing is queued."""
        busy = (EntryStatus.RUNNING, EntryStatus.QUEUED)
        return self.view.status != "starting" and not any(e.status in busy for e in self.view.queue)

    def _selected(self) -> int | None:
        return self._queue_table.selected_entry()

    def _live_only(self) -> bool:
        if self.run_active:
            return True
        self.notify(
            "nothing to control: this run has ended"
            if not self.controls.read_only
            else self.controls.read_only_reason,
            severity="warning",
        )
        return False

    def on_queue_table_switch_asked(self, event: QueueTable.SwitchAsked) -> None:
        self.action_switch()

    def on_request_list_opened(self, event: RequestList.Opened) -> None:
        self.push_screen(RecordScreen(event.record))

    def action_switch(self) -> None:
        entry = self._selected()
        if entry is not None and self._live_only():
            self.controls.switch_to(entry)

    def action_next_profile(self) -> None:
        if self._live_only():
            self.controls.next_profile()

    def action_toggle_pause(self) -> None:
        if self._live_only():
            self.controls.set_paused(self.view.status != "paused")

    def action_add_profile(self) -> None:
        if self._live_only():
            self.push_screen(ProfilePicker(), self._added)

    def _added(self, profile: Profile | None) -> None:
        if profile is not None:
            self.controls.add_profile(profile)
            self.notify(f"queued {profile.name}")

    def action_remove_entry(self) -> None:
        entry = self._selected()
        if entry is not None and self._live_only():
            self.controls.remove_entry(entry)

    def action_rerun(self) -> None:
        entry = self._selected()
        if entry is not None and self._live_only():
            self.controls.rerun(entry)

    def action_stop_run(self) -> None:
        if self._live_only():
            self.controls.end_run()
            self.notify("stopping: in-flight requests finish, then the summary is written")

    def action_compare(self) -> None:
        """Pick another run under the results folder; compare it (A) with this one (B)."""
        if not self.view.results_dir:
            self.notify("no results folder yet", severity="warning")
            return
        pick_and_compare(self, Path(self.view.results_dir))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure becomes a notification, never a crash."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.notify(
                f"{event.worker.name} failed: {type(error).__name__}: {error}",
                severity="error",
                timeout=15,
            )

    def action_next_tab(self) -> None:
        """Requests -> Results -> Ladder -> Latency -> Notices -> Requests."""
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = TABS[(TABS.index(tabs.active) + 1) % len(TABS)]

    def action_next_span(self) -> None:
        """Charts over 1 min -> 10 min -> the whole run -> 1 min."""
        self.span_index = (self.span_index + 1) % len(SPANS)
        for pane in self.query(TextPane):
            pane.span = SPANS[self.span_index]
            pane.redraw()
        self._title_panes()
        self.notify(f"charts cover {SPANS[self.span_index].label}", timeout=2)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        if not self.run_active:
            self.exit(self.exit_code_of(self.view))
            return
        if self.idle:
            self._quitting = True
            self.controls.end_run()
            return
        self.push_screen(
            ConfirmScreen(
                "A run is going. Stop it and quit? In-flight requests "
                "are recorded as cancelled; results are kept."
            ),
            self._confirmed_quit,
        )

    def _confirmed_quit(self, yes: bool | None) -> None:
        if yes:
            self.action_quit_now()

    def action_quit_now(self) -> None:
        """Interrupt the run, wait for its summary to be written, then exit."""
        if not self.run_active:
            self.exit(self.exit_code_of(self.view))
            return
        self._quitting = True
        self.controls.interrupt()
        self.notify("stopping the run and saving results...", timeout=QUIT_WAIT_S)
        self._exit_at = time.monotonic() + QUIT_WAIT_S

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Scrub keys exist only in a replay; run controls only where there is a run."""
        if action in ("scrub", "scrub_end"):
            return self.recording is not None
        if action in LIVE_ACTIONS:
            return not self.controls.read_only
        return True

    def action_scrub(self, direction: int) -> None:
        assert self.recording is not None
        step = self.recording.duration_s / self.SCRUB_STEPS
        self._scrub_to(self.cursor_s + direction * step)

    def action_scrub_end(self) -> None:
        assert self.recording is not None
        self._scrub_to(self.recording.duration_s)

    def _scrub_to(self, t_s: float) -> None:
        """Show the replayed run as it stood at ``t_s``; tables restart from that state."""
        assert self.recording is not None
        self.cursor_s = on_grid(t_s, self.recording.duration_s, self.SCRUB_STEPS)
        self.state = state_at(self.recording, self.cursor_s)
        self._header.replay = (self.cursor_s, self.recording.duration_s)
        self._painted_version = -1
        self._requests.clear()
        self._show_badge()
        self.repaint()

    def _show_badge(self) -> None:
        if self.controls.read_only and self.recording is None:
            badge = self.query_one(ModeBadge)
            badge.show(self.controls, self.recording, self.cursor_s, self.SCRUB_STEPS)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from palette_commands(self, super().get_system_commands(screen))

    async def action_quit(self) -> None:
        """Textual's own quit (Ctrl+Q, the palette) asks first too, as ``q`` does."""
        self.action_quit_app()

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Save the screen as SVG in the run's folder and say where (``palette``)."""
        save_screenshot(
            self, Path(path) if path else screenshot_folder(self.view.results_dir), filename
        )


def make_app(
    state: LiveState,
    controls: Controls,
    *,
    title: str = "llmtop",
    recording: RecordedRun | None = None,
    close_when_done: bool = False,
) -> LlmtopApp:
    """Build the app with its state and controls injected (used by run, replay and tests)."""
    return LlmtopApp(
        state, controls, title=title, recording=recording, close_when_done=close_when_done
    )
