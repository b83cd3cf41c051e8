"""One headless ``llmtop run``: servers (given, embedded or started from --server-cmd),
detection, engine, console, and the side-by-side table of a configuration matrix.

Kept apart from argument parsing so the Textual UI can reuse the same steps later.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.events import EventBus
from engine.http.detect import ServerInfo, ServerUnreachable, detect
from engine.http.features import probe_features
from engine.metrics.summary import RunSummary, Slo
from engine.results.writer import RUN_FILE, new_run_id, write_json_atomic
from engine.run.engine import Engine, RunConfig
from engine.run.sinks import ThreadedSink
from engine.servers.matrix import ServerCommandError, ServerConfig, expand, gpu_count
from engine.servers.process import (
    EXIT_POLL_S,
    LocalServerMissing,
    ServerProcess,
    ServerStartError,
    llama_server,
)
from engine.telemetry.host import pid_listening_on
from engine.telemetry.sampler import Telemetry
from engine.workload.profile import Profile
from tui.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    install_signal_handlers,
    pause_between,
    run_meta,
)
from tui.console.reporter import ConsoleReporter, print_matrix


@dataclass
class Outcome:
    """What one configuration's run produced, for the matrix table."""

    label: str
    exit_code: int
    summary: RunSummary | None
    run_dir: Path | None


def run_session(
    args: argparse.Namespace, profiles: list[Profile], url: str | None, api_key: str | None
) -> int:
    """Run the profiles against each server configuration; returns the exit code."""
    if not args.server_cmd:
        return run_one(args, profiles, url, api_key, None).exit_code
    try:
        configs = expand(args.server_cmd, url, args.gpus if args.gpus else gpu_count())
    except ServerCommandError as exc:
        raise UsageError(str(exc)) from None
    outcomes: list[Outcome] = []
    for number, config in enumerate(configs, 1):
        if len(configs) > 1:
            print(f"\n=== configuration {number}/{len(configs)}: {config.label}", file=sys.stderr)
        outcome = run_one(args, profiles, config.url, api_key, config, one_of_many=len(configs) > 1)
        outcomes.append(outcome)
        if outcome.exit_code == EXIT_INTERRUPTED:
            break
    if len(configs) > 1:
        print_matrix(outcomes)
        _write_matrix(args.output, outcomes)
    codes = {o.exit_code for o in outcomes}
    return (
        EXIT_INTERRUPTED
        if EXIT_INTERRUPTED in codes
        else EXIT_FAILED
        if codes - {EXIT_OK}
        else EXIT_OK
    )


def run_one(
    args: argparse.Namespace,
    profiles: list[Profile],
    url: str | None,
    api_key: str | None,
    config: ServerConfig | None,
    one_of_many: bool = False,
) -> Outcome:
    """Start the server if llmtop manages one, measure, stop it.

    ``one_of_many``: a configuration of a matrix. The live screen then ends with the run
    instead of waiting for more scenarios, so the next configuration can start.
    """
    label = config.label if config else (url or "embedded")
    run_id = new_run_id()
    run_dir: Path = args.output / run_id
    server: ServerProcess | None = None
    try:
        if config is not None:
            server = ServerProcess(
                config.argv, config.url, run_dir / "server.log", shell=args.server_shell
            )
        elif url is None:
            server = llama_server(run_dir / "server.log", parallel=args.local_parallel)
        if server is not None:
            print(f"starting server: {' '.join(server.argv)}", file=sys.stderr)
            server.start(ready_timeout_s=args.server_ready_timeout)
            print(
                f"server ready in {server.startup_s:.1f} s at {server.url} "
                f"(pid {server.pid}, log {server.log_path})",
                file=sys.stderr,
            )
            url = server.url
        assert url is not None
        summary = _measure(
            args, profiles, url, api_key, run_id, server, interactive=not one_of_many
        )
    except (LocalServerMissing, ServerStartError, ServerUnreachable) as exc:
        print(f"llmtop: {exc}", file=sys.stderr)
        return Outcome(label, EXIT_FAILED, None, None)
    finally:
        if server is not None:
            code = server.stop(grace_s=args.server_grace)
            print(f"server stopped (exit code {code})", file=sys.stderr)
            if (run_dir / RUN_FILE).exists():
                _record_server_exit(run_dir, server)
    code = EXIT_INTERRUPTED if summary.status == "interrupted" else summary.exit_code
    return Outcome(label, code, summary, run_dir)


