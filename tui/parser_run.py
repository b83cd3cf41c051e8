"""The ``run`` sub-command's options (most of the parser), the ``--web`` trio that ``run``
and ``replay`` share, and the argument types they parse with.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from engine.workload.profile import builtin_names
from engine.workload.suite import builtin_suites
from tui.options import DEFAULT_PROFILE
from tui.web.server import DEFAULT_HOST, DEFAULT_PORT


def path_arg(text: str) -> Path:
    """A file or folder path; an empty one (an unset shell variable, most often) is refused
    rather than read as the current folder.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: give a folder or file name")
    return Path(text)


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


def add_run_arguments(run: argparse.ArgumentParser) -> None:
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
        type=path_arg,
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
    add_web_arguments(
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


def add_web_arguments(group: Any, what: str) -> None:
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
