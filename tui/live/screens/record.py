"""One request's record: its timeline drawn to scale, then every field as saved.

The timeline puts each instant the engine stamped (sent, connection ready, headers, first
byte, first token, last token, end) on one axis from the send to the end, and every token's
arrival when the run kept the gaps (``--save-itl``); without them the gap statistics stand in.
"""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from engine.records import RequestRecord
from tui.format import fmt_s

STAMPS = (
    ("sent", "sent_ns", "S"),
    ("connection", "connection_ready_ns", "C"),
    ("headers", "headers_ns", "H"),
    ("first byte", "first_chunk_ns", "B"),
    ("first token", "first_token_ns", "T"),
    ("last token", "last_token_ns", "L"),
    ("end", "end_ns", "E"),
)
"""The instants on a request's timeline: label, record field, mark on the axis."""
TIMELINE_WIDTH = 80
"""Cells of the drawn axis (the dialog is 90 wide; narrower terminals get less)."""


def timeline_lines(r: RequestRecord, width: int = TIMELINE_WIDTH) -> list[Text]:
    """The axis with a mark per instant and a tick per token, then each instant's time."""
    start = r.sent_ns if r.sent_ns is not None else r.scheduled_ns
    span = max(1, r.end_ns - start)
    width = max(20, width)
    stamps = [(label, getattr(r, field), mark) for label, field, mark in STAMPS]
    stamps = [(label, t, mark) for label, t, mark in stamps if t is not None]

    def col(t_ns: float) -> int:
        return min(width - 1, max(0, round((t_ns - start) / span * (width - 1))))

    axis = ["─"] * width
    styles = ["grey50"] * width
    if r.first_token_ns is not None and r.last_token_ns is not None:
        for c in range(col(r.first_token_ns), col(r.last_token_ns) + 1):
            axis[c], styles[c] = "━", "green"
    for t in _token_times(r):
        axis[col(t)], styles[col(t)] = "┃", "bold green"
    for (_, _, mark), at in zip(stamps, _in_order([col(t) for _, t, _ in stamps], width)):
        axis[at], styles[at] = mark, "bold reverse"
    line = Text()
    for char, style in zip(axis, styles):
        line.append(char, style)
    lines = [Text(f"timeline, to scale: {fmt_s(span / 1e9)} from send to end", "bold"), line]
    lines.append(Text("0" + " " * (width - 1 - len(fmt_s(span / 1e9))) + fmt_s(span / 1e9), "dim"))
    for label, t, mark in stamps:
        lines.append(
            Text.assemble(
                (f" {mark} ", "bold reverse"), f" {label:<12} +{fmt_s((t - start) / 1e9)}"
            )
        )
    lines.append(_gaps(r))
    return lines


def _in_order(columns: list[int], width: int) -> list[int]:
    """One cell per mark, in time order: instants microseconds apart would share a cell, so
    each later one moves right of the one before, and back left from the axis's end."""
    placed: list[int] = []
    for at in columns:
        placed.append(max(at, placed[-1] + 1) if placed else at)
    for i in range(len(placed) - 1, -1, -1):
        limit = width - 1 if i == len(placed) - 1 else placed[i + 1] - 1
        placed[i] = max(0, min(placed[i], limit))
    return placed


def _token_times(r: RequestRecord) -> list[float]:
    """Each token's arrival, when the run saved the gaps between them."""
    if r.first_token_ns is None or not r.itl_s:
        return []
    times, t = [float(r.first_token_ns)], float(r.first_token_ns)
    for gap in r.itl_s:
        t += gap * 1e9
        times.append(t)
    return times


def _gaps(r: RequestRecord) -> Text:
    if r.itl is None:
        return Text(" token gaps: fewer than two token-bearing chunks", "dim")
    i = r.itl
    ticks = "each ┃ is a token" if r.itl_s else "run with --save-itl to draw each token"
    return Text(
        f" token gaps ({i.count}): mean {fmt_s(i.mean_s)}, p50 {fmt_s(i.p50_s)}, "
        f"p99 {fmt_s(i.p99_s)}, max {fmt_s(i.max_s)} ({ticks})"
    )


class RecordScreen(ModalScreen[None]):
    """A request's timeline and every field of its record, as saved in requests.jsonl."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "close")]

    def __init__(self, record: RequestRecord) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        text = json.dumps(self.record.model_dump(mode="json"), indent=2)
        width = min(TIMELINE_WIDTH, self.app.size.width - 8)
        with VerticalScroll(id="dialog"):
            yield Label(f"[b]{self.record.request_id}[/b] ({self.record.profile})")
            yield Static(Text("\n").join(timeline_lines(self.record, width)))
            yield Static(Text(text))
