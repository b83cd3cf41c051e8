"""The latency and throughput panes: charts of the run over the chosen span, each with its
scale and the window every number covers.

Latency columns hold the worst request that ended in them, red where it broke that metric's
own SLO (TTFT against ``--slo-ttft``, TPOT against ``--slo-tpot``). p50/p99 beside them are
the running scenario's, over all its requests so far (the latency table's figures).
"""

from __future__ import annotations

from rich.text import Text

from tui.format import fmt_num, fmt_s
from tui.live.charts import Span, chart, time_axis
from tui.live.render import first_fitting, fit
from tui.live.state import LatencyRow, LiveView
from tui.live.widgets.panes import TextPane

LATENCY_METRICS = (("TTFT", "ttft_s"), ("TPOT", "tpot_s"))
UNIT_CELLS = len(" in flight ")
"""Cells right of each throughput chart for its unit."""


def latency_lines(view: LiveView, span: Span, width: int, height: int) -> list[Text]:
    """A head line and a chart per metric, then the time axis."""
    chart_rows = max(2, height - 3)
    rows = {"ttft_s": chart_rows - chart_rows // 2, "tpot_s": chart_rows // 2}
    span_s = span.resolve(view.chart_now_s)
    row = _scenario_row(view)
    lines: list[Text] = []
    for label, key in LATENCY_METRICS:
        lines.append(_latency_head(view, label, key, row, width))
        lines += chart(
            view.charts.get(key),
            span_s=span_s,
            now_s=view.chart_now_s,
            width=width,
            height=rows[key],
            fmt=fmt_s,
            how="peak",
        )
    if height >= 5:
        lines.append(time_axis(span_s, width, "worst request per column"))
    return lines


def _scenario_row(view: LiveView) -> LatencyRow | None:
    """The latency row of the running scenario, else of the last one that ended."""
    running = view.current.profile if view.current else None
    names = [running] if running else [s.profile for s in view.finished[-1:]]
    return next((r for r in view.latency if r.profile in names), None)


def _latency_head(view: LiveView, label: str, key: str, row: LatencyRow | None, width: int) -> Text:
    """``TTFT p50 120 ms p99 380 ms (stress, 412 req so far)  SLO ≤150 ms: 12 over``, the
    scope and the SLO shortening first when narrow."""
    dist = row.metrics.get(key) if row else None
    limit = getattr(view.slo, key)
    figures = Text.assemble((f" {label} ", "bold"))
    scope: list[Text] = []
    if dist is None:
        figures.append("p50 - p99 -", "dim")
    else:
        over = limit is not None and dist.p99 > limit
        figures.append_text(
            Text.assemble(
                "p50 ",
                (fmt_s(dist.p50), "bold"),
                " p99 ",
                (fmt_s(dist.p99), "bold red" if over else "bold"),
            )
        )
        name = row.profile if row else ""
        when = "final" if row and row.exact else "so far"
        scope = [
            Text(f" ({name}, {dist.count} req {when})", "dim"),
            Text(f" ({name} {when})", "dim"),
            Text(f" ({when})", "dim"),
        ]
    slo: list[Text] = []
    if limit is not None:
        breaks = view.slo_breaks.get(key, 0)
        count = (f"{breaks} over", "bold red" if breaks else "green")
        slo = [
            Text.assemble((f"  SLO ≤{fmt_s(limit)}: ", "dim"), count, (" in the run", "dim")),
            Text.assemble((f"  SLO ≤{fmt_s(limit)}: ", "dim"), count),
            Text.assemble(("  SLO: ", "dim"), count),
        ]
    # Narrower: the scenario's name goes first, then the SLO's wording, then the scope;
    # the figures and the count over the SLO stay longest.
    slo_long, slo_mid, slo_short = slo or [Text()] * 3
    scope_long, scope_mid, scope_short = scope or [Text()] * 3
    return first_fitting(
        [
            [figures, scope_long, slo_long],
            [figures, scope_long, slo_mid],
            [figures, scope_mid, slo_mid],
            [figures, scope_short, slo_mid],
            [figures, scope_short, slo_short],
            [figures, slo_short],
            [figures],
        ],
        width,
    )


def throughput_lines(view: LiveView, span: Span, width: int, height: int) -> list[Text]:
    """Rates now, output tok/s over time, requests/s and in flight when there is room, the
    time axis and the run's totals."""
    span_s = span.resolve(view.chart_now_s)
    small = max(0, min(2, height - 5))  # one-row charts of req/s and in flight
    big = max(1, height - 3 - small)
    lines = [rates_line(view, width)]
    lines += _series(view, "out_tok_s", span_s, width, big, "tok/s")
    for key, unit in (("req_s", "req/s"), ("in_flight", "in flight"))[:small]:
        lines += _series(view, key, span_s, width, 1, unit)
    lines.append(time_axis(span_s, width - UNIT_CELLS, "mean per column"))
    lines.append(totals_line(view, width))
    return lines


def _series(
    view: LiveView, key: str, span_s: float, width: int, rows: int, unit: str
) -> list[Text]:
    # Every chart of the pane leaves the same room for its unit: their columns line up in
    # time with each other and with the axis.
    out = chart(
        view.charts.get(key),
        span_s=span_s,
        now_s=view.chart_now_s,
        width=width - UNIT_CELLS,
        height=rows,
        fmt=fmt_num,
        style="green" if key == "out_tok_s" else "cyan",
    )
    return [line + Text(f" {unit}" if i == rows - 1 else "", "dim") for i, line in enumerate(out)]


def rates_line(view: LiveView, width: int = 200) -> Text:
    """The running scenario's rates over their window, or why there are none."""
    now, rates = view.current, view.rates
    if now is not None and now.warmup:
        return Text.assemble((" warm-up", "bold cyan"), (_warmup(view), "cyan"))
    if rates is None:
        return Text(" no scenario sending: rates show while one runs", "dim")
    window = f"{rates.window_s:.0f} s"
    figures = Text.assemble(
        " out ",
        (fmt_num(rates.output_tokens_per_s), "bold green"),
        " in ",
        (fmt_num(rates.input_tokens_per_s), "bold"),
        " tok/s",
    )
    return fit(
        [
            [figures],
            [Text.assemble("  ", (fmt_num(rates.requests_per_s), "bold"), " req/s"), Text()],
            [Text.assemble("  ", (str(rates.in_flight), "bold"), " in flight"), Text()],
            [
                Text(f"  (mean of the last {window} of {rates.profile})", "dim"),
                Text(f"  (last {window})", "dim"),
                Text(f" ({window})", "dim"),
            ],
        ],
        width,
    )


def _warmup(view: LiveView) -> str:
    """``3/8 requests`` of the running scenario's warm-up."""
    if view.current is None:
        return ""
    name = view.current.profile
    done = view.progress.get(name)
    entry = next((e for e in view.queue if e.name == name), None)
    planned = entry.profile.warmup_requests if entry else None
    count = done.warmup_finished if done else 0
    return f" {count}/{planned} requests done" if planned else f" {count} requests done"


def totals_line(view: LiveView, width: int = 200) -> Text:
    """The run's counts since it started."""
    t = view.totals
    failed = t.get("failed", 0)
    tokens = f"{fmt_num(t.get('input_tokens', 0))} in / {fmt_num(t.get('output_tokens', 0))} out"
    return fit(
        [
            [
                Text.assemble(
                    f" run: {t.get('requests', 0)} requests, ",
                    (f"{failed} failed", "bold red" if failed else "green"),
                )
            ],
            [Text(f", {tokens} tokens"), Text()],
            [Text(" (since start)", "dim"), Text()],
        ],
        width,
    )


class LatencyPane(TextPane):
    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return latency_lines(view, self.span, width, height)


class ThroughputPane(TextPane):
    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return throughput_lines(view, self.span, width, height)
