"""The headless console: a live progress line while profiles run, then summary tables.

An event sink: ``handle`` only stores the latest figures (cheap, on the engine's loop); rich's
``Live`` repaints from them on its own timer. Without a terminal (CI logs, pipes) it prints one
plain progress line every few seconds instead of redrawing.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from engine.events import (
    Event,
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    RunFinished,
    RunStarted,
    SnapshotTaken,
    ValidityWarned,
)
from engine.metrics.client_health import WorkerHealth
from engine.metrics.summary import Distribution, ProfileSummary, RunSummary
from tui.format import fmt_ms, fmt_ms_cell, fmt_ms_limit, stat_s

PLAIN_PROGRESS_EVERY_S = 5.0
LOG_WIDTH = 140
LAG_WARN_MS = 10.0
"""Event-loop lag p99 above which the console warns that timings may be inflated."""
LATENCY_ROWS = (
    ("TTFT", "ttft_s"),
    ("TTFC", "ttfc_s"),
    ("TPOT", "tpot_s"),
    ("ITL", "itl_s"),
    ("E2E", "e2e_s"),
)


NOTICE_LABEL = {"info": "[dim]note:[/]", "warning": "[yellow]note:[/]", "error": "[red]error:[/]"}
"""How each notice level starts its console line."""
SUSPECT_LABEL = "[yellow]suspect:[/]"
"""How a validity warning (the run's figures are suspect) starts its console line."""


class ConsoleReporter:
    """Shows a run's progress and results on a console."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        if not self.console.is_terminal:
            # Logs and pipes: wide enough that tables are never cut to 80 columns.
            self.console.width = max(self.console.width, LOG_WIDTH)
        self._snapshot: SnapshotTaken | None = None
        self._profile_label = ""
        self._live: Live | None = None
        self._last_plain = 0.0

    def handle(self, event: Event) -> None:
        """Take an engine event (cheap: state updates and rare prints only)."""
        if isinstance(event, SnapshotTaken):
            self._snapshot = event
            if self._live is None and time.monotonic() - self._last_plain > PLAIN_PROGRESS_EVERY_S:
                self._last_plain = time.monotonic()
                self.console.print(self._progress_text(event))
        elif isinstance(event, RunStarted):
            self.console.print(
                f"[bold]llmtop[/] run {event.run_id} -> {event.url} "
                f"({event.server_kind}), model [bold]{event.model}[/]"
            )
            self.console.print(f"results: {event.results_dir}")
        elif isinstance(event, ProfileStarted):
            p = event.profile
            self._profile_label = (
                f"[{event.index + 1}/{event.total}] {p.name} ({p.load_label}, "
                f"in {p.input_label} / out {p.max_tokens.describe()}"
                f" tok, {p.stop_label})"
            )
            self._snapshot = None
            self.console.print(self._profile_label)
            if self.console.is_terminal:
                self._live = Live(
                    console=self.console,
                    get_renderable=self._render,
                    refresh_per_second=4,
                    transient=True,
                )
                self._live.start()
        elif isinstance(event, ProfileFinished):
            self._stop_live()
            self.console.print(profile_summary_table(event.summary))
            for line in telemetry_lines(event.summary.telemetry):
                self.console.print(line)
        elif isinstance(event, NoticeRaised):
            self.console.print(f"{NOTICE_LABEL[event.level]} {event.message}", highlight=False)
        elif isinstance(event, ValidityWarned):
            self.console.print(f"{SUSPECT_LABEL} {event.message}", highlight=False)
        elif isinstance(event, RunFinished):
            self._stop_live()
            print_run_summary(self.console, event.summary)
            print_knees(self.console, event.summary)

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> Any:
        s = self._snapshot
        if s is None:
            return Text("starting...")
        total = s.planned_total
        bar = ProgressBar(
            total=float(total or 1),
            width=30,
            pulse=total is None,
            completed=float(s.finished_total if total else 0),
        )
        grid = Table.grid(padding=(0, 1))
        grid.add_row(bar, self._progress_text(s))
        return grid

    @staticmethod
    def _progress_text(s: SnapshotTaken) -> Text:
        phase = "warm-up " if s.warmup else ""
        planned = f"/{s.planned_total}" if s.planned_total else ""
        return Text(
            f"{phase}{s.finished_total}{planned} done  {s.in_flight} in flight  "
            f"{s.failed_total} failed  {s.output_tokens_per_s:,.0f} out tok/s  "
            f"{s.requests_per_s:.1f} req/s  TTFT p50 {fmt_ms(s.ttft_p50_s)}  "
            f"TPOT p50 {fmt_ms(s.tpot_p50_s)}  {s.elapsed_s:.0f} s"
        )


def profile_summary_table(summary: ProfileSummary) -> Group:
    """One finished profile on the console: its latency table (ms), then throughput lines."""
    s = summary
    failures = ", ".join(f"{k} {v}" for k, v in s.failures_by_kind.items()) or "none"
    table = Table(title=f"{s.profile} ({s.load}) - {s.status}", title_justify="left")
    lines = Text(
        f"{s.successes}/{s.requests} ok (failures: {failures}; {s.warmup_requests} warm-up "
        f"excluded) in {s.duration_s:.2f} s\n"
        f"{s.requests_per_s:.2f} req/s | in {s.input_tokens_per_s:,.1f} tok/s | out "
        f"{s.output_tokens_per_s:,.1f} tok/s | total {s.total_tokens_per_s:,.1f} tok/s\n"
        f"goodput {s.goodput_rps:.2f} req/s ({s.good_requests} of {s.successes} within SLO: "
        f"{_slo_label(s)})" + _length_error_label(s) + _failure_label(s)
    )
    table.add_column("ms")
    for column in ("mean", "p50", "p90", "p95", "p99", "max"):
        table.add_column(column, justify="right")
    for label, field in LATENCY_ROWS:
        dist: Distribution | None = getattr(s, field)
        if dist is None:
            table.add_row(label, *["-"] * 6)
            continue
        table.add_row(
            label,
            *(fmt_ms_cell(stat_s(dist, c)) for c in ("mean", "p50", "p90", "p95", "p99", "max")),
        )
    return Group(table, lines)


def _failure_label(s: ProfileSummary) -> str:
    """The profile's failure, or its most common failure, named once with the server's words."""
    if s.error:
        return f"\nfailed: {s.error}"
    if s.top_failure:
        return f"\nmost common failure ({s.top_failure_count} of {s.requests}): {s.top_failure}"
    return ""


def _length_error_label(s: ProfileSummary) -> str:
    error = s.input_length_error_pct
    if error is None:
        return ""
    return (
        f"\nprompt length vs requested: mean {error.mean:+.1f} %, p50 {error.p50:+.1f} %, "
        f"max {error.max:+.1f} % (server-counted tokens)"
    )


def _slo_label(s: ProfileSummary) -> str:
    parts = [f"TTFT <= {fmt_ms_limit(s.slo.ttft_s)}"] if s.slo.ttft_s is not None else []
    if s.slo.tpot_s is not None:
        parts.append(f"TPOT <= {fmt_ms_limit(s.slo.tpot_s)}")
    return ", ".join(parts) or "none"


def print_run_summary(console: Console, summary: RunSummary) -> None:
    """The closing block: one line per profile, client health, notices, status."""
    if len(summary.profiles) > 1:
        table = Table(title="all profiles", title_justify="left")
        for column in (
            "profile",
            "load",
            "ok/total",
            "req/s",
            "out tok/s",
            "TTFT p50",
            "TTFT p99",
            "TPOT p50",
            "TPOT p99",
            "E2E p50",
        ):
            table.add_column(column, justify="left" if column in ("profile", "load") else "right")
        for p in summary.profiles:
            latencies = (
                fmt_ms(stat_s(getattr(p, f), q))
                for f, q in (
                    ("ttft_s", "p50"),
                    ("ttft_s", "p99"),
                    ("tpot_s", "p50"),
                    ("tpot_s", "p99"),
                    ("e2e_s", "p50"),
                )
            )
            table.add_row(
                p.profile,
                p.load,
                f"{p.successes}/{p.requests}",
                f"{p.requests_per_s:.2f}",
                f"{p.output_tokens_per_s:,.1f}",
                *latencies,
            )
        console.print(table)
    c = summary.client
    if c.loop_lag_p99_ms is not None:
        who = "parent (merges, writes; times nothing)" if c.workers else "client"
        console.print(
            f"{who}: event-loop lag p50 {c.loop_lag_p50_ms:.2f} ms, p99 "
            f"{c.loop_lag_p99_ms:.2f} ms, max {c.loop_lag_max_ms:.1f} ms"
        )
        if c.loop_lag_p99_ms > LAG_WARN_MS and not c.workers:
            console.print(
                f"[yellow]warning:[/] llmtop itself was saturated: chunk timestamps "
                f"may be late by up to {c.loop_lag_p99_ms:.0f} ms (p99). Use fewer "
                "streams per llmtop process or a less loaded machine."
            )
    for line in worker_lines(c.workers):
        console.print(line, highlight=False)
    if len(summary.profiles) != 1:
        for line in telemetry_lines(summary.telemetry):
            console.print(line)
    server = summary.server or {}
    if server.get("log_tail"):
        console.print(
            f"[red]server exited with code {server.get('exit_code')}[/]; log tail:\n"
            f"{server['log_tail']}",
            markup=True,
            highlight=False,
        )
    for outage in summary.outages:
        gap = f"{outage.gap_s:.1f} s" if outage.gap_s is not None else "never answered again"
        console.print(
            f"[yellow]server outage:[/] from {outage.started_s:.1f} s ({outage.failures} "
            f"connection failures in a row, {outage.reason}): {gap}",
            highlight=False,
        )
    for issue in summary.validity:
        where = f"{issue.profile}: " if issue.profile else ""
        console.print(
            f"{SUSPECT_LABEL} {where}{issue.rule} x{issue.count}, worst "
            f"{issue.worst:,.1f} {issue.unit} (limit {issue.threshold:g} {issue.unit}); first: "
            f"{issue.message}",
            highlight=False,
        )
    for notice in summary.notices:
        if notice != summary.error:  # the status line below says it
            console.print(f"[yellow]note:[/] {notice}", highlight=False)
    style = {"completed": "green", "interrupted": "yellow"}.get(summary.status, "red")
    console.print(
        f"[{style}]{summary.status}[/] in {summary.duration_s:.1f} s"
        + (f": {summary.error}" if summary.error else "")
    )


def print_knees(console: Console, summary: RunSummary) -> None:
    """Each sweep's SLO knee and saturation point, with the numbers that decided them."""
    for knee in summary.knees:
        console.print("\n".join(knee.lines()), highlight=False, markup=False)


def print_after_screen(console: Console, summary: RunSummary) -> None:
    """What ``--no-ui`` prints, for a run that was watched on the live screen: each
    profile's table as it would have come, then the closing block and the knees."""
    for profile in summary.profiles:
        console.print(profile_summary_table(profile))
        for line in telemetry_lines(profile.telemetry):
            console.print(line)
    print_run_summary(console, summary)
    print_knees(console, summary)


MATRIX_COLUMNS = (
    # header, getter, better ("min" or "max")
    ("TTFT p50", lambda p: p.ttft_s.p50 * 1000 if p.ttft_s else None, "min"),
    ("in tok/s", lambda p: p.input_tokens_per_s, "max"),
    ("out tok/s", lambda p: p.output_tokens_per_s, "max"),
    ("E2E p50", lambda p: p.e2e_s.p50 * 1000 if p.e2e_s else None, "min"),
)


def print_matrix(outcomes: list[Any], console: Console | None = None) -> None:
    """Side-by-side headline figures per configuration and profile; the best marked ``*``."""
    console = console or Console(highlight=False)
    profiles: list[str] = []
    for outcome in outcomes:
        for p in outcome.summary.profiles if outcome.summary else []:
            if p.profile not in profiles:
                profiles.append(p.profile)
    for name in profiles:
        table = Table(title=f"configurations compared: {name} (* = best)", title_justify="left")
        table.add_column("configuration")
        table.add_column("ok/total", justify="right")
        for header, _get, _better in MATRIX_COLUMNS:
            table.add_column(header + (" ms" if "p50" in header else ""), justify="right")
        rows = [(o, _profile_of(o, name)) for o in outcomes]
        best = {h: _best([g(p) for _o, p in rows if p], b) for h, g, b in MATRIX_COLUMNS}
        for outcome, p in rows:
            if p is None:
                table.add_row(outcome.label, "failed", *["-"] * len(MATRIX_COLUMNS))
                continue
            cells = []
            for header, get, _better in MATRIX_COLUMNS:
                value = get(p)
                mark = "*" if value is not None and value == best[header] else ""
                cells.append("-" if value is None else f"{value:,.1f}{mark}")
            table.add_row(outcome.label, f"{p.successes}/{p.requests}", *cells)
        console.print(table)


def _profile_of(outcome: Any, name: str) -> ProfileSummary | None:
    summary = outcome.summary
    return next((p for p in summary.profiles if p.profile == name), None) if summary else None


def _best(values: list[float | None], better: str) -> float | None:
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return None
    return min(present) if better == "min" else max(present)


def telemetry_lines(telemetry: dict[str, Any] | None) -> list[str]:
    """Console lines for GPU, host and server figures of a run or profile."""
    if not telemetry:
        return []
    lines = []
    for gpu in telemetry.get("gpus") or []:
        lines.append(
            f"GPU {gpu['index']} {gpu['name'] or ''}: util mean {_num(gpu['utilization_pct_mean'])}"
            f" % (peak {_num(gpu['utilization_pct_peak'])} %), memory peak "
            f"{_num(gpu['memory_used_mib_peak'])}/{_num(gpu['memory_total_mib'])} MiB, power "
            f"mean {_num(gpu['power_w_mean'])} W (peak {_num(gpu['power_w_peak'])} W), energy "
            f"{_num(gpu['energy_j'])} J"
        )
    if telemetry.get("joules_per_output_token") is not None:
        lines.append(
            f"energy per output token {telemetry['joules_per_output_token']:.3f} J, "
            f"{_num(telemetry.get('output_tokens_per_s_per_w'), 2)} output tok/s per W"
        )
    host = telemetry.get("host") or {}
    if host.get("client_cpu_pct_peak") is not None:
        lines.append(
            f"llmtop CPU peak {_num(host['client_cpu_pct_peak'])} % of a core; host "
            f"CPU mean {_num(host.get('system_cpu_pct_mean'))} %, RAM peak "
            f"{_num(host.get('ram_used_mib_peak'))} MiB"
        )
    if host.get("server_rss_mib_peak") is not None:
        lines.append(
            f"server process: CPU mean {_num(host.get('server_cpu_pct_mean'))} % of a "
            f"core (peak {_num(host.get('server_cpu_pct_peak'))} %), RSS peak "
            f"{_num(host['server_rss_mib_peak'])} MiB"
        )
    if telemetry.get("server_vram_mib_peak") is not None:
        lines.append(
            f"server models loaded: {', '.join(telemetry['server_loaded_models'])}; "
            f"their VRAM peak {telemetry['server_vram_mib_peak']:,.0f} MiB"
        )
    for name, pair in (telemetry.get("server_vs_client") or {}).items():
        if name == "output_tokens":
            lines.append(
                f"output tokens: server counted {pair['server']:,.0f}, client "
                f"{pair['client']:,} (client - server "
                f"{pair['client_minus_server']:+,.0f})"
            )
            continue
        lines.append(
            f"{name.replace('_s', '')}: server {fmt_ms(pair['server'])}, client "
            f"{fmt_ms(pair['client'])} (client - server "
            f"{pair['client_minus_server'] * 1000:+,.1f} ms)"
        )
    return lines


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def worker_lines(workers: list[WorkerHealth]) -> list[str]:
    """One line per worker process: where it ran, its CPU and lags, what it sent; saturated
    and lost ones marked (``--workers``, ``--ray``)."""
    lines = []
    for w in workers:
        where = f"{w.host}" + (f" node {w.node[:8]}" if w.node else "") + f", pid {w.pid}"
        figures = ", ".join(
            part
            for part in (
                f"CPU {w.cpu_pct:.0f} %" if w.cpu_pct is not None else None,
                f"loop lag p99 {w.loop_lag_p99_ms:.1f} ms"
                if w.loop_lag_p99_ms is not None
                else None,
                f"schedule lag p99 {w.schedule_lag_p99_ms:.1f} ms"
                if w.schedule_lag_p99_ms is not None
                else None,
                f"{w.requests} requests",
                f"clock {w.clock_offset_ns / 1e3:+.0f}±{w.clock_error_ns / 1e3:.0f} us",
            )
            if part
        )
        mark = " [yellow]saturated[/]" if w.saturated else ""
        lost = f" [red]lost: {w.lost}[/]" if w.lost else ""
        lines.append(f"worker {w.worker} ({where}): {figures}{mark}{lost}")
    return lines
