"""One measurement against one server: detect it, probe its features, build the run's
``RunConfig`` and run the engine, headless here or in the live screen's child process.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from engine.events import EventBus
from engine.http.detect import choose_model, detect
from engine.http.features import probe_features
from engine.metrics.summary import RunSummary, Slo
from engine.run.config import RunConfig
from engine.run.engine import Engine
from engine.run.sinks import ThreadedSink
from engine.servers.process import EXIT_POLL_S, ServerProcess
from engine.telemetry.config import TelemetryConfig
from engine.telemetry.host import pid_listening_on
from engine.workload.profile import Profile
from tui.console.reporter import ConsoleReporter
from tui.options import RunOptions
from tui.web.session import WebView


def measure(
    options: RunOptions,
    profiles: list[Profile],
    url: str,
    run_id: str,
    server: ServerProcess | None,
    *,
    pause_between_s: float,
    meta: dict[str, Any],
    interactive: bool,
    web: WebView | None = None,
) -> RunSummary:
    """Measure ``profiles`` against the server at ``url``; returns the run's summary.

    ``web``: browsers follow the run (``--web``): the engine also appends its low-rate events
    to the view's relay file (``tui.web.relay``).
    """
    relay = web.relay if web is not None else None
    api_key = options.api_key.get_secret_value() if options.api_key else None
    basic_auth = options.basic_auth.get_secret_value() if options.basic_auth else None
    info = asyncio.run(detect(url, api_key, basic_auth))
    model = choose_model(options.model, info)
    meta = {**meta, "server": info.as_dict()}
    features = None
    if options.probe:
        features = asyncio.run(probe_features(url, model, api_key, basic_auth)).as_dict()
        meta["server"]["features"] = features
    process = server.info() if server is not None else None
    if process is not None:
        meta["server_process"] = process
    config = RunConfig(
        url=url,
        model=model,
        profiles=profiles,
        results_root=options.output,
        api_key=options.api_key,
        basic_auth=options.basic_auth,
        slo=Slo(ttft_s=options.slo_ttft_s, tpot_s=options.slo_tpot_s),
        save_itl=options.save_itl,
        connect_timeout_s=options.connect_timeout_s,
        outage_grace_s=options.outage_grace_s,
        stall_timeout_s=options.stall_timeout_s,
        server_kind=info.kind,
        run_meta=meta,
        pause_between_profiles_s=pause_between_s,
        features=features,
        calibrate_prompts=options.probe,
        hold_open=options.ui and interactive,
        telemetry=TelemetryConfig(
            rate_hz=options.sample_hz,
            server_url=url,
            server_pid=_server_pid(options, url, server),
            ollama=info.kind == "ollama",
        ),
        server_process=process,
        workers=options.workers,
        ray_address=options.ray_address,
    )
    if options.ui:
        from tui.live.engine_process import EngineJob
        from tui.live.session import run_live

        job = EngineJob(config, run_id, relay)
        # The URL printed before the screen opened is hidden behind it: say it there too.
        notice = f"also in a browser, read-only: {web.url}" if web is not None else None
        return run_live(job, server, close_when_done=not interactive, notice=notice)
    bus = EventBus()
    engine = Engine(config, bus, run_id=run_id, server_check=server.exit_report if server else None)
    sinks = [ThreadedSink(ConsoleReporter())]
    if relay is not None:
        from tui.web.relay import EventRelay

        # Off the measuring loop, like the console: a write never delays a chunk's timestamp.
        sinks.append(ThreadedSink(EventRelay(relay)))
    for sink in sinks:
        bus.subscribe(sink)
    try:
        return _run_headless(engine, watch=server is not None)
    finally:
        for sink in sinks:
            sink.close()


def install_signal_handlers(loop: asyncio.AbstractEventLoop, on_signal: Callable[[], None]) -> None:
    """Ctrl+C, SIGTERM and a hang-up (a closed terminal or ssh session) all end the run the
    same way: in-flight requests recorded as cancelled, the summary written."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal)


async def _drive(engine: Engine, watch: bool) -> RunSummary:
    """Run the engine, watching a managed server; Ctrl+C and SIGTERM interrupt it."""
    install_signal_handlers(asyncio.get_running_loop(), engine.interrupt)
    watcher = asyncio.create_task(_watch(engine)) if watch else None
    try:
        return await engine.run()
    finally:
        if watcher is not None:
            watcher.cancel()


def _run_headless(engine: Engine, watch: bool) -> RunSummary:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(_drive(engine, watch))
    return uvloop.run(_drive(engine, watch))


async def _watch(engine: Engine) -> None:
    """Check the managed server while requests stream (failed connections check it too)."""
    while True:
        await asyncio.sleep(EXIT_POLL_S)
        engine.check_server()


def _server_pid(options: RunOptions, url: str, server: ServerProcess | None) -> int | None:
    """The local server's PID: started by llmtop, given, or found by the port it listens on."""
    if server is not None:
        return server.pid
    if options.server_pid is not None:
        return options.server_pid
    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.port:
        return pid_listening_on(parts.port)
    return None
