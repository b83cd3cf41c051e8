"""Pure functions that turn a ``LiveView`` into rich ``Text`` for the panes.

No Textual here: each function takes the view and the space it has, so a pane is a thin
widget and the drawing is testable on its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from tui.format import fmt_elapsed
from tui.live.state import LiveView

if TYPE_CHECKING:
    from tui.live.charts import Span

BLOCKS = " ▁▂▃▄▅▆▇█"
"""Eighth-height blocks: a sparkline column of height h has 8*h levels."""
REASON_CHARS = 60
"""A failure's reason in the header is shortened to this; the notice has it whole."""
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
    values: Sequence[float | None],
    width: int,
    height: int = 1,
    styles: Sequence[str] | None = None,
    *,
    top: float | None = None,
) -> list[Text]:
    """The last ``width`` values as ``height`` rows of block characters, scaled 0..``top``
    (default: their maximum; a value above a fixed ``top`` fills the column).

    ``styles`` gives each value its own style (an SLO breach in red); ``None`` values are gaps.
    """
    width, height = max(1, width), max(1, height)
    tail = list(values)[-width:]
    style_tail = list(styles)[-width:] if styles is not None else ["cyan"] * len(tail)
    top = top or max((v for v in tail if v is not None), default=0.0) or 1.0
    cells: list[list[tuple[str, str]]] = [[] for _ in range(height)]
    for value, style in zip(tail, style_tail):
        level = 0 if value is None else max(1, min(8 * height, round(value / top * 8 * height)))
        for row in range(height):
            floor = (height - 1 - row) * 8
            cells[row].append((BLOCKS[max(0, min(8, level - floor))], style))
    # One span per run of a style, not per cell: Textual's cost is per span when it draws.
    rows = []
    for row_cells in cells:
        text = Text()
        for style, run in itertools.groupby(row_cells, key=lambda cell: cell[1]):
            text.append("".join(char for char, _ in run), style)
        rows.append(text)
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


def header(
    view: LiveView,
    width: int = 200,
    span: Span | None = None,
    replay: tuple[float, float] | None = None,
) -> Text:
    """One line: status (and a replay's time), failures so far and why, elapsed, server,
    model, the charts' span, results folder; the least needed parts go first when it is
    narrow, so no part is ever cut."""
    status = view.status
    parts: list[tuple[int, Text]] = []
    if replay is not None:
        parts.append(
            (
                0,
                Text(
                    f" REPLAY {fmt_elapsed(replay[0])}/{fmt_elapsed(replay[1])} ",
                    "reverse bold magenta",
                ),
            )
        )
    parts.append((0, Text(f" {status.upper()} ", f"reverse {STATUS_STYLE.get(status, '')}")))
    parts.append((1, Text(fmt_elapsed(view.elapsed_s), "bold")))
    failure = _failure(view)
    if failure is not None:
        parts.append((1, failure))
    server = Text(view.url or "no server yet", "bold")
    if view.server_kind:
        server.append(f" ({view.server_kind})", "cyan")
    parts.append((3, server))
    parts.append((4, Text(f"model {view.model or '-'}")))
    if span is not None:
        parts.append((2, Text(f"charts: {span.label} (w)", "dim")))
    if view.results_dir:
        parts.append((5, Text(f"-> {view.results_dir}", "dim")))
    for drop in (5, 4, 3, 2):
        line = Text("  ").join(p for _, p in parts)
        if line.cell_len <= width:
            return line
        parts = [(rank, p) for rank, p in parts if rank < drop]
    return Text("  ").join(p for _, p in parts)


def _failure(view: LiveView) -> Text | None:
    """Failed requests so far and the latest reason, or the run's own failure."""
    failed = view.totals.get("failed", 0)
    if view.summary is not None and view.summary.error:
        return Text(f"✗ {_clip(view.summary.error, REASON_CHARS)}", "bold red")
    if not failed:
        return None
    errors = [p.last_error for p in view.progress.values() if p.last_error]
    reason = f": {_clip(errors[-1], REASON_CHARS)}" if errors else ""
    return Text(f"✗ {failed} failed{reason}", "bold red")


def _clip(text: str, chars: int) -> str:
    """Prose (never a figure) shortened at a word, the rest in the Notices tab."""
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    return text[: chars - 1].rsplit(" ", 1)[0] + "…"


def fit(parts: Sequence[Sequence[Text]], width: int, sep: str = "") -> Text:
    """Parts side by side in ``width`` cells, each given longest form first (an empty last
    form lets it go): the least important (last) part shortens first; a part is never cut
    in the middle."""
    choice = [0] * len(parts)

    def line() -> Text:
        chosen = [p[c] for p, c in zip(parts, choice) if c < len(p)]
        return Text(sep).join(t for t in chosen if t.cell_len)

    for i in range(len(parts) - 1, 0, -1):
        while line().cell_len > width and choice[i] < len(parts[i]) - 1:
            choice[i] += 1
    return line()


def first_fitting(candidates: Sequence[Sequence[Text]], width: int) -> Text:
    """The first line, of parts joined, that fits ``width``, in the order a person would
    rather lose things; the last candidate is taken whatever its length."""
    for parts in candidates:
        line = Text("").join(parts)
        if line.cell_len <= width:
            return line
    return Text("").join(candidates[-1])
