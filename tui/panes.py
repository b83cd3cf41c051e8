"""The live screen's panes. Each paints itself from a ``LiveView``; none holds run state.

Tables are updated row by row (by key) so a person's cursor and scroll survive repaints.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable

from engine.queue import EntryStatus, QueueEntry
from engine.records import RequestRecord
from tui import render
from tui.live import METRICS, LiveView

MAX_TABLE_ROWS = 100
"""Rows kept in the recent-requests table (the newest; all records are on disk)."""
STATUS_MARK = {EntryStatus.QUEUED: ("·", "dim"), EntryStatus.RUNNING: ("▶", "bold green"),
               EntryStatus.DONE: ("✓", "green"), EntryStatus.STOPPED: ("■", "yellow"),
               EntryStatus.FAILED: ("✗", "bold red"), EntryStatus.SKIPPED: ("-", "dim")}
METRIC_LABEL = {"ttft_s": "TTFT", "tpot_s": "TPOT", "itl_s": "ITL", "e2e_s": "E2E"}


class TextPane(Widget):
    """A pane drawn from the latest view when Textual renders it, at its size then: a
    repaint that comes before layout can never leave text drawn for the wrong width.
    """

    DEFAULT_CSS = "TextPane { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._view: LiveView | None = None

    def paint(self, view: LiveView) -> None:
        self._view = view
        self.refresh(layout=True)

    def render(self) -> Text:
        if self._view is None:
            return Text("")
        width = max(10, self.content_size.width or 40)
        height = max(1, self.content_size.height or 3)
        return Text("\n").join(self.lines(self._view, width, height))

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
    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return render.gpu_lines(view, width)


class ServerPane(TextPane):
    def paint(self, view: LiveView) -> None:
        self.display = view.server_metrics is not None
        if view.server_metrics is not None:
            self.border_title = f"Server ({view.server_metrics.get('family', '?')} /metrics)"
        super().paint(view)

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return render.server_lines(view)


class QueueTable(DataTable):
    """The scenario queue; the cursor selects the entry that keys act on."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column(" ", key="mark", width=1)
        self.add_column("scenario", key="name")
        self.add_column("progress", key="progress")
        self._shown: tuple[QueueEntry, ...] = ()

    def paint(self, view: LiveView) -> None:
        if view.queue != self._shown:
            self._rebuild(view.queue)
        running = next((e for e in view.queue if e.status is EntryStatus.RUNNING), None)
        if running is not None:
            self.update_cell(str(running.entry_id), "progress", _progress(running, view))

    def _rebuild(self, entries: tuple[QueueEntry, ...]) -> None:
        selected = self.selected_entry()
        self.clear()
        for entry in entries:
            mark, style = STATUS_MARK[entry.status]
            name_style = "bold reverse" if entry.status is EntryStatus.RUNNING else style
            self.add_row(Text(mark, style), Text(entry.name, name_style),
                         _progress(entry, None), key=str(entry.entry_id))
        self._shown = entries
        ids = [e.entry_id for e in entries]
        if selected in ids:
            self.move_cursor(row=ids.index(selected), animate=False)

    def selected_entry(self) -> int | None:
        """The entry id under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        return int(row_key.value) if row_key.value is not None else None


def _progress(entry: QueueEntry, view: LiveView | None) -> Text:
    if entry.status is EntryStatus.RUNNING and view is not None and view.current is not None:
        now = view.current
        if now.warmup:
            return Text("warm-up", "cyan")
        planned = now.planned_total or entry.profile.requests
        done = f"{now.finished_total}/{planned}" if planned else f"{now.finished_total}"
        bar = render.bar(now.finished_total / planned, 8) if planned else Text("")
        return bar + Text(f" {done}")
    if entry.status is EntryStatus.QUEUED:
        return Text(entry.profile.load_label, "dim")
    if entry.status in (EntryStatus.RUNNING, EntryStatus.SKIPPED):
        return Text(str(entry.status), "dim")
    failed = Text(f" {entry.failed} failed", "red") if entry.failed else Text("")
    return Text(f"{entry.finished} req") + failed


class RequestsTable(DataTable):
    """The newest requests; failures in red with their error kind. Enter opens the record."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for key, label in (("id", "request"), ("profile", "profile"), ("status", "status"),
                           ("in", "in"), ("out", "out"), ("ttft", "TTFT"), ("tpot", "TPOT"),
                           ("e2e", "E2E")):
            self.add_column(label, key=key)
        self.records: dict[str, RequestRecord] = {}

    def paint(self, view: LiveView) -> None:
        following = not self.row_count or self.cursor_row >= self.row_count - 1
        fresh = [r for r in view.recent[-MAX_TABLE_ROWS:] if r.request_id not in self.records]
        if not fresh:
            return
        if following:
            # Rebuilt, not trimmed: after remove_row the row indices settle only on the next
            # refresh, and the cursor would land on a stale row.
            self.clear()
            self.records.clear()
            fresh = list(view.recent[-MAX_TABLE_ROWS:])
        for record in fresh:
            self.records[record.request_id] = record
            self.add_row(*_request_cells(record), key=record.request_id)
        while len(self.records) > MAX_TABLE_ROWS:
            oldest = next(iter(self.records))
            del self.records[oldest]
            self.remove_row(oldest)
        if following:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def selected_record(self) -> RequestRecord | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        return self.records.get(str(row_key.value))


def _request_cells(r: RequestRecord) -> list[Text]:
    if r.ok:
        status = Text("warm-up" if r.warmup else "ok", "dim" if r.warmup else "green")
    else:
        status = Text(str(r.error_kind), "bold red")
    style = "" if r.ok else "red"
    return [Text(r.request_id, style), Text(r.profile, style), status,
            Text(_count(r.prompt_tokens), style), Text(_count(r.completion_tokens), style),
            Text(render.fmt_s(r.ttft_s), style), Text(render.fmt_s(r.tpot_s), style),
            Text(render.fmt_s(r.e2e_s), style)]


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


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
            label = Text(row.profile if row.exact else f"{row.profile} ~live",
                         "bold" if row.exact else "cyan")
            for index, metric in enumerate(METRICS):
                dist = row.metrics.get(metric)
                cells = ([str(dist.count)] + [render.fmt_s(getattr(dist, k)) for k in
                                              ("mean", "p50", "p90", "p99")]
                         if dist else ["0", "-", "-", "-", "-"])
                self.add_row(label if index == 0 else "", METRIC_LABEL[metric], *cells)
