"""The live screen's panes. Each paints itself from a ``LiveView``; none holds run state.

Tables are updated row by row (by key) so a person's cursor and scroll survive repaints.
"""

from __future__ import annotations

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widget import Widget
from textual.widgets import DataTable

from engine.workload.queue import EntryStatus, QueueEntry
from tui.format import fmt_s
from tui.live import render
from tui.live.state import METRICS, LiveView

STATUS_MARK = {
    EntryStatus.QUEUED: ("·", "dim"),
    EntryStatus.RUNNING: ("▶", "bold green"),
    EntryStatus.DONE: ("✓", "green"),
    EntryStatus.STOPPED: ("■", "yellow"),
    EntryStatus.FAILED: ("✗", "bold red"),
    EntryStatus.SKIPPED: ("-", "dim"),
}
METRIC_LABEL = {"ttft_s": "TTFT", "tpot_s": "TPOT", "itl_s": "ITL", "e2e_s": "E2E"}


class TextPane(Widget):
    """A pane drawn from the latest view when Textual renders it, at its size then: a
    repaint that comes before layout can never leave text drawn for the wrong width.
    """

    DEFAULT_CSS = "TextPane { height: auto; }"
    crop = True
    """Lines longer than the pane are cut with an ellipsis (else they wrap)."""

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

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        raise NotImplementedError


class HeaderBar(TextPane):
    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return [render.header(view)]


class LatencyPane(TextPane):
    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return render.latency_lines(view, width, height)


class ThroughputPane(TextPane):
    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return render.throughput_lines(view, width, height)


class GpuPane(TextPane):
    crop = False  # the reason there is no GPU may take two lines

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return render.gpu_lines(view, width)


class ServerPane(TextPane):
    def paint(self, view: LiveView) -> None:
        self.display = view.server_metrics is not None
        if view.server_metrics is not None:
            self.border_title = f"Server ({view.server_metrics.family} /metrics)"
        super().paint(view)

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return render.server_lines(view)


class QueueTable(DataTable):
    """The scenario queue; the cursor selects the entry that keys act on."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column(" ", key="mark", width=1)
        self.add_column("scenario", key="name")
        self.add_column("progress", key="progress", width=15)
        self._shown: tuple[QueueEntry, ...] = ()
        self._progress = Text("")

    def paint(self, view: LiveView) -> None:
        if view.queue != self._shown:
            self._rebuild(view.queue)
        running = next((e for e in view.queue if e.status is EntryStatus.RUNNING), None)
        if running is not None:
            progress = _progress(running, view)
            if progress != self._progress:
                self._progress = progress
                self.update_cell(str(running.entry_id), "progress", progress)

    def _rebuild(self, entries: tuple[QueueEntry, ...]) -> None:
        selected = self.selected_entry()
        self.clear()
        for entry in entries:
            mark, style = STATUS_MARK[entry.status]
            name_style = "bold reverse" if entry.status is EntryStatus.RUNNING else style
            self.add_row(
                Text(mark, style),
                Text(entry.name, name_style),
                _progress(entry, None),
                key=str(entry.entry_id),
            )
        self._shown = entries
        ids = [e.entry_id for e in entries]
        if selected in ids:
            self.move_cursor(row=ids.index(selected), animate=False)

    def selected_entry(self) -> int | None:
        """The entry id under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0))
        return int(row_key.value) if row_key.value is not None else None


def _progress(entry: QueueEntry, view: LiveView | None) -> Text:
    if entry.status is EntryStatus.RUNNING and view is not None and view.current is not None:
        now = view.current
        if now.warmup:
            return Text(f"warm-up {now.finished_total}/{now.planned_total}", "cyan")
        planned = now.planned_total or entry.profile.requests
        done = f"{now.finished_total}/{planned}" if planned else f"{now.finished_total}"
        bar = (
            render.bar(now.finished_total / planned, 6, "cyan", warn=False) if planned else Text("")
        )
        return bar + Text(f" {done}")
    if entry.status is EntryStatus.QUEUED:
        return Text(entry.profile.load_label, "dim")
    if entry.status in (EntryStatus.RUNNING, EntryStatus.SKIPPED):
        return Text(str(entry.status), "dim")
    failed = Text(f" {entry.failed} failed", "red") if entry.failed else Text("")
    return Text(f"{entry.finished} req") + failed


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
