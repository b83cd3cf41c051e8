"""A run with the live UI: the engine on its own thread, the Textual app on the main one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.console import Console

from engine.runner import Engine
from engine.sinks import ThreadedSink
from engine.summary import RunSummary
from tui.app import QUIT_WAIT_S, make_app
from tui.controls import EngineThread
from tui.headless import print_run_summary
from tui.live import LiveState


def run_live(engine: Engine, drive: Callable[[Engine], Awaitable[RunSummary]]) -> RunSummary:
    """Show the run live until the person quits; the summary is printed after the screen."""
    state = LiveState()
    state.set_slo(engine.config.slo)
    sink = ThreadedSink(state)
    engine.bus.subscribe(sink)
    thread = EngineThread(engine, drive)
    app = make_app(state, thread, title=f"{engine.config.url} {engine.config.model}")
    thread.start()
    try:
        app.run()
    finally:
        if thread.running:
            # The app ended without the run ending (an exception, a closed terminal): the
            # in-flight requests are recorded as cancelled and the summary is still written.
            thread.interrupt()
            thread.join(QUIT_WAIT_S)
        sink.close()
    if thread.error is not None:
        raise thread.error
    summary = thread.summary
    assert summary is not None, "the engine thread ended without a summary"
    print_run_summary(Console(stderr=True), summary)
    return summary
