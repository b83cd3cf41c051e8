"""Peers' definitions as tables: one per profile, llmtop's own figures then a column per peer.

``definitions_rows`` lays a profile's figures out (a row per metric and statistic, extras
after the six core metrics); ``definitions_text`` is the console form ``llmtop report
--definitions`` prints, ``definitions_html`` the report's section. Both end with each peer's
formulas and sources (the same for every profile) and the notes of what could not be computed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from engine.analysis.peers import CORE_METRICS, PeerFigures, PeerValue
from tui.format import NONE

STATS = ("mean", "p50", "p90", "p99")
"""Statistics shown for latencies, in this order (throughputs have one value)."""
MS_DIGITS = 2
"""Two decimals in ms: the definitions can differ by a fraction of a millisecond."""


def definitions_rows(figures: Sequence[PeerFigures]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of one profile's table: ``metric``, ``stat``, then one column per
    peer in ``figures`` order; a row is left out when no peer has the statistic."""
    keys = list(CORE_METRICS)
    keys += [v.key for f in figures for v in f.values if v.key not in keys]
    headers = ["metric", "stat", *(f.peer for f in figures)]
    rows: list[list[str]] = []
    for key in keys:
        found = [f.value(key) for f in figures]
        unit = next((v.unit for v in found if v is not None and v.mean is not None), "s")
        for stat in STATS if unit == "s" else ("mean",):
            cells = [_cell(v, stat) for v in found]
            if any(c != NONE for c in cells):
                label = f"{key} ({'ms' if unit == 's' else unit})"
                rows.append([label, stat if unit == "s" else "", *cells])
    return headers, rows


def definitions_text(figures: Sequence[PeerFigures]) -> str:
    """The console tables of one run: a table per profile, then the formulas and notes."""
    parts: list[str] = []
    for profile, group in _by_profile(figures):
        headers, rows = definitions_rows(group)
        parts.append(f"profile {profile} ({group[0].requests} measured requests)")
        parts.append(_aligned([headers, *rows]))
        parts += [f"  note: {peer} {key}: {note}" for peer, key, note in _notes(group)]
        parts.append("")
    parts.append("definitions (llmtop record fields; source lines in the peer's release):")
    for f, v in _formulas(figures):
        parts.append(f"  {f.peer} {f.version} {v.key} ({v.name}) = {v.formula}  [{v.source}]")
    return "\n".join(parts)


def definitions_html(figures: Sequence[PeerFigures], run_label: str) -> str:
    """The report's section for one run: a table per profile, the formulas, the notes."""
    e = html.escape
    parts = [f"<h2>Peers' definitions: {e(run_label)}</h2>"]
    for profile, group in _by_profile(figures):
        headers, rows = definitions_rows(group)
        parts.append(f"<h3>{e(profile)}</h3>" + _html_table(headers, rows, left=2))
        notes = [f"<li>{e(peer)} {e(key)}: {e(note)}</li>" for peer, key, note in _notes(group)]
        if notes:
            parts.append(f"<ul>{''.join(notes)}</ul>")
    formulas = [
        [f"{f.peer} {f.version}", v.key, v.name, v.formula, v.source] for f, v in _formulas(figures)
    ]
    parts.append(
        "<h3>Formulas</h3>"
        + _html_table(["peer", "metric", "its name", "formula", "source"], formulas, left=5)
    )
    return "".join(parts)


def _cell(value: PeerValue | None, stat: str) -> str:
    number = None if value is None else getattr(value, stat)
    if number is None:
        return NONE
    if value is not None and value.unit == "s":
        return f"{number * 1000:,.{MS_DIGITS}f}"
    return f"{number:,.2f}"


def _by_profile(figures: Sequence[PeerFigures]) -> list[tuple[str, list[PeerFigures]]]:
    grouped: dict[str, list[PeerFigures]] = {}
    for f in figures:
        grouped.setdefault(f.profile, []).append(f)
    return list(grouped.items())


def _notes(group: Sequence[PeerFigures]) -> list[tuple[str, str, str]]:
    """``(peer, metrics, note)``: a note shared by several metrics of a peer said once."""
    keys: dict[tuple[str, str], list[str]] = {}
    for f in group:
        for v in f.values:
            if v.note:
                keys.setdefault((f.peer, v.note), []).append(v.key)
    return [(peer, ", ".join(ks), note) for (peer, note), ks in keys.items()]


def _formulas(figures: Sequence[PeerFigures]) -> list[tuple[PeerFigures, PeerValue]]:
    """Each peer's formulas once (the first profile's: they do not depend on the profile)."""
    seen: set[str] = set()
    out: list[tuple[PeerFigures, PeerValue]] = []
    for f in figures:
        if f.peer in seen:
            continue
        seen.add(f.peer)
        out += [(f, v) for v in f.values if v.formula != NONE]
    return out


def _aligned(table: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    def cls(i: int) -> str:
        return " class='l'" if i < left else ""

    head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{html.escape(c)}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
