"""The ``llmtop`` command line: parsing (the parser itself is tui/parser.py), the dispatch to
tui/commands/, and the one place where errors become exit codes (``engine.errors.ExitCode``).

Arguments are parsed here once into typed options (tui/options.py for ``run``, plain
keyword arguments for the other commands); nothing below this module sees argparse.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

from pydantic import SecretStr

from engine.errors import ExitCode, InputError, RunError
from engine.http.auth import remember_credentials, url_credentials
from engine.http.detect import normalize_url
from engine.redact import redact
from tui.options import URL_VARIABLES, RunOptions
from tui.parser import build_parser
from tui.web.server import DEFAULT_HOST, DEFAULT_PORT

AD_HOC_FIELDS = {
    "concurrency": "concurrency",
    "rate": "rate_rps",
    "arrival": "arrival",
    "requests": "requests",
    "duration": "duration_s",
    "warmup": "warmup_requests",
    "input_tokens": "input_tokens",
    "max_tokens": "max_tokens",
    "endpoint": "endpoint",
    "exact_output": "exact_output",
    "system_prompt": "system_prompt",
    "prompt_suffix": "prompt_suffix",
    "temperature": "temperature",
    "seed": "seed",
    "round_pause": "round_pause_s",
    "max_in_flight": "max_in_flight",
    "stop_when_saturated": "stop_when_saturated",
}
"""Command-line destinations of the ad-hoc scenario options and the profile field each sets."""
POSITIVE = {
    "slo_tpot": ("--slo-tpot", "of seconds"),
    "slo_ttft": ("--slo-ttft", "of seconds"),
    "stall_timeout": ("--stall-timeout", "of seconds"),
    "connect_timeout": ("--connect-timeout", "of seconds"),
    "outage_grace": ("--outage-grace", "of seconds"),
    "server_ready_timeout": ("--server-ready-timeout", "of seconds"),
    "server_grace": ("--server-grace", "of seconds"),
    "sample_hz": ("--sample-hz", "of samples per second"),
    "gpus": ("--gpus", "of GPUs"),
    "local_parallel": ("--local-parallel", "of slots"),
    "server_pid": ("--server-pid", "(a process id)"),
}
"""Options that must be above zero, by destination: the flag and the unit its value counts."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``llmtop`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    try:
        return int(dispatch(args))
    except InputError as exc:
        print(f"llmtop: error: {redact(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    except RunError as exc:
        print(f"llmtop: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        # Ctrl+C outside a run (server start-up, detection, a build): nothing was measured yet.
        print("llmtop: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def dispatch(args: argparse.Namespace) -> int:
    """Run the sub-command ``args`` names; each is imported only when it is the one asked for
    (so ``--no-ui`` never loads textual)."""
    if args.version:
        from tui.commands.about import version_command

        return version_command()
    if args.command == "doctor":
        from tui.commands.about import doctor_command

        return doctor_command()
    if args.command == "completion":
        from tui.commands.info import completion_command

        return completion_command(args.shell)
    if args.command == "profiles":
        from tui.commands.info import list_profiles

        return list_profiles()
    if args.command == "gpu":
        from tui.commands.info import gpu_snapshot

        return gpu_snapshot()
    if args.command == "setup-local":
        from tui.commands.info import setup_local

        return setup_local()
    if args.command == "check":
        from tui.commands.check import check_command

        url = args.url if args.url is not None else _base_url_from_environment()
        api_key, basic_auth = _credentials(url, args.api_key)
        return check_command(url, args.model, api_key, args.json, basic_auth)
    if args.command == "replay":
        from engine.results.runs import resolve_run
        from tui.commands.replay import replay_command

        return replay_command(resolve_run(args.run, args.root), web=web_address(args))
    if args.command == "runs":
        from tui.commands.runs import runs_command

        return runs_command(
            args.root,
            show_metrics=args.show_metrics,
            show_parameters=args.show_parameters,
            as_json=args.json,
            model=args.model,
            server=args.server,
            profile=args.profile,
        )
    if args.command == "compare":
        from tui.commands.compare import compare_command

        return compare_command(
            args.runs,
            args.root,
            resamples=args.resamples,
            seed=args.seed,
            as_json=args.json,
            ui=args.ui,
        )
    if args.command == "report":
        from engine.analysis.peers import parse_peers
        from tui.commands.report import report_command

        if args.in_summary and not args.definitions:
            raise InputError("--in-summary needs --definitions")
        return report_command(
            args.runs,
            args.root,
            args.output,
            args.csv,
            definitions=parse_peers(args.definitions) if args.definitions else (),
            in_summary=args.in_summary,
        )
    if args.command == "clean":
        from tui.commands.clean import clean_command

        return clean_command(args.root, args.grace)
    if args.command == "export":
        from tui.commands.report import export_command

        return export_command(args.runs, args.root, args.output, trace=args.trace)
    from tui.commands.run import run_command

    return run_command(run_options(args))


def run_options(args: argparse.Namespace) -> RunOptions:
    """``llmtop run``'s arguments as ``RunOptions``; out-of-range values are bad input."""
    for dest, (flag, unit) in POSITIVE.items():
        value = getattr(args, dest)
        if value is not None and value <= 0:
            raise InputError(f"{flag} must be a positive number {unit} (got {value})")
    if args.pause_between is not None and args.pause_between < 0:
        raise InputError(f"--pause-between must be 0 or more seconds (got {args.pause_between})")
    given_url = args.url if args.url is not None else _base_url_from_environment()
    api_key, basic_auth = _credentials(given_url, args.api_key)
    return RunOptions(
        url=_url(given_url),
        model=args.model,
        api_key=SecretStr(api_key) if api_key else None,
        basic_auth=SecretStr(basic_auth) if basic_auth else None,
        probe=not args.no_probe,
        local_parallel=args.local_parallel,
        server_commands=tuple(args.server_cmd),
        server_shell=args.server_shell,
        server_ready_timeout_s=args.server_ready_timeout,
        server_grace_s=args.server_grace,
        gpus=args.gpus,
        profiles=tuple(args.profile),
        suites=tuple(args.suite),
        overrides={
            field: getattr(args, dest)
            for dest, field in AD_HOC_FIELDS.items()
            if getattr(args, dest) is not None
        },
        pause_between_s=args.pause_between,
        slo_ttft_s=args.slo_ttft,
        slo_tpot_s=args.slo_tpot,
        stall_timeout_s=args.stall_timeout,
        connect_timeout_s=args.connect_timeout,
        outage_grace_s=args.outage_grace,
        sample_hz=args.sample_hz,
        server_pid=args.server_pid,
        save_itl=args.save_itl,
        **_scale_options(args),
        output=args.output,
        dry_run=args.dry_run,
        ui=not args.no_ui and sys.stdin.isatty() and sys.stdout.isatty(),
        **_web_options(args),
    )


MAX_WORKERS = 4096
"""More worker processes than any machine or cluster here would hold."""


def _scale_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--workers`` and ``--ray``: checked here, so a bad value is bad input (exit 2)."""
    workers = args.workers
    if isinstance(workers, int) and not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"--workers must be auto or 1 to {MAX_WORKERS} (got {workers})")
    if args.ray is None:
        return {"workers": workers or 1}
    if not args.ray.strip():
        raise InputError("--ray is empty: give auto, local, or the cluster's ray://host:port")
    # Asked, not imported: importing Ray takes seconds, and the engine imports it anyway.
    if importlib.util.find_spec("ray") is None:
        raise InputError(
            "--ray needs Ray: pip install 'llmtop[ray]' (on every node of the cluster too)"
        )
    return {"workers": workers or "auto", "ray_address": args.ray.strip()}


def _url(given: str | None) -> str | None:
    """The server URL given (``--url``, else ``$OPENAI_BASE_URL`` or ``$OPENAI_API_BASE``)
    normalised; ``None`` (the embedded server) only when none of them was given at all."""
    if given is None:
        return None
    if not given.strip():
        # An empty value is usually an unset shell variable: starting the embedded server
        # instead would measure something the person did not ask for.
        raise InputError(
            "--url is empty: give the server's base URL, e.g. http://127.0.0.1:8000, "
            "or leave --url out to start the embedded llama-server"
        )
    return normalize_url(given)


def _base_url_from_environment() -> str | None:
    """``$OPENAI_BASE_URL`` or ``$OPENAI_API_BASE`` (the OpenAI clients' names, new and old)."""
    for name in URL_VARIABLES:
        if os.environ.get(name):
            # Said aloud: a variable set for other tools must not aim a load test unnoticed.
            print(f"llmtop: server URL from ${name}", file=sys.stderr)
            return os.environ[name]
    return None


def web_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """Where ``--web`` serves (``--web-host``/``--web-port`` imply it), or ``None``."""
    if not (args.web or args.web_host is not None or args.web_port is not None):
        return None
    port = DEFAULT_PORT if args.web_port is None else args.web_port
    if not 0 < port < 65536:
        raise InputError(f"--web-port must be a TCP port, 1 to 65535 (got {port})")
    return (args.web_host or DEFAULT_HOST, port)


def _web_options(args: argparse.Namespace) -> dict[str, Any]:
    address = web_address(args)
    if address is None:
        return {}
    return {"web": True, "web_host": address[0], "web_port": address[1]}


def _credentials(url: str | None, api_key: str | None) -> tuple[str | None, str | None]:
    """The API key (``--api-key``, else ``$OPENAI_API_KEY``) or the ``user:password`` that
    ``--url`` carries: one or the other, as both would go in the Authorization header.
    Remembered for redaction now, before a server is started and logs them."""
    basic_auth = url_credentials(url) if url else None
    if basic_auth is None:
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        remember_credentials(key)
        return key, None
    remember_credentials(None, basic_auth)
    if api_key:
        raise InputError(
            "--url carries a user name and password, and --api-key is given: both would go "
            "in the Authorization header; give one of them"
        )
    # $OPENAI_API_KEY is often set for other tools: the URL's credentials say what this
    # server wants, so the key is not sent.
    return None, basic_auth
