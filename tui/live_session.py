"""A run with the live UI: the engine on its own thread, the Textual app on the main one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.console import Console

from engine.runner import Engine
from engine.sinks import ThreadedSink
from engine.summary import RunSummary
from tui.app import QUIT_WAIT_S, LlmtopApp, make_app
from tui.controls import EngineThread
from tui.headless import print_run_summary
from tui.live import LiveState


@dataclass
class LiveRun:
    """The pieces of a live run: the app, the engine's thread, the sink between them."""

    app: LlmtopApp
    thread: EngineThread
    sink: ThreadedSink

    def finish(self) -> RunSummary:
        """After the app has ended: make sure the run has ended too, and return its summary.

        If the app ended without the run ending (an exception, a closed terminal), in-flight
        requests are recorded as cancelled and the summary is still written.
        """
        if self.thread.running:
            self.thread.interrupt()
            self.thread.join(QUIT_WAIT_S)
        self.sink.close()
        if self.thread.error is not None:
            raise self.thread.error
        summary = self.thread.summary
        assert summary is not None, "the engine thread ended without a summary"
        return summary


def start_live(engine: Engine,
               drive: Callable[[Engine], Awaitable[RunSummary]] | None = None) -> LiveRun:
    """Subscribe a ``LiveState`` to the engine's events and start the engine's thread."""
    state = LiveState()
    state.set_slo(engine.config.slo)
    sink = ThreadedSink(state)
    engine.bus.subscribe(sink)
    thread = EngineThread(engine, drive)
    app = make_app(state, thread, title=f"{engine.config.url} {engine.config.model}")
    thread.start()
    return LiveRun(app, thread, sink)


def run_live(engine: Engine, drive: Callable[[Engine], Awaitable[RunSummary]]) -> RunSummary:
    """Show the run live until the person quits; the summary is printed after the screen."""
    live = start_live(engine, drive)
    try:
        live.app.run()
    finally:
        summary = live.finish()
    print_run_summary(Console(stderr=True), summary)
    return summary
