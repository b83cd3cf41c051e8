"""The base of the text panes, the header line and the latency table. Each pane paints
itself from a ``LiveView``; none holds run state. The charts, the GPU/host pane, the queue
and the results are in their own modules beside this one.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable

from tui.format import fmt_s
from tui.live import render
from tui.live.charts import SPANS, Span
from tui.live.state import METRICS, LiveView

METRIC_LABEL = {"ttft_s": "TTFT", "tpot_s": "TPOT", "itl_s": "ITL", "e2e_s": "E2E"}


class TextPane(Widget):
    """A pane drawn from the latest view when Textual renders it, at its size then: a
    repaint that comes before layout can never leave text drawn for the wrong width.
    """

    DEFAULT_CSS = "TextPane { height: auto; }"
    crop = True
    """Lines longer than the pane are cut with an ellipsis (else they wrap)."""
    span: Span = SPANS[0]
    """The time the charts cover (the app sets it on every pane: ``w``)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._view: LiveView | None = None
        self._lines: list[Text] = []
        self._drawn_size = (0, 0)

    def paint(self, view: LiveView) -> None:
        lines = self._draw(view)
        if lines == self._lines:
            return
        # A new layout only when the pane's height may change: layout is the costly part.
        resized = len(lines) != len(self._lines)
        self._lines = lines
        self.refresh(layout=resized)

    def _draw(self, view: LiveView) -> list[Text]:
        self._view = view
        self._drawn_size = (
            max(10, self.content_size.width or 40),
            max(1, self.content_size.height or 3),
        )
        return self.lines(view, *self._drawn_size)

    def render(self) -> Text:
        if self._view is None:
            return Text("")
        size = (max(10, self.content_size.width or 40), max(1, self.content_size.height or 3))
        if size != self._drawn_size:
            self._lines = self._draw(self._view)
        lines = self._lines
        if self.crop:
            # A wrapped line would push the pane's last lines out of its fixed height.
            lines = [
                line[: size[0] - 1] + Text("…", "dim") if line.cell_len > size[0] else line
                for line in lines
            ]
        return Text("\n").join(lines)

    def redraw(self) -> None:
        """Draw again from the last view (the span changed)."""
        if self._view is not None:
            self._lines = self._draw(self._view)
            self.refresh(layout=True)

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        raise NotImplementedError


class HeaderBar(TextPane):
    replay: tuple[float, float] | None = None
    """A replay's cursor and length, seconds (``None`` in a live run)."""

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return [render.header(view, width, self.span, self.replay)]


class LatencyTable(DataTable):
    """Count, mean, p50, p90, p99 of TTFT, TPOT, ITL and E2E per profile."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for key in ("profile", "metric", "count", "mean", "p50", "p90", "p99"):
            self.add_column(key, key=key)
        self._shown: tuple = ()

    def paint(self, view: LiveView) -> None:
        if view.latency == self._shown:
            return
        self._shown = view.latency
        self.clear()
        for row in view.latency:
            label = Text(
                row.profile if row.exact else f"{row.profile} ~live",
                "bold" if row.exact else "cyan",
            )
            for index, metric in enumerate(METRICS):
                dist = row.metrics.get(metric)
                cells = (
                    [str(dist.count)]
                    + [fmt_s(getattr(dist, k)) for k in ("mean", "p50", "p90", "p99")]
                    if dist
                    else ["0", "-", "-", "-", "-"]
                )
                self.add_row(label if index == 0 else "", METRIC_LABEL[metric], *cells)
