"""The recent-requests list: the newest requests, failures in red, Enter (or a click on the
selected one) opens a record; the mouse wheel moves the selection.

Drawn as text, only the rows that fit: at a thousand requests a second a table widget that
re-renders its rows on every repaint took most of a core and, sharing the GIL with the
engine's thread, delayed its timestamps (bench/RESULTS.md, "With the live screen").
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from engine.metrics.summary import Slo
from engine.records import RequestRecord
from tui.format import fmt_s
from tui.live.state import LiveView

COLUMNS = (
    ("request", 11),
    ("profile", 13),
    ("status", 14),
    ("in", 6),
    ("out", 6),
    ("TTFT", 9),
    ("TPOT", 9),
    ("E2E", 8),
)
"""Header and width of each column, in cells, in display order."""
DROP_ORDER = ("profile", "in", "E2E", "out")
SCROLL_ROWS = 3
"""Requests the selection moves per turn of the mouse wheel."""
"""Columns left out, in this order, when the list is too narrow for all of them."""


class RequestList(Widget, can_focus=True):
    """The newest ``LiveView.recent`` records, newest at the bottom.

    The selection follows the newest request until a person moves it; then it stays on that
    request while newer ones arrive (``end`` follows again).
    """

    DEFAULT_CSS = "RequestList { height: 1fr; }"
    BINDINGS = [
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
        Binding("pageup", "move(-10)", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("home", "first", show=False),
        Binding("end", "follow", show=False),
        Binding("enter", "open", "record", show=False),
    ]

    @dataclass
    class Opened(Message):
        """A person asked to see a request's full record."""

        record: RequestRecord

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.records: tuple[RequestRecord, ...] = ()
        self.selected_id: str | None = None
        """The selected request, or ``None`` to follow the newest."""
        self.slo = Slo()
        """Each TTFT and TPOT cell is red over its own objective."""
        self._first_shown: str | None = None
        """The request drawn on the first row last time."""

    def paint(self, view: LiveView) -> None:
        if view.recent is not self.records:
            self.records = view.recent
            self.slo = view.slo
            self.refresh()

    def clear(self) -> None:
        self.records, self.selected_id = (), None
        self.refresh()

    def _index(self) -> int:
        if self.selected_id is not None:
            for i in range(len(self.records) - 1, -1, -1):
                if self.records[i].request_id == self.selected_id:
                    return i
        return len(self.records) - 1

    def selected_record(self) -> RequestRecord | None:
        """The request under the selection (the newest while following)."""
        index = self._index()
        return self.records[index] if index >= 0 else None

    def action_move(self, delta: int) -> None:
        if not self.records:
            return
        index = max(0, min(len(self.records) - 1, self._index() + delta))
        last = index == len(self.records) - 1
        self.selected_id = None if last else self.records[index].request_id
        self.refresh()

    def action_first(self) -> None:
        if self.records:
            self.selected_id = self.records[0].request_id
            self.refresh()

    def action_follow(self) -> None:
        self.selected_id = None
        self.refresh()

    def action_open(self) -> None:
        record = self.selected_record()
        if record is not None:
            self.post_message(self.Opened(record))

    def on_click(self, event: events.Click) -> None:
        """A click selects a request; a click on the selected one opens its record."""
        start, end = self._window()
        index = start + event.y - 1  # the first line is the header
        if not start <= index < end:
            return
        if index == self._index():
            self.action_open()
            return
        last = index == len(self.records) - 1
        self.selected_id = None if last else self.records[index].request_id
        self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.action_move(-SCROLL_ROWS)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.action_move(SCROLL_ROWS)

    def _window(self) -> tuple[int, int]:
        """The records drawn now, ``records[start:end]``: the newest while following, else
        where they were, scrolled only as far as keeps the selection in view (a row a person
        clicked stays under the pointer)."""
        rows = max(1, (self.content_size.height or 10) - 1)
        index, count = self._index(), len(self.records)
        if self.selected_id is None:
            start = count - rows
        else:
            shown = self._first_shown
            start = self._first_index(shown, index - rows + 1)
            start = min(max(start, index - rows + 1), index)
        start = max(0, min(start, count - rows))
        self._first_shown = self.records[start].request_id if count else None
        return start, min(count, start + rows)

    def _first_index(self, request_id: str | None, default: int) -> int:
        """Where the request drawn first last time is now (records move as new ones come)."""
        for i in range(len(self.records)):
            if self.records[i].request_id == request_id:
                return i
        return default

    def render(self) -> Text:
        columns = fit_columns(self.content_size.width or 80)
        index = self._index()
        start, end = self._window()
        lines = [Text("".join(f"{name:<{width}}" for name, width in columns), "bold")]
        for i in range(start, end):
            line = _row(self.records[i], columns, self.slo)
            if i == index:
                line.stylize("reverse" if self.has_focus else "on grey30")
            lines.append(line)
        if not self.records:
            lines.append(Text("no request has finished yet", "dim"))
        return Text("\n", no_wrap=True, overflow="crop").join(lines)


def fit_columns(width: int) -> list[tuple[str, int]]:
    """The columns that fit in ``width`` cells, dropping ``DROP_ORDER`` first."""
    columns = list(COLUMNS)
    for name in DROP_ORDER:
        if sum(w for _, w in columns) <= width:
            break
        columns = [c for c in columns if c[0] != name]
    return columns


def _row(r: RequestRecord, columns: list[tuple[str, int]], slo: Slo) -> Text:
    if r.ok:
        status = Text("warm-up" if r.warmup else "ok", "dim" if r.warmup else "green")
    else:
        status = Text(str(r.error_kind), "bold red")
    style = "" if r.ok else "red"
    cells = {
        "request": Text(r.request_id, style),
        "profile": Text(r.profile, style),
        "status": status,
        "in": Text(_count(r.prompt_tokens), style),
        "out": Text(_count(r.completion_tokens), style),
        "TTFT": Text(fmt_s(r.ttft_s), _over(r.ttft_s, slo.ttft_s) or style),
        "TPOT": Text(fmt_s(r.tpot_s), _over(r.tpot_s, slo.tpot_s) or style),
        "E2E": Text(fmt_s(r.e2e_s), style),
    }
    line = Text(no_wrap=True, overflow="crop")
    for name, width in columns:
        cell = cells[name]
        cell.truncate(width - 1, overflow="ellipsis")
        line.append_text(cell)
        line.append(" " * (width - cell.cell_len))
    return line


def _over(value: float | None, limit: float | None) -> str:
    """The style of a figure over its SLO ("" when within it or when there is none)."""
    return "bold red" if value is not None and limit is not None and value > limit else ""


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)
