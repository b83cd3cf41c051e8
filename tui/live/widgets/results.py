"""Results as they come: a row per scenario that fills in when it ends, and the ladder of a
concurrency or rate sweep as it climbs, with its knee once the engine can name it.

The table's figures are the engine's exact ``ProfileSummary`` (the same as the console's and
``summary.json``); the running scenario's row is its live sample, marked ``~``. The ladder
groups scenarios as ``engine.metrics.knee`` does (profiles that differ only in load) and
draws throughput and p99 latency against load, each bar scaled to the sweep's largest.
"""

from __future__ import annotations

import json

from rich.text import Text
from textual.widgets import DataTable

from engine.metrics.knee import LOAD_FIELDS, MIN_STEPS, Knee, find_knees
from engine.metrics.summary import Distribution, Slo
from engine.workload.profile import Profile
from engine.workload.queue import EntryStatus, QueueEntry
from tui.format import fmt_num, fmt_s
from tui.live.render import bar, fit
from tui.live.state import LiveView
from tui.live.widgets.panes import TextPane
from tui.live.widgets.queue import STATUS_MARK

RESULT_COLUMNS = (
    "",
    "scenario",
    "load",
    "ok/all",
    "out tok/s",
    "TTFT p50/p99",
    "TPOT p50/p99",
    "goodput/s",
)
"""The results table's header: every figure is over the scenario's whole measured window."""


class ResultsTable(DataTable):
    """A row per scenario that ran: exact when it ended, ``~`` live while it runs."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for name in RESULT_COLUMNS:
            self.add_column(name, key=name or "mark")
        self._shown: tuple[tuple[Text, ...], ...] = ()

    def paint(self, view: LiveView) -> None:
        cells = (result_row(e, view) for e in view.queue if e.status != EntryStatus.QUEUED)
        rows = tuple(r for r in cells if r is not None)
        if rows == self._shown:
            return
        self._shown = rows
        self.clear()
        for row in rows:
            self.add_row(*row)


def result_row(entry: QueueEntry, view: LiveView) -> tuple[Text, ...] | None:
    """One scenario's cells: the engine's summary once it has one, else what its records
    said so far (``~``); ``None`` for one that never ran."""
    exact = next((s for s in view.finished if s.profile == entry.name), None)
    mark = Text(*STATUS_MARK[entry.status])
    if exact is not None:
        return (
            mark,
            Text(entry.name, "bold"),
            Text(exact.load),
            _ok(exact.successes, exact.requests),
            Text(fmt_num(exact.output_tokens_per_s)),
            *_latency(exact.ttft_s, exact.tpot_s, view.slo),
            Text(fmt_num(exact.goodput_rps)),
        )
    if entry.status is EntryStatus.SKIPPED:
        return None
    row = next((r for r in view.latency if r.profile == entry.name), None)
    progress = view.progress.get(entry.name)
    done = progress.finished if progress else 0
    failed = progress.failed if progress else 0
    ttft, tpot = (row.metrics.get("ttft_s"), row.metrics.get("tpot_s")) if row else (None, None)
    return (
        mark,
        Text(f"{entry.name} ~", "cyan"),
        Text(entry.profile.load_label),
        _ok(done - failed, done),
        Text("running" if entry.status is EntryStatus.RUNNING else str(entry.status), "dim"),
        *_latency(ttft, tpot, view.slo),
        Text("-", "dim"),
    )


def _ok(ok: int, total: int) -> Text:
    return Text(f"{ok}/{total}", "bold red" if ok < total else "")


def _latency(ttft: Distribution | None, tpot: Distribution | None, slo: Slo) -> list[Text]:
    """``143/185 ms`` for each, the p99 red when over that metric's own SLO."""
    cells = []
    for dist, limit in ((ttft, slo.ttft_s), (tpot, slo.tpot_s)):
        if dist is None:
            cells.append(Text("-", "dim"))
            continue
        over = limit is not None and dist.p99 > limit
        p50, p99 = fmt_s(dist.p50), fmt_s(dist.p99)
        unit = p99.split()[-1]
        if p50.endswith(f" {unit}"):  # one unit for both: "143/185 ms"
            p50 = p50.rsplit(" ", 1)[0]
        cells.append(Text.assemble(f"{p50}/", (p99, "bold red" if over else "")))
    return cells


def sweeps(view: LiveView) -> list[list[QueueEntry]]:
    """Queue entries that make a sweep (at least ``MIN_STEPS`` loads), lowest load first."""
    groups: dict[str, list[QueueEntry]] = {}
    for entry in view.queue:
        if entry.status is EntryStatus.SKIPPED:
            continue
        groups.setdefault(_group_key(entry.profile), []).append(entry)
    found = [g for g in groups.values() if len({_load(e.profile) for e in g}) >= MIN_STEPS]
    return [sorted(g, key=lambda e: _load(e.profile)) for g in found]


