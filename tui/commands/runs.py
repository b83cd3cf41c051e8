"""``llmtop runs``: the runs under a results folder, newest first, read from the folders."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from engine.errors import ExitCode, InputError
from engine.metrics.summary import ProfileSummary
from engine.results.runs import RunInfo, discover_runs, load_run
from tui.format import fmt_ms_cell, fmt_ms_limit, stat_s

Column = tuple[str, Callable[[ProfileSummary], str]]
PIPE_WIDTH = 400
"""Console width when not a terminal (pipes, files): wide tables are never folded."""


def _ms(field: str, stat: str) -> Callable[[ProfileSummary], str]:
    """The column getter of one latency statistic, in ms (``TTFT p50 ms``)."""

    def get(p: ProfileSummary) -> str:
        return fmt_ms_cell(stat_s(getattr(p, field), stat))

    return get


KEY_COLUMNS: list[Column] = [
    ("load", lambda p: p.load),
    ("ok/req", lambda p: f"{p.successes}/{p.requests}"),
    ("out tok/s", lambda p: f"{p.output_tokens_per_s:,.1f}"),
    ("TTFT p50 ms", _ms("ttft_s", "p50")),
    ("TTFT p99 ms", _ms("ttft_s", "p99")),
    ("TPOT p50 ms", _ms("tpot_s", "p50")),
]
METRIC_COLUMNS: list[Column] = [
    ("req/s", lambda p: f"{p.requests_per_s:,.2f}"),
    ("in tok/s", lambda p: f"{p.input_tokens_per_s:,.1f}"),
    ("goodput req/s", lambda p: f"{p.goodput_rps:,.2f}"),
    ("TTFT p90 ms", _ms("ttft_s", "p90")),
    ("TPOT p99 ms", _ms("tpot_s", "p99")),
    ("ITL p50 ms", _ms("itl_s", "p50")),
    ("E2E p50 ms", _ms("e2e_s", "p50")),
    ("E2E p99 ms", _ms("e2e_s", "p99")),
    ("errors", lambda p: ", ".join(f"{k} {v}" for k, v in p.failures_by_kind.items()) or "-"),
]


def runs_command(
    root: Path,
    *,
    show_metrics: bool,
    show_parameters: bool,
    as_json: bool,
    model: str | None,
    server: str | None,
    profile: str | None,
    console: Console | None = None,
) -> int:
    """List the runs under ``root``; filters are case-insensitive substrings."""
    runs = [load_run(path) for path in discover_runs(root)]
    runs.sort(key=lambda r: r.started_unix_s or 0.0, reverse=True)
    for label, wanted, values in (
        ("model", model, lambda r: [r.model or ""]),
        ("server", server, lambda r: [r.server_kind or ""]),
        ("profile", profile, lambda r: [p.profile for p in r.profiles]),
    ):
        if wanted is not None:
            runs = _filter(runs, label, wanted, values)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        return ExitCode.OK
    console = console or Console(highlight=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    if not runs:
        console.print(f"no runs under {root}")
        return ExitCode.OK
    console.print(runs_table(runs, show_metrics, show_parameters, root))
    for run in runs:
        for line in [*run.notes, *(line for k in run.knees for line in k.lines())]:
            console.print(f"{run.run_id}: {line}", markup=False)
    return ExitCode.OK


def _filter(
    runs: list[RunInfo], label: str, wanted: str, values: Callable[[RunInfo], list[str]]
) -> list[RunInfo]:
    kept = [r for r in runs if any(wanted.lower() in v.lower() for v in values(r))]
    if not kept and runs:
        present = sorted({v for r in runs for v in values(r) if v})
        raise InputError(
            f"no run has a {label} matching '{wanted}'; present: "
            f"{', '.join(present[:20]) or 'none'}"
        )
    return kept


def runs_table(runs: list[RunInfo], show_metrics: bool, show_parameters: bool, root: Path) -> Table:
    """One row per profile; the run's own columns on its first row only."""
    columns = KEY_COLUMNS + (METRIC_COLUMNS if show_metrics else [])
    table = Table(
        title=f"runs under {root}, newest first", title_justify="left", box=box.SIMPLE_HEAD
    )
    headers = ["run", "started", "status", "server", "model", "duration", "profile"]
    if show_parameters:
        headers += ["url", "suite", "endpoint", "in tok", "max out", "SLO"]
    for header in headers + [name for name, _ in columns]:
        numeric = header in ("duration",) or header in dict(columns) and header != "load"
        table.add_column(
            header,
            justify="right" if numeric else "left",
            no_wrap=header in ("run", "started", "profile"),
        )
    for run in runs:
        for index, p in enumerate(run.profiles or [None]):
            head = _run_cells(run) if index == 0 else [""] * 6
            params = _parameter_cells(run, p, index) if show_parameters else []
            cells = [get(p) for _, get in columns] if p else ["-"] * len(columns)
            table.add_row(*head, p.profile if p else "-", *params, *cells)
    return table


def _run_cells(run: RunInfo) -> list[str]:
    started = (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started_unix_s))
        if run.started_unix_s
        else "-"
    )
    style = {"completed": "green", "incomplete": "yellow"}.get(run.status, "red")
    duration = "-" if run.duration_s is None else f"{run.duration_s:,.1f} s"
    return [
        run.run_id,
        started,
        f"[{style}]{run.status}[/]",
        run.server_kind or "-",
        run.model or "-",
        duration,
    ]


def _parameter_cells(run: RunInfo, p: ProfileSummary | None, index: int) -> list[str]:
    definition: dict[str, Any] = (run.definition(p.profile) or {}) if p else {}
    slo = ", ".join(
        f"{n} {fmt_ms_limit(v)}"
        for n, v in (("TTFT", run.slo.ttft_s), ("TPOT", run.slo.tpot_s))
        if v
    )
    run_cells = [run.url or "-", ", ".join(run.suites) or "-"] if index == 0 else ["", ""]
    return [
        *run_cells,
        str(definition.get("endpoint", "-")),
        _length(definition.get("input_tokens") or definition.get("prompt_rep")),
        _length(definition.get("max_tokens")),
        slo or "-",
    ]


def _length(value: Any) -> str:
    if isinstance(value, dict) and "min" in value:
        low, high = value.get("min"), value.get("max")
        return f"{low}" if low == high else f"{low}-{high}"
    return "-" if value is None else str(value)
