"""Time charts with a scale: pure functions from a ``SeriesView`` to rich ``Text`` rows.

A chart says what it shows without the README: a y gutter with its top value and unit (and 0
at the bottom), a time axis with the span (``-1m ... now``), and the chart's own rule for a
column (the mean of its readings, or the worst request in it). Spans are a person's choice
(``SPANS``, the ``w`` key); every chart on the screen shares the one chosen.

Drawn here rather than with Textual's ``Sparkline`` widget, which scales each draw to its
own data, has no gaps for missing readings and one colour gradient for all columns: a chart
here needs a fixed top (100 % utilization), gaps (no request ended), a colour per column (a
breach of that metric's SLO) and its scale beside it. ``textual-plotext`` would draw axes,
but its frame and tick labels take most of the one to a dozen rows a chart gets here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text

from tui.live.render import sparkline
from tui.live.series import Aggregate, Column, SeriesView

GUTTER = 8
"""Cells left of a chart for its scale (``42.1 ms┤``: the longest ``fmt_s`` figure)."""


@dataclass(frozen=True, slots=True)
class Span:
    """How much time the charts cover."""

    label: str
    seconds: float | None
    """``None``: the whole run."""

    def resolve(self, now_s: float) -> float:
        """Seconds covered now (the whole run: at least a minute, so a young run is not
        stretched across the screen)."""
        return self.seconds if self.seconds is not None else max(60.0, now_s)


SPANS = (Span("1 min", 60.0), Span("10 min", 600.0), Span("whole run", None))
"""The spans ``w`` cycles through, the first shown at start."""


def chart(
    series: SeriesView | None,
    *,
    span_s: float,
    now_s: float,
    width: int,
    height: int,
    fmt: Callable[[float | None], str],
    how: Aggregate = "mean",
    top: float | None = None,
    style: str = "cyan",
    flag_style: str = "bold red",
) -> list[Text]:
    """``height`` rows: a scale gutter (``top`` or the largest column, and 0) and the chart.

    A fixed ``top`` (100 % for utilization) keeps a flat line flat; without it the chart fills
    its height and the gutter says what the top is.
    """
    plot_w = max(4, width - GUTTER)
    columns = series.columns(span_s, plot_w, now_s, how) if series else [Column(None)] * plot_w
    peak = top if top is not None else max((c.value for c in columns if c.value), default=None)
    styles = [flag_style if c.flagged else style for c in columns]
    rows = sparkline([c.value for c in columns], plot_w, height, styles, top=peak)
    out = []
    for i, row in enumerate(rows):
        label = fmt(peak) if i == 0 else "0" if i == height - 1 else ""
        if height == 1:
            label = fmt(peak)
        out.append(Text(f"{label:>{GUTTER - 1}}", "dim") + Text("┤", "grey50") + row)
    return out


def time_axis(span_s: float, width: int, note: str = "") -> Text:
    """``-1m  ...note...  -30s  ...  now`` under a chart of ``width`` cells."""
    plot_w = max(4, width - GUTTER)
    left, mid = f"-{fmt_ago(span_s)}", f"-{fmt_ago(span_s / 2)}"
    cells = [" "] * plot_w
    _place(cells, 0, left)
    _place(cells, plot_w // 2 - len(mid) // 2, mid)
    _place(cells, plot_w - 3, "now")
    axis = Text(" " * GUTTER + "".join(cells), "dim")
    if note and len(note) + 2 < plot_w // 2 - len(mid) // 2 - len(left):
        start = GUTTER + len(left) + 2
        axis = axis[:start] + Text(note, "dim italic") + axis[start + len(note) :]
    return axis


def mini(
    series: SeriesView | None,
    *,
    span_s: float,
    now_s: float,
    width: int,
    top: float | None = None,
    style: str = "cyan",
) -> Text:
    """A one-row history for a gauge line (GPU, host, server); ``top`` fixes its range."""
    if width <= 0:
        return Text("")
    columns = series.columns(span_s, width, now_s) if series else [Column(None)] * width
    return sparkline([c.value for c in columns], width, 1, [style] * width, top=top)[0]


def fmt_ago(seconds: float) -> str:
    """``30s``, ``10m``, ``1h20m``: a span on a time axis."""
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m" if s % 60 == 0 or s >= 600 else f"{s // 60}m{s % 60:02d}"
    return f"{s // 3600}h{s % 3600 // 60:02d}"


def _place(cells: list[str], at: int, text: str) -> None:
    if len(text) > len(cells):
        return
    at = max(0, min(len(cells) - len(text), at))
    cells[at : at + len(text)] = list(text)
