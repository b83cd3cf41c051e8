"""The GPU and host pane, nvitop-style: a line per GPU with a bar and a short history of each
figure, a line for all GPUs, then the host, llmtop's engine and the server process, and the
server's own /metrics.

Bars have fixed ranges (utilization 0-100 %, VRAM 0-installed, power 0-limit), so a history
that doubles looks doubled. When a line per GPU does not fit, the GPUs fold into one line per
figure (``util %  63 65 61 ...``): values are never cut, whole lines go.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from rich.text import Text

from engine.telemetry.gpu import GpuSample
from tui.format import fmt_num
from tui.live.charts import Span, mini
from tui.live.history import gpu_key
from tui.live.render import bar, fit
from tui.live.state import LiveView
from tui.live.widgets.panes import TextPane

CLIENT_BOUND_PCT = 80.0
"""llmtop's engine above this share of one core: its timestamps may be late (client-bound)."""
TALL_ROWS = 30
"""From this many rows the pane may take a third of the screen (app.tcss ``-tall``)."""
WIDE_GPU_LINE = 100
"""From this width a GPU takes one line; below it, two."""


def system_lines(view: LiveView, span: Span, width: int, max_lines: int) -> list[Text]:
    """Every line the pane would like, trimmed to ``max_lines`` by folding the GPUs."""
    span_s = span.resolve(view.chart_now_s)
    tail = [*_host_lines(view, span_s, width), *server_lines(view, span_s, width)]
    if not view.gpus:
        reason = view.gpu_notice or "waiting for the first sample"
        # Prose, so it wraps (two lines at most) rather than being cut at the edge.
        said = textwrap.wrap(f"No GPU figures: {reason}", max(20, width - 2))[:2]
        return [Text(f" {line}", "yellow") for line in said] + tail
    per_gpu = 1 if width >= WIDE_GPU_LINE else 2
    head = [_all_gpus(view, width)] if len(view.gpus) > 1 else []
    rows = [line for gpu in view.gpus for line in _gpu_lines(view, gpu, span_s, width, per_gpu)]
    if len(head) + len(rows) + len(tail) > max_lines:
        rows = _folded(view.gpus, width)
    if len(head) + len(rows) + len(tail) > max_lines:
        rows = [] if head else rows[:2]  # the line for all GPUs stands in for them
    return [*head, *rows, *tail][: max(1, max_lines)]


