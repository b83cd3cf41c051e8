"""A run with the live UI: the Textual app here, the engine in a child process
(tui/live/engine_process.py), a managed server watched from here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.console import Console

from engine.errors import ExitCode, RunError
from engine.metrics.summary import RunSummary
from engine.servers.process import EXIT_POLL_S, ServerProcess
from tui.console.reporter import print_after_screen
from tui.live.app import QUIT_WAIT_S, LlmtopApp, make_app
from tui.live.engine_process import EngineJob, EngineProcess
from tui.live.state import LiveState


class EngineEnded(RunError):
    """The engine's process ended without a summary: one line, and its exit code when it is
    one of llmtop's (a results folder that could not be written is 3), else 1."""

    def __init__(self, message: str | None, exit_code: int | None) -> None:
        super().__init__(message or "the engine ended without a summary")
        codes = {int(code) for code in ExitCode}
        self.exit_code = ExitCode(exit_code) if exit_code in codes else ExitCode.FAILED


@dataclass
class LiveRun:
    """The pieces of a live run: the app and the engine's process."""

    app: LlmtopApp
    engine: EngineProcess

    def finish(self) -> RunSummary:
        """After the app has ended: make sure the run has ended too; return its summary.

        If the app ended without the run ending (an exception, a closed terminal), in-flight
        requests are recorded as cancelled and the summary is still written.
        """
        if self.engine.running:
            self.engine.interrupt()
            if not self.engine.join(QUIT_WAIT_S):
                self.engine.kill()
                self.engine.join(QUIT_WAIT_S)
        if self.engine.summary is None:
            raise EngineEnded(self.engine.error, self.engine.exit_code)
        return self.engine.summary


def start_live(
    job: EngineJob,
    server: ServerProcess | None = None,
    *,
    close_when_done: bool = False,
    notice: str | None = None,
) -> LiveRun:
    """Start the engine's process and build the screen that follows it; with
    ``close_when_done`` the screen closes by itself a few seconds after the run ends;
    ``notice`` pops up when the screen opens.
    """
    state = LiveState()
    state.set_slo(job.config.slo)
    engine = EngineProcess(job, state)
    app = make_app(
        state,
        engine,
        title=f"{job.config.url} {job.config.model}",
        close_when_done=close_when_done,
    )
    if notice is not None:
        app.notify(notice, timeout=20)
    engine.start()
    if server is not None:
        threading.Thread(
            target=_watch, args=(server, engine), name="llmtop-server-watch", daemon=True
        ).start()
    return LiveRun(app, engine)


def _watch(server: ServerProcess, engine: EngineProcess) -> None:
    """Tell the engine when the server it measures exits (its code and log tail saved)."""
    while engine.running:
        time.sleep(EXIT_POLL_S)
        report = server.exit_report()
        if report is not None:
            engine.server_exited(*report)
            return


def run_live(
    job: EngineJob,
    server: ServerProcess | None,
    *,
    close_when_done: bool = False,
    notice: str | None = None,
) -> RunSummary:
    """Show the run live until the person quits; the summary is printed after the screen."""
    live = start_live(job, server, close_when_done=close_when_done, notice=notice)
    try:
        live.app.run()
    finally:
        summary = live.finish()
    print_after_screen(Console(stderr=True), summary)
    return summary