def _group_key(profile: Profile) -> str:
    """Profiles that differ only in load (and how long each step runs) share a key, as in
    ``engine.metrics.knee``."""
    dump = profile.model_dump(mode="json")
    kind = "c" if profile.concurrency is not None else "r"
    rest = {k: v for k, v in dump.items() if k not in LOAD_FIELDS}
    return kind + json.dumps(rest, sort_keys=True, default=str)


def _load(profile: Profile) -> float:
    return float(profile.concurrency if profile.concurrency is not None else profile.rate_rps or 0)


def ladder_lines(view: LiveView, width: int) -> list[Text]:
    """Each sweep: a row per step with throughput and p99 bars, the knee marked when known."""
    groups = sweeps(view)
    if not groups:
        return [
            Text(
                f" No sweep in this run: {MIN_STEPS} or more scenarios that differ only in "
                "concurrency or rate (a suite's concurrency_ladder) show here as they climb.",
                "dim",
            )
        ]
    knees = view.summary.knees if view.summary else _knees(view)
    lines: list[Text] = []
    for group in groups:
        knee = next((k for k in knees if {s.profile for s in k.steps} <= _names(group)), None)
        lines += _sweep(view, group, knee, width)
    return lines


def _names(group: list[QueueEntry]) -> set[str]:
    return {e.name for e in group}


def _knees(view: LiveView) -> list[Knee]:
    return find_knees(view.finished, [e.profile for e in view.queue], view.slo)


def _sweep(view: LiveView, group: list[QueueEntry], knee: Knee | None, width: int) -> list[Text]:
    done = {s.profile: s for s in view.finished}
    steps = [(e, done.get(e.name)) for e in group]
    top_tok = max((s.output_tokens_per_s for _, s in steps if s), default=0.0) or 1.0
    top_ttft = max((_p99(s.ttft_s) or 0 for _, s in steps if s), default=0.0) or 1.0
    bar_w = max(3, min(20, (width - 77) // 2))
    head = fit(
        [
            [Text(f" sweep of {len(group)} steps", "bold")],
            [Text(f"  ({sum(1 for _, s in steps if s)} done)", "dim")],
            [
                Text("  out tok/s and TTFT p99 against load, bars scaled to the largest", "dim"),
                Text("  out tok/s and TTFT p99 against load", "dim"),
                Text(),
            ],
        ],
        width,
    )
    lines = [head]
    for entry, s in steps:
        load = f"{entry.profile.load_label:<10}"
        mark = Text(*STATUS_MARK[entry.status])
        if s is None:
            lines.append(Text(" ") + mark + Text(f" {load} {entry.status}", "dim"))
            continue
        line = Text(" ") + mark + Text(f" {load} ")
        line += bar(s.output_tokens_per_s / top_tok, bar_w, "green", warn=False)
        line += Text(f" {fmt_num(s.output_tokens_per_s):>6} tok/s  TTFT p99 ")
        ttft = _p99(s.ttft_s)
        line += bar((ttft or 0) / top_ttft, bar_w, "cyan", warn=False)
        over = view.slo.ttft_s is not None and ttft is not None and ttft > view.slo.ttft_s
        line += Text(f" {fmt_s(ttft):>7}", "bold red" if over else "")
        line += Text(f"  TPOT p99 {fmt_s(_p99(s.tpot_s))}")
        line += _knee_marks(knee, _load(entry.profile))
        lines.append(line)
    if knee is not None:
        lines.append(Text(f"   SLO knee: {knee.label(knee.slo_knee_load)}: {knee.slo_reason}"))
        lines.append(
            Text(f"   saturation: {knee.label(knee.saturation_load)}: {knee.saturation_reason}")
        )
    return lines


def _knee_marks(knee: Knee | None, load: float) -> Text:
    if knee is None:
        return Text("")
    marks = Text("")
    if knee.slo_knee_load == load:
        marks.append("  ◀ SLO knee", "bold green")
    if knee.saturation_load == load:
        marks.append("  ◀ saturation", "bold yellow")
    return marks


def _p99(dist: Distribution | None) -> float | None:
    return None if dist is None else dist.p99


class LadderPane(TextPane):
    """The sweep view (a tab); scrolls when the ladder is longer than the pane."""

    DEFAULT_CSS = "LadderPane { height: auto; }"
    crop = False

    def lines(self, view: LiveView, width: int, height: int) -> list[Text]:
        return ladder_lines(view, width)
