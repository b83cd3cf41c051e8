"""``llmtop run``: the profiles to run, the servers to run them against (given, embedded, or
started from ``--server-cmd``, one configuration after another), and the side-by-side table
of a configuration matrix. Measuring one server is tui/commands/measure.py.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ExitCode, InputError, RunError
from engine.metrics.summary import RunSummary
from engine.redact import redact_argv
from engine.results.layout import RUN_FILE, SERVER_LOG, new_run_id
from engine.results.writer import write_json_atomic
from engine.servers.matrix import ServerConfig, expand, gpu_count
from engine.servers.process import ServerProcess, llama_server
from engine.workload.profile import Profile, load_profile, validate_profile
from engine.workload.prompt_files import load_prompts
from engine.workload.suite import load_suite
from tui.commands.clean import warn_stale
from tui.commands.output import writable_folder
from tui.console.reporter import print_matrix
from tui.options import DEFAULT_PROFILE, RunOptions
from tui.web.session import WebView


@dataclass
class Outcome:
    """What one configuration's run produced, for the matrix table."""

    label: str
    exit_code: int
    summary: RunSummary | None
    """``None`` when the run could not start."""
    run_dir: Path | None


def run_command(options: RunOptions) -> int:
    """Resolve the profiles, then dry-run them or run them against each server."""
    profiles = resolve_profiles(options)
    if options.dry_run:
        from tui.commands.dry_run import dry_run

        return dry_run(profiles)
    return run_session(options, profiles)


def resolve_profiles(options: RunOptions) -> list[Profile]:
    """Load the suites and profiles (or the default) and apply the command line's overrides.

    The command line's load and stop rule replace the profile's: ``--rate`` clears
    ``concurrency`` (and the reverse); ``--duration`` without ``--requests`` runs until the
    duration, ``--requests`` without ``--duration`` until the count, both until the first.
    """
    overrides = dict(options.overrides)
    if "rate_rps" in overrides:
        overrides["concurrency"] = None
    elif "concurrency" in overrides:
        overrides["rate_rps"] = None
    # Without this, `--rate 5 --duration 60` stopped after the default profile's 24 requests
    # (about 5 s): a profile's own count or duration must not cut short the one asked for.
    if "duration_s" in overrides and "requests" not in overrides:
        overrides["requests"] = None
    elif "requests" in overrides and "duration_s" not in overrides:
        overrides["duration_s"] = None
    if options.profiles or options.suites:
        profiles = [p for ref in options.suites for p in load_suite(ref).expand()]
        profiles += [load_profile(ref) for ref in options.profiles]
    else:
        default = load_profile(DEFAULT_PROFILE)
        if overrides:
            default = default.model_copy(
                update={"name": "adhoc", "description": "ad-hoc scenario from the command line"}
            )
        profiles = [default]
    if overrides:
        profiles = [
            validate_profile(
                {**p.model_dump(exclude_unset=True), **overrides},
                f"profile '{p.name}' with command-line options",
            )
            for p in profiles
        ]
    for profile in profiles:
        if profile.prompt_file:
            load_prompts(profile.prompt_file)  # a bad file is bad input, found up front
    return profiles


def pause_between(options: RunOptions) -> float:
    """--pause-between, else the largest pause of the suites given, else 0."""
    if options.pause_between_s is not None:
        return options.pause_between_s
    return max((load_suite(ref).pause_between_s for ref in options.suites), default=0.0)


def run_meta(options: RunOptions) -> dict[str, Any]:
    """The options and host facts for run.json; the API key and the URL's password are
    never included, only whether they were given."""
    return {
        "options": options.record(),
        "api_key_given": options.api_key is not None,
        "basic_auth_given": options.basic_auth is not None,
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
    }


