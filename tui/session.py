"""One headless ``llmtop run``: server (given or embedded), detection, engine, console.

Kept apart from argument parsing so the Textual UI can reuse the same steps later.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from engine.detect import ServerInfo, ServerUnreachable, detect
from engine.events import EventBus
from engine.profile import Profile
from engine.results import new_run_id
from engine.runner import Engine, RunConfig
from engine.server_process import LocalServerMissing, ServerProcess, ServerStartError, llama_server
from engine.sinks import ThreadedSink
from engine.summary import Slo
from tui.cli import EXIT_FAILED, EXIT_INTERRUPTED, UsageError, install_signal_handlers, run_meta
from tui.headless import ConsoleReporter


def run_session(args: argparse.Namespace, profiles: list[Profile], url: str | None,
                api_key: str | None) -> int:
    """Run the profiles; returns the process exit code."""
    run_id = new_run_id()
    run_dir: Path = args.output / run_id
    server: ServerProcess | None = None
    try:
        if url is None:
            try:
                server = llama_server(run_dir / "server.log", parallel=args.local_parallel)
                print(f"starting embedded llama-server: {' '.join(server.argv)}",
                      file=sys.stderr)
                server.start()
            except (LocalServerMissing, ServerStartError) as exc:
                print(f"llmtop: {exc}", file=sys.stderr)
                return EXIT_FAILED
            url = server.url
        return _measure(args, profiles, url, api_key, run_id, server)
    finally:
        if server is not None:
            code = server.stop()
            print(f"embedded llama-server stopped (exit code {code})", file=sys.stderr)


def _measure(args: argparse.Namespace, profiles: list[Profile], url: str, api_key: str | None,
             run_id: str, server: ServerProcess | None) -> int:
    try:
        info = asyncio.run(detect(url, api_key))
    except ServerUnreachable as exc:
        print(f"llmtop: {exc}", file=sys.stderr)
        return EXIT_FAILED
    model = _choose_model(args.model, info)
    meta = run_meta(args)
    meta["server"] = info.as_dict()
    if server is not None:
        meta["embedded_server"] = {"argv": server.argv, "pid": server.pid,
                                   "startup_s": server.startup_s}
    config = RunConfig(
        url=url, model=model, profiles=profiles, results_root=args.output, api_key=api_key,
        slo=Slo(ttft_s=args.slo_ttft, tpot_s=args.slo_tpot), save_itl=args.save_itl,
        connect_timeout_s=args.connect_timeout, stall_timeout_s=args.stall_timeout,
        server_kind=info.kind, run_meta=meta)
    bus = EventBus()
    console = ThreadedSink(ConsoleReporter())
    bus.subscribe(console)
    engine = Engine(config, bus, run_id=run_id)
    try:
        summary = _run_engine(engine)
    finally:
        console.close()
    return EXIT_INTERRUPTED if summary.status == "interrupted" else summary.exit_code


def _run_engine(engine: Engine):  # noqa: ANN202 - RunSummary
    async def main():  # noqa: ANN202
        install_signal_handlers(asyncio.get_running_loop(), engine.interrupt)
        return await engine.run()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(main())
    return uvloop.run(main())


def _choose_model(requested: str | None, info: ServerInfo) -> str:
    if requested is None:
        if not info.models:
            raise UsageError(f"{info.url} lists no models; pass --model NAME")
        return info.models[0]
    if info.models and requested not in info.models:
        hint = ""
        if info.kind == "ollama" or any(":" in m for m in info.models):
            hint = " (Ollama names models like 'qwen3:0.6b', not 'Qwen/Qwen3-0.6B')"
        raise UsageError(f"model '{requested}' is not served at {info.url}; served: "
                         f"{', '.join(info.models)}{hint}")
    return requested
