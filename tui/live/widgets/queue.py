"""The scenario queue: each entry's state and, for the running one, its progress as it goes.

A click or the arrows move the selection; Enter (not a click: a stray click must not stop a
scenario) asks to run the selected entry now. Column widths follow the pane: the progress
column is as wide as its widest figure and the name takes the rest, so a count is never cut
("6/40", not "6/4"); a long name is shortened instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from engine.workload.queue import EntryStatus, QueueEntry
from tui.live import render
from tui.live.state import LiveView, Progress

STATUS_MARK = {
    EntryStatus.QUEUED: ("·", "dim"),
    EntryStatus.RUNNING: ("▶", "bold green"),
    EntryStatus.DONE: ("✓", "green"),
    EntryStatus.STOPPED: ("■", "yellow"),
    EntryStatus.FAILED: ("✗", "bold red"),
    EntryStatus.SKIPPED: ("-", "dim"),
}
PROGRESS_BAR = 5
"""Cells of the running entry's progress bar, when the pane has room for it."""


class QueueTable(DataTable):
    """The scenario queue; the cursor selects the entry that keys act on."""

    BINDINGS = [Binding("enter", "switch", "run now", show=False)]

    @dataclass
    class SwitchAsked(Message):
        """A person asked to run the selected entry now."""

        entry_id: int

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self._shown: tuple[tuple[Text, Text, Text], ...] = ()
        self._widths = (0, 0)
        self._entries: tuple[QueueEntry, ...] = ()
        self._view: LiveView | None = None

    def on_resize(self) -> None:
        """Column widths follow the pane even when no new event comes (a finished run)."""
        if self._view is not None:
            self.paint(self._view)

    def paint(self, view: LiveView) -> None:
        self._view = view
        width = max(12, self.content_size.width or self.size.width or 30)
        rows = tuple(_row(entry, view, width) for entry in view.queue)
        progress_w = max([len("progress"), *(r[2].cell_len for r in rows)])
        widths = (progress_w, width)
        if rows == self._shown and widths == self._widths:
            return
        same_entries = [e.entry_id for e in view.queue] == [e.entry_id for e in self._entries]
        if same_entries and widths == self._widths:
            for entry, new, old in zip(view.queue, rows, self._shown):
                for key, cell, was in zip(("mark", "name", "progress"), new, old):
                    if cell != was:
                        self.update_cell(str(entry.entry_id), key, cell)
        else:
            self._rebuild(view.queue, rows, progress_w, width)
        self._shown, self._widths, self._entries = rows, widths, view.queue

    def _rebuild(
        self,
        entries: tuple[QueueEntry, ...],
        rows: tuple[tuple[Text, Text, Text], ...],
        progress_w: int,
        width: int,
    ) -> None:
        selected = self.selected_entry()
        self.clear(columns=True)
        # Each column has one cell of padding either side: 6 cells for three columns.
        name_w = max(4, width - progress_w - 1 - 6)
        self.add_column(" ", key="mark", width=1)
        self.add_column("scenario", key="name", width=name_w)
        self.add_column("progress", key="progress", width=progress_w)
        for entry, (mark, name, progress) in zip(entries, rows):
            name.truncate(name_w, overflow="ellipsis")
            self.add_row(mark, name, progress, key=str(entry.entry_id))
        ids = [e.entry_id for e in entries]
        if selected in ids:
            self.move_cursor(row=ids.index(selected), animate=False)

    def selected_entry(self) -> int | None:
        """The entry id under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0))
        return int(row_key.value) if row_key.value is not None else None

    def action_switch(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.post_message(self.SwitchAsked(entry))


def _row(entry: QueueEntry, view: LiveView, width: int) -> tuple[Text, Text, Text]:
    progress = view.progress.get(entry.name)
    mark, style = STATUS_MARK[entry.status]
    failing = entry.status is EntryStatus.RUNNING and progress is not None and progress.failed
    if failing:  # failures show as they happen, not only when the scenario ends
        mark, style = "✗", "bold red"
    name_style = "bold reverse" if entry.status is EntryStatus.RUNNING else style
    return (
        Text(mark, style),
        Text(entry.name, name_style),
        progress_cell(entry, view, progress, room=width >= 40),
    )


def progress_cell(
    entry: QueueEntry, view: LiveView, progress: Progress | None, *, room: bool = True
) -> Text:
    """``▰▰▱ 6/40``, ``warm-up 2/8``, ``40 req 3 failed``, or the load of a queued entry."""
    p = progress or Progress()
    if entry.status is EntryStatus.RUNNING:
        now = view.current
        if now is not None and now.warmup:
            warmup = entry.profile.warmup_requests
            return Text(f"warm-up {p.warmup_finished}/{warmup}", "cyan")
        planned = entry.profile.requests
        done = Text(f"{p.finished}/{planned}" if planned else f"{p.finished} req")
        if p.failed:
            done.append(f" {p.failed}✗", "bold red")
        if planned and room:
            return render.bar(p.finished / planned, PROGRESS_BAR, "cyan", warn=False) + " " + done
        return done
    if entry.status is EntryStatus.QUEUED:
        return Text(entry.profile.load_label, "dim")
    if entry.status is EntryStatus.SKIPPED:
        return Text("skipped", "dim")
    failed = Text(f" {entry.failed}✗", "bold red") if entry.failed else Text("")
    return Text(f"{entry.finished} req") + failed
