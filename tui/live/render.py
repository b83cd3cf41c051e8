"""Pure functions that turn a ``LiveView`` into rich ``Text`` for the panes.

No Textual here: each function takes the view and the space it has, so a pane is a thin
widget and the drawing is testable on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from engine.stats import percentile
from tui.format import fmt_elapsed, fmt_num, fmt_s
from tui.live.state import LiveView

BLOCKS = " ▁▂▃▄▅▆▇█"
"""Eighth-height blocks: a sparkline column of height h has 8*h levels."""
STATUS_STYLE = {
    "running": "bold green",
    "paused": "bold yellow",
    "starting": "cyan",
    "completed": "green",
    "interrupted": "yellow",
    "failed": "bold red",
    "incomplete": "bold yellow",
}


def sparkline(
    values: Sequence[float | None], width: int, height: int = 1, styles: Sequence[str] | None = None
) -> list[Text]:
    """The last ``width`` values as ``height`` rows of block characters, scaled 0..max.

    ``styles`` gives each value its own style (an SLO breach in red); ``None`` values are gaps.
    """
    width, height = max(1, width), max(1, height)
    tail = list(values)[-width:]
    style_tail = list(styles)[-width:] if styles is not None else ["cyan"] * len(tail)
    top = max((v for v in tail if v is not None), default=0.0) or 1.0
    rows = [Text() for _ in range(height)]
    for value, style in zip(tail, style_tail):
        level = 0 if value is None else max(1, round(value / top * 8 * height))
        for row in range(height):
            floor = (height - 1 - row) * 8
            rows[row].append(BLOCKS[max(0, min(8, level - floor))], style)
    return rows


def bar(fraction: float | None, width: int, style: str = "green", *, warn: bool = True) -> Text:
    """A horizontal gauge ``█████░░░``; an unknown value is a dotted bar. With ``warn`` a
    gauge turns yellow from 70 % and red from 90 % (a progress bar does not)."""
    width = max(1, width)
    if fraction is None:
        return Text("·" * width, "dim")
    filled = round(max(0.0, min(1.0, fraction)) * width)
    colour = (
        style if not warn else "red" if fraction >= 0.9 else "yellow" if fraction >= 0.7 else style
    )
    return Text("█" * filled, colour) + Text("░" * (width - filled), "grey37")


def header(view: LiveView) -> Text:
    """One line: status, server, model, elapsed, results folder."""
    status = view.status
    line = Text.assemble(
        (f" {status.upper()} ", f"reverse {STATUS_STYLE.get(status, '')}"),
        " ",
        (view.url or "no server yet", "bold"),
    )
    if view.server_kind:
        line.append(f" ({view.server_kind})", "cyan")
    line.append(f"  model {view.model or '-'}  ")
    line.append(fmt_elapsed(view.elapsed_s), "bold")
    if view.results_dir:
        line.append(f"  -> {view.results_dir}", "dim")
    return line


def latency_lines(view: LiveView, width: int, height: int) -> list[Text]:
    """TTFT and TPOT sparklines over the most recent requests, with p50/p99 beside them."""
    rows_each = max(1, (height - 1) // 2)
    label_w, stats_w = 6, 26
    spark_w = max(4, width - label_w - stats_w - 1)
    styles = ["cyan" if p.slo_ok else "bold red" for p in view.spark]
    # Percentiles of the latest scenario only: mixing a c=1 and a c=32 step says nothing.
    latest = view.spark[-1].profile if view.spark else ""
    lines: list[Text] = []
    for label, values in (
        ("TTFT", [p.ttft_s for p in view.spark]),
        ("TPOT", [p.tpot_s for p in view.spark]),
    ):
        present = [v for v, p in zip(values, view.spark) if v is not None and p.profile == latest]
        ordered = sorted(present)
        p50, p99 = (percentile(ordered, 50), percentile(ordered, 99)) if ordered else (None, None)
        stats = Text.assemble(
            " p50 ", (f"{fmt_s(p50):>8}", "bold"), " p99 ", (f"{fmt_s(p99):>8}", "bold")
        )
        for row, spark in enumerate(sparkline(values, spark_w, rows_each, styles)):
            lines.append(
                _pad_left(Text(label + " " if row == rows_each - 1 else "", "bold"), label_w)
                + _pad_left(spark, spark_w)
                + (stats if row == rows_each - 1 else Text(""))
            )
    lines.append(_slo_line(view))
    return lines


def _slo_line(view: LiveView) -> Text:
    parts = []
    if view.slo.ttft_s is not None:
        parts.append(f"TTFT≤{fmt_s(view.slo.ttft_s)}")
    if view.slo.tpot_s is not None:
        parts.append(f"TPOT≤{fmt_s(view.slo.tpot_s)}")
    latest = view.spark[-1].profile if view.spark else "-"
    slo = " and ".join(parts) or "none"
    if view.slo_breaks:
        verdict = (f" ▲ {view.slo_breaks} broke the SLO (red)", "bold red")
    else:
        verdict = (" all met the SLO", "green")
    return Text.assemble(verdict, (f": {slo}; p50/p99 of {latest}", "dim"))


def throughput_lines(view: LiveView, width: int, height: int) -> list[Text]:
    """Output tok/s over time (with input tok/s and req/s when there is room), then the
    current rates, in-flight requests and run totals."""
    now = view.current
    budget = max(1, height - 2)
    series = [("out", [s.output_tokens_per_s for s in view.history], budget)]
    if budget >= 3:  # room for input tokens and requests too, a row each
        series = [
            ("out", series[0][1], budget - 2),
            ("in", [s.input_tokens_per_s for s in view.history], 1),
            ("req", [s.requests_per_s for s in view.history], 1),
        ]
    lines: list[Text] = []
    for label, values, rows in series:
        sparks = sparkline(values, width - 5, rows, None)
        lines += [
            Text(f" {label:<4}" if row == rows - 1 else "     ", "bold") + spark
            for row, spark in enumerate(sparks)
        ]
    rates = Text.assemble(
        (f" {fmt_num(now.output_tokens_per_s if now else None)}", "bold green"),
        " out ",
        (fmt_num(now.input_tokens_per_s if now else None), "bold"),
        " in tok/s  ",
        (fmt_num(now.requests_per_s if now else None), "bold"),
        " req/s  ",
        (str(now.in_flight) if now else "-", "bold"),
        " in flight",
    )
    t = view.totals
    failed = t.get("failed", 0)
    totals = Text.assemble(
        f" run: {t.get('requests', 0)} requests  ",
        (f"{failed} failed", "bold red" if failed else "green"),
        f"  {fmt_num(t.get('input_tokens', 0))} in / {fmt_num(t.get('output_tokens', 0))} "
        "out tokens",
    )
    return [*lines, rates, totals]


def gpu_lines(view: LiveView, width: int) -> list[Text]:
    """Per GPU: utilization gauge, VRAM bar, power against its limit, temperature, energy."""
    if not view.gpus:
        reason = view.gpu_notice or "waiting for the first sample"
        return [Text(" No GPU figures: ", "bold yellow") + Text(reason, "yellow")]
    gauge_w = max(6, width - 24)
    lines: list[Text] = []
    for gpu in view.gpus:
        i = gpu.index
        lines.append(Text(f" GPU{i} {gpu.name or ''}"[: width - 1], "bold"))
        util = gpu.utilization_pct
        lines.append(
            _gauge("util", bar(_frac(util, 100), gauge_w), "-" if util is None else f"{util:.0f} %")
        )
        used, total = gpu.memory_used_mib, gpu.memory_total_mib
        lines.append(
            _gauge(
                "VRAM",
                bar(_frac(used, total), gauge_w, "magenta"),
                f"{_gib(used)}/{_gib(total)} GiB",
            )
        )
        power, limit = gpu.power_w, gpu.power_limit_w
        lines.append(
            _gauge(
                "power", bar(_frac(power, limit), gauge_w, "yellow"), f"{_n(power)}/{_n(limit)} W"
            )
        )
        energy = view.gpu_energy_j.get(i)
        lines.append(
            Text(
                f"  {_n(gpu.temperature_c)} C   energy "
                f"{fmt_num(energy, 'J') if energy is not None else '-'}"
            )
        )
    return lines


def server_lines(view: LiveView) -> list[Text]:
    """The server's own counters: running and waiting requests, KV-cache use."""
    m = view.server_metrics
    if m is None:
        return [Text(" running -  waiting -  KV -")]
    kv = m.kv_cache_usage_pct
    return [
        Text.assemble(
            " running ",
            (_n(m.running), "bold"),
            "  waiting ",
            (_n(m.waiting), "bold red" if (m.waiting or 0) > 0 else "bold"),
            "  KV ",
            ("-" if kv is None else f"{kv:.0f} %", "bold"),
        )
    ]


def _pad_left(text: Text, width: int) -> Text:
    return Text(" " * max(0, width - text.cell_len)) + text


def _gauge(label: str, gauge: Text, figure: str) -> Text:
    return Text(f" {label:<5} ") + gauge + Text(f" {figure}")


def _frac(value: Any, total: Any) -> float | None:
    if value is None or not total:
        return None
    return float(value) / float(total)


def _gib(mib: Any) -> str:
    return "-" if mib is None else f"{float(mib) / 1024:.1f}"


def _n(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}"
