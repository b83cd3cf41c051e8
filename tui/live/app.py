"""The live monitor: a Textual app painting a ``LiveState`` and driving a run's ``Controls``.

Data rate and paint rate are separate: events fold into ``LiveState`` on the sink's thread;
this app takes a ``LiveView`` on a timer (``REPAINT_HZ``) and never sees a token or a chunk.
``make_app`` builds it with its dependencies injected, so tests and ``llmtop replay`` reuse it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Log, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from engine.telemetry.gpu import NO_GPU
from engine.workload.profile import Profile
from engine.workload.queue import EntryStatus
from tui.live.controls import Controls
from tui.live.palette import screenshot_folder
from tui.live.replay import on_grid, state_at
from tui.live.screens.compare import CompareScreen, RunPicker
from tui.live.screens.modals import ConfirmScreen, HelpScreen, ProfilePicker, RecordScreen
from tui.live.state import LiveState, LiveView
from tui.live.widgets.badge import ModeBadge
from tui.live.widgets.panes import (
    GpuPane,
    HeaderBar,
    LatencyPane,
    LatencyTable,
    QueueTable,
    ServerPane,
    ThroughputPane,
)
from tui.live.widgets.request_list import RequestList

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
    BINDINGS = [
        Binding("n", "next_profile", "next"),
        Binding("space", "toggle_pause", "pause"),
        Binding("a", "add_profile", "add"),
        Binding("d", "remove_entry", "remove"),
        Binding("r", "rerun", "re-run"),
        Binding("s", "stop_run", "stop"),
        Binding("q", "quit_app", "quit"),
        Binding("t", "next_tab", "tab"),
        Binding("c", "compare", "compare"),
        Binding("question_mark", "help", "help"),
        Binding("ctrl+c", "quit_now", "quit now", show=False, priority=True),
        Binding("left_square_bracket", "scrub(-1)", "back"),
        Binding("right_square_bracket", "scrub(1)", "forward"),
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

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        if self.controls.read_only:
            yield ModeBadge(id="badge")
        with Horizontal(id="main"):
            with Vertical(id="side"):
                yield QueueTable(id="queue")
                yield GpuPane(id="gpu")
                yield ServerPane(id="server")
            with Vertical(id="body"):
                yield LatencyPane(id="latency")
                yield ThroughputPane(id="throughput")
                with TabbedContent(id="tabs"):
                    with TabPane("Requests", id="tab-requests"):
                        yield RequestList(id="requests")
                    with TabPane("Latency table", id="tab-latency"):
                        yield LatencyTable(id="latency-table")
                    with TabPane("Notices", id="tab-notices"):
                        yield Log(id="notices", max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#queue").border_title = "Scenarios"
        self.query_one("#gpu").border_title = "GPU"
        self.query_one("#server").border_title = "Server"
        self.query_one("#latency").border_title = "Latency per request"
        self.query_one("#throughput").border_title = "Throughput"
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
            self.query_one(GpuPane),
            self.query_one(ServerPane),
            self.query_one(QueueTable),
            self.query_one(RequestList),
            self.query_one(LatencyTable),
        )
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

    def on_resize(self, event: object) -> None:
        self.screen.set_class(self.size.width >= WIDE_COLUMNS, "-wide")

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
        for level, message in view.notices[len(view.notices) - new :]:
            self._notices.write_line(f"[{level}] {message}")
            if not message.endswith(NO_GPU):  # the GPU pane says that one
                self.notify(message, severity=NOTICE_SEVERITY.get(level, "information"), timeout=8)
        self._notices_seen = view.notices_total
        if view.summary is not None and self._last_status != view.status:
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

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, QueueTable):
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
        from engine.results.folder import RunFolderError
        from engine.results.runs import discover_runs  # numpy behind it: loaded when first needed

        current = Path(self.view.results_dir)
        try:
            runs = sorted(discover_runs(current.parent), key=lambda p: p.name, reverse=True)
        except RunFolderError as exc:
            self.notify(str(exc), severity="error")
            return

        def chosen(other: Path | None) -> None:
            if other is not None:
                self.compare_runs(other, current)

        self.push_screen(RunPicker(runs, current), chosen)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def compare_runs(self, baseline: Path, candidate: Path) -> None:
        """Bootstrap intervals take seconds on large runs: off the UI's loop."""
        from engine.analysis.compare import compare_runs  # numpy: loaded when first needed

        self.call_from_thread(self.notify, f"comparing with {baseline.name}...")
        comparison = compare_runs([baseline, candidate])
        self.call_from_thread(self.push_screen, CompareScreen(comparison))

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
        """Requests -> Latency table -> Notices -> Requests."""
        tabs = self.query_one("#tabs", TabbedContent)
        order = ["tab-requests", "tab-latency", "tab-notices"]
        tabs.active = order[(order.index(tabs.active) + 1) % len(order)]

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

    async def action_quit(self) -> None:
        """The palette's Quit: Textual's own exits at once, leaving a run without its question."""
        self.action_quit_app()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Into the run folder (``tui.live.palette``); Textual's notice names the file."""
        folder = path or str(screenshot_folder(self.view.results_dir))
        return super().deliver_screenshot(filename, folder, time_format)

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
        self._painted_version = -1
        self._requests.clear()
        self._show_badge()
        self.repaint()

    def _show_badge(self) -> None:
        if self.controls.read_only:
            badge = self.query_one(ModeBadge)
            badge.show(self.controls, self.recording, self.cursor_s, self.SCRUB_STEPS)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in (
            (
                "Switch to the selected scenario",
                "stop the current one; run this now",
                self.action_switch,
            ),
            (
                "Next scenario",
                "stop the current scenario; the next queued one starts",
                self.action_next_profile,
            ),
            ("Pause / resume sending", "in-flight requests go on", self.action_toggle_pause),
            ("Add a scenario", "a built-in profile or a TOML file", self.action_add_profile),
            ("Remove the selected scenario", "queued ones only", self.action_remove_entry),
            ("Re-run the selected scenario", "queued next", self.action_rerun),
            ("Stop the run", "in-flight requests finish; summary written", self.action_stop_run),
            (
                "Compare with another run",
                "bootstrap intervals per profile and figure",
                self.action_compare,
            ),
            ("Keys and definitions", "the help screen", self.action_help),
        ):
            yield SystemCommand(title, help_text, action)


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