def run_session(options: RunOptions, profiles: list[Profile]) -> int:
    """Run the profiles against each server configuration; returns the exit code."""
    # Before a server starts or a request is sent: a run whose results cannot be kept is
    # time (and GPU hours) lost.
    writable_folder(options.output, "--output")
    # A server an earlier llmtop left running holds GPU memory this run would measure without.
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    warn_stale(options.output, options.server_grace_s, interactive)
    plan = _Plan(profiles, pause_between(options), run_meta(options))
    configs = (
        expand(list(options.server_commands), options.url, options.gpus or gpu_count())
        if options.server_commands
        else []
    )
    if not options.web:
        return _run_all(options, plan, configs, web=None)
    if len(configs) > 1:
        raise InputError(
            f"--web shows one run, and these server commands make {len(configs)} "
            "configurations: run them one at a time, or without --web"
        )
    from tui.web.session import follow_command, serve_view, wait_until_told

    with serve_view(follow_command, options.web_host, options.web_port) as view:
        code = _run_all(options, plan, configs, web=view)
        # The end stays in view for the browsers, unless the terminal's screen showed it,
        # the person stopped llmtop (Ctrl+C, SIGTERM), or no run started to be seen.
        started = view.relay.stat().st_size > 0
        if not options.ui and code != ExitCode.INTERRUPTED and started:
            wait_until_told(
                f"the run has ended (exit code {code}); its screen stays at {view.url} until Ctrl+C"
            )
    return code


def _run_all(
    options: RunOptions, plan: _Plan, configs: list[ServerConfig], web: WebView | None
) -> int:
    """Each configuration in turn (or the one server); the matrix table when there are
    several; returns the session's exit code."""
    if not configs:
        return run_one(options, plan, options.url, None, web=web).exit_code
    outcomes: list[Outcome] = []
    for number, config in enumerate(configs, 1):
        if len(configs) > 1:
            print(f"\n=== configuration {number}/{len(configs)}: {config.label}", file=sys.stderr)
        outcome = run_one(options, plan, config.url, config, one_of_many=len(configs) > 1, web=web)
        outcomes.append(outcome)
        if outcome.exit_code == ExitCode.INTERRUPTED:
            break
    if len(configs) > 1:
        print_matrix(outcomes)
        _write_matrix(options.output, outcomes)
    codes = {o.exit_code for o in outcomes}
    if ExitCode.INTERRUPTED in codes:
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED if codes - {ExitCode.OK} else ExitCode.OK


@dataclass(frozen=True)
class _Plan:
    """What every configuration of a session measures, worked out once."""

    profiles: list[Profile]
    pause_between_s: float
    meta: dict[str, Any]


def run_one(
    options: RunOptions,
    plan: _Plan,
    url: str | None,
    config: ServerConfig | None,
    one_of_many: bool = False,
    web: WebView | None = None,
) -> Outcome:
    """Start the server if llmtop manages one, measure, stop it.

    ``one_of_many``: a configuration of a matrix. The live screen then ends with the run
    instead of waiting for more scenarios, so the next configuration can start; a
    configuration that cannot start is an outcome of the matrix, not the end of it.
    ``web``: the browsers' view (``--web``), whose relay file the engine also writes to.
    """
    from tui.commands.measure import measure

    label = config.label if config else (url or "embedded")
    run_id = new_run_id()
    run_dir = options.output / run_id
    server: ServerProcess | None = None
    try:
        if config is not None:
            server = ServerProcess(
                config.argv,
                config.url,
                run_dir / SERVER_LOG,
                shell=options.server_shell,
                grace_s=options.server_grace_s,
                command_line=config.command_line,
            )
        elif url is None:
            server = llama_server(
                run_dir / SERVER_LOG,
                parallel=options.local_parallel,
                grace_s=options.server_grace_s,
            )
        if server is not None:
            print(f"starting server: {' '.join(redact_argv(server.argv))}", file=sys.stderr)
            server.start(ready_timeout_s=options.server_ready_timeout_s)
            print(
                f"server ready in {server.startup_s:.1f} s at {server.url} "
                f"(pid {server.pid}, log {server.log_path})",
                file=sys.stderr,
            )
            url = server.url
        assert url is not None
        summary = measure(
            options,
            plan.profiles,
            url,
            run_id,
            server,
            pause_between_s=plan.pause_between_s,
            meta=plan.meta,
            interactive=not one_of_many,
            web=web,
        )
    except RunError as exc:
        print(f"llmtop: {exc}", file=sys.stderr)
        return Outcome(label, ExitCode.FAILED, None, None)
    finally:
        if server is not None:
            code = server.stop()
            print(f"server stopped (exit code {code})", file=sys.stderr)
            if (run_dir / RUN_FILE).exists():
                _record_server_exit(run_dir, server)
    code = ExitCode.INTERRUPTED if summary.status == "interrupted" else summary.exit_code
    return Outcome(label, code, summary, run_dir)


def _record_server_exit(run_dir: Path, server: ServerProcess) -> None:
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