def _gpu_lines(view: LiveView, g: GpuSample, span_s: float, width: int, per: int) -> list[Text]:
    """``util`` / ``VRAM`` / ``power`` gauges with their figure and history, and the
    temperature: one line, or two (util and temperature, then VRAM and power)."""
    i = g.index
    gauges = (
        ("util", g.utilization_pct, 100.0, f"{_n(g.utilization_pct):>3} %", "util_pct", "green"),
        (
            "VRAM",
            g.memory_used_mib,
            g.memory_total_mib,
            f"{_gib(g.memory_used_mib):>5}/{_gib(g.memory_total_mib)} GiB",
            "vram_mib",
            "magenta",
        ),
        (
            "power",
            g.power_w,
            g.power_limit_w,
            f"{_n(g.power_w):>3}/{_n(g.power_limit_w)} W",
            "power_w",
            "yellow",
        ),
    )
    bare = [
        _gauge(label, value, full, figure, style) for label, value, full, figure, _, style in gauges
    ]
    temp = Text(f" {_n(g.temperature_c):>3}°C", "bold" if (g.temperature_c or 0) < 85 else "red")
    label = Text(f" {i:>2} ", "bold")
    groups = [[0], [1, 2]] if per == 2 else [[0, 1, 2]]
    lines = []
    for n, group in enumerate(groups):
        fixed = (
            label.cell_len + sum(bare[k].cell_len for k in group) + (temp.cell_len if n == 0 else 0)
        )
        hist_w = max(0, (width - fixed - 1) // len(group))
        line = label.copy() if n == 0 else Text(" " * label.cell_len)
        for k in group:
            _, _, full, _, key, style = gauges[k]
            top = 100.0 if key == "util_pct" else full
            line += bare[k] + _hist(view, gpu_key(i, key), span_s, hist_w, top=top, style=style)
        lines.append(line + temp if n == 0 else line)
    return lines


def _hist(
    view: LiveView,
    key: str,
    span_s: float,
    width: int,
    top: float | None = None,
    style: str = "cyan",
) -> Text:
    return mini(
        view.charts.get(key),
        span_s=span_s,
        now_s=view.chart_now_s,
        width=width,
        top=top,
        style=style,
    )


def _gauge(label: str, value: float | None, full: float | None, figure: str, style: str) -> Text:
    # A busy GPU is the point of a benchmark: utilization never turns red. VRAM near full
    # (out of memory) and power at its limit (throttling) do.
    gauge = bar(_frac(value, full), 8, style, warn=label != "util")
    return Text(f" {label} ", "dim") + gauge + Text(f" {figure} ")


def _all_gpus(view: LiveView, width: int) -> Text:
    """Sums and means over every GPU: what the box as a whole is doing."""
    gpus = view.gpus
    utils = [g.utilization_pct for g in gpus if g.utilization_pct is not None]
    used = sum(g.memory_used_mib or 0 for g in gpus)
    total = sum(g.memory_total_mib or 0 for g in gpus)
    power = sum(g.power_w or 0 for g in gpus)
    limit = sum(g.power_limit_w or 0 for g in gpus)
    hottest = max((g.temperature_c for g in gpus if g.temperature_c is not None), default=None)
    energy = sum(view.gpu_energy_j.values()) if view.gpu_energy_j else None
    names = {g.name for g in gpus}
    model = f" × {names.pop()}" if len(names) == 1 else " GPUs"
    return fit(
        [
            [
                Text.assemble(
                    (f" {len(gpus)}{model}: ", "bold"),
                    "util ",
                    (f"{sum(utils) / len(utils):.0f} %" if utils else "-", "bold"),
                    " mean",
                )
            ],
            [Text.assemble("  VRAM ", (f"{_gib(used)}/{_gib(total)} GiB", "bold")), Text()],
            [Text.assemble("  power ", (f"{fmt_num(power)}/{fmt_num(limit)} W", "bold")), Text()],
            [Text.assemble("  hottest ", (f"{_n(hottest)}°C", "bold")), Text()],
            [
                Text.assemble(
                    "  energy ",
                    (fmt_num(energy, "J") if energy is not None else "-", "bold"),
                    (" since start", "dim"),
                ),
                Text(),
            ],
        ],
        width,
    )


def _folded(gpus: Sequence[GpuSample], width: int) -> list[Text]:
    """One line per figure, a column per GPU, when a line per GPU does not fit."""
    figures = (
        ("util %", lambda g: _n(g.utilization_pct)),
        ("VRAM %", lambda g: _n(_pct(g.memory_used_mib, g.memory_total_mib))),
        ("power W", lambda g: _n(g.power_w)),
    )
    cell = 5
    fit = max(1, (width - 10) // cell)
    lines = []
    for label, get in figures:
        cells = "".join(f"{get(g):>{cell}}" for g in gpus[:fit])
        more = f" +{len(gpus) - fit}" if len(gpus) > fit else ""
        lines.append(Text(f" {label:<8}", "dim") + Text(cells, "bold") + Text(more, "dim"))
    ids = "".join(f"{'#' + str(g.index):>{cell}}" for g in gpus[:fit])
    return [Text(f" {'GPU':<8}{ids}", "dim"), *lines]


def _host_lines(view: LiveView, span_s: float, width: int) -> list[Text]:
    h = view.host
    if h is None:
        return []
    hist_w = max(0, min(30, (width - 78) // 3))
    host = Text.assemble((" CPU host ", "dim"), (f"{h.system_cpu_pct:>3.0f} %", "bold"), " ")
    host += _hist(view, "host_cpu_pct", span_s, hist_w, top=100.0)
    client = h.client_cpu_pct
    bound = client is not None and client > CLIENT_BOUND_PCT
    engine = Text.assemble(
        ("  llmtop ", "dim"),
        (f"{_n(client)} %", "bold red" if bound else "bold"),
        (" of a core", "dim"),
        (" CLIENT-BOUND" if bound else "", "bold red"),
        " ",
    )
    engine += _hist(view, "client_cpu_pct", span_s, hist_w, top=100.0)
    parts = [host, engine]
    if h.server_pid is not None:
        server = Text.assemble(
            ("  server ", "dim"),
            (f"{_n(h.server_cpu_pct)} %", "bold"),
            (" RSS ", "dim"),
            (f"{_gib(h.server_rss_mib)} GiB", "bold"),
            " ",
        )
        server += _hist(view, "server_cpu_pct", span_s, hist_w)
        parts.append(server)
    return _pack(parts, width)


def server_lines(view: LiveView, span_s: float, width: int) -> list[Text]:
    """The server's own /metrics: running, waiting and KV cache, each with its history."""
    m = view.server_metrics
    if m is None:
        return []
    hist_w = max(0, min(30, (width - 80) // 3))
    parts = [Text(f" /metrics ({m.family})", "dim")]
    for label, key, value, unit in (
        ("running", "running", m.running, ""),
        ("waiting", "waiting", m.waiting, ""),
        ("KV cache", "kv_pct", m.kv_cache_usage_pct, " %"),
    ):
        warn = key == "waiting" and (value or 0) > 0
        figure = "-" if value is None else f"{_n(value)}{unit}"
        part = Text.assemble((f"  {label} ", "dim"), (figure, "bold red" if warn else "bold"), " ")
        top = 100.0 if key == "kv_pct" else None
        parts.append(part + _hist(view, key, span_s, hist_w, top=top))
    return _pack(parts, width)


def _pack(parts: list[Text], width: int) -> list[Text]:
    """Parts side by side while they fit, else a new line: a part is never cut."""
    lines: list[Text] = []
    for part in parts:
        if lines and lines[-1].cell_len + part.cell_len <= width:
            lines[-1] += part
        else:
            lines.append(part.copy())
    return lines


def _frac(value: float | None, total: float | None) -> float | None:
    return None if value is None or not total else value / total


def _pct(value: float | None, total: float | None) -> float | None:
    frac = _frac(value, total)
    return None if frac is None else 100 * frac


def _gib(mib: float | None) -> str:
    return "-" if mib is None else f"{mib / 1024:.1f}"


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


class SystemPane(TextPane):
    """GPUs, host and server; its height follows the lines it draws, up to a third of the
    screen (the charts and lists need the rest)."""

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        height = self.app.size.height
        # A third of a tall screen; on a short one the charts and lists come first.
        budget = height // 3 - 1 if height >= TALL_ROWS else max(3, height // 6)
        return system_lines(view, self.span, width, budget)