def _measure(
    args: argparse.Namespace,
    profiles: list[Profile],
    url: str,
    api_key: str | None,
    run_id: str,
    server: ServerProcess | None,
    *,
    interactive: bool,
) -> RunSummary:
    info = asyncio.run(detect(url, api_key))
    model = _choose_model(args.model, info)
    meta = run_meta(args)
    meta["server"] = info.as_dict()
    features = None
    if not args.no_probe:
        features = asyncio.run(probe_features(url, model, api_key)).as_dict()
        meta["server"]["features"] = features
    if server is not None:
        meta["server_process"] = server.info()
    config = RunConfig(
        url=url,
        model=model,
        profiles=profiles,
        results_root=args.output,
        api_key=api_key,
        slo=Slo(ttft_s=args.slo_ttft, tpot_s=args.slo_tpot),
        save_itl=args.save_itl,
        connect_timeout_s=args.connect_timeout,
        stall_timeout_s=args.stall_timeout,
        server_kind=info.kind,
        run_meta=meta,
        pause_between_profiles_s=pause_between(args),
        features=features,
        calibrate_prompts=not args.no_probe,
        hold_open=use_ui(args) and interactive,
    )
    telemetry = {
        "rate_hz": args.sample_hz,
        "server_url": url,
        "server_pid": _server_pid(args, url, server),
        "ollama": info.kind == "ollama",
    }
    if use_ui(args):
        from tui.live.engine_process import EngineJob
        from tui.live.session import run_live

        job = EngineJob(
            config.model_dump(),
            api_key,
            run_id,
            telemetry,
            server.info() if server is not None else None,
        )
        return run_live(job, server, close_when_done=not interactive)
    bus = EventBus()
    engine = Engine(config, bus, run_id=run_id)
    engine.telemetry = Telemetry(bus, engine.origin_ns, engine.run_dir, **telemetry)
    if server is not None:
        engine.server_info = server.info()
        engine.server_check = lambda: _server_gone(server, engine)
    console = ThreadedSink(ConsoleReporter())
    bus.subscribe(console)
    try:
        return _run_headless(engine, server is not None)
    finally:
        console.close()


def use_ui(args: argparse.Namespace) -> bool:
    """The live UI, unless --no-ui was given or there is no terminal to draw on."""
    return not args.no_ui and sys.stdin.isatty() and sys.stdout.isatty()


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


def _server_gone(server: ServerProcess, engine: Engine) -> str | None:
    """Why the run must end if the server process has exited (its code and log tail saved)."""
    report = server.exit_report()
    if report is None:
        return None
    info, reason = report
    engine.server_info = {**(engine.server_info or {}), **info}
    return reason


def _server_pid(args: argparse.Namespace, url: str, server: ServerProcess | None) -> int | None:
    """The local server's PID: started by llmtop, given, or found by the port it listens on."""
    if server is not None:
        return server.pid
    if args.server_pid is not None:
        return int(args.server_pid)
    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.port:
        return pid_listening_on(parts.port)
    return None


def _record_server_exit(run_dir: Path, server: ServerProcess) -> None:
    import json

    path = run_dir / RUN_FILE
    meta = json.loads(path.read_text())
    meta["server_process"] = {**server.info(), "stopped_unix_s": time.time()}
    write_json_atomic(path, meta)


def _write_matrix(root: Path, outcomes: list[Outcome]) -> None:
    path = root / f"matrix-{new_run_id()}.json"
    write_json_atomic(
        path,
        [
            {
                "label": o.label,
                "exit_code": o.exit_code,
                "run_dir": str(o.run_dir) if o.run_dir else None,
            }
            for o in outcomes
        ],
    )
    print(f"matrix: {path}", file=sys.stderr)


def _choose_model(requested: str | None, info: ServerInfo) -> str:
    if requested is None:
        if not info.models:
            raise UsageError(f"{info.url} lists no models; pass --model NAME")
        return info.models[0]
    if info.models and requested not in info.models:
        hint = ""
        if info.kind == "ollama" or any(":" in m for m in info.models):
            hint = " (Ollama names models like 'qwen3:0.6b', not 'Qwen/Qwen3-0.6B')"
        raise UsageError(
            f"model '{requested}' is not served at {info.url}; served: "
            f"{', '.join(info.models)}{hint}"
        )
    return requested
