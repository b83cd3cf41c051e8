"""The HTML report: one self-contained file for one or more runs (``build_html``).

The HTML has no script and no external reference: styles inline, plots as inline SVG
(tui/report/plots.py), so it opens offline and can be mailed as one file. Sections: the runs,
notes about incomplete ones, per-profile figures, knees with their numbers, the comparison
with the first run (several runs), then the plots.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path

from engine.analysis.compare import Comparison, compare_loaded, run_labels
from engine.analysis.peers import PeerFigures
from engine.analysis.timeline import run_timeline
from engine.analysis.wording import diff_text, interval_text, statement, value_text
from engine.metrics.knee import Knee
from engine.results.folder import latency_columns
from engine.results.runs import RunInfo
from tui.format import fmt_ms_cell, stat_s
from tui.report.peers import definitions_html
from tui.report.plots import RunPlotData, against_load, latency_distributions, over_time

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.warn{color:#a60}.better{color:#070}.worse{color:#b00}
svg{max-width:100%;height:auto}pre{font-size:13px;background:#f7f7f7;padding:.5em}"""
LATENCY_FIELDS = ("ttft_s", "tpot_s", "e2e_s")


def build_html(
    runs: Sequence[RunInfo],
    notes: list[str],
    definitions: Sequence[Sequence[PeerFigures]] = (),
) -> str:
    """The whole report as one HTML string; ``definitions`` (one list per run, when
    ``--definitions`` asked) adds the peers' definitions after the profiles."""
    labels = run_labels(len(runs))
    data = [
        RunPlotData(
            label,
            run,
            latency_columns(Path(run.path), LATENCY_FIELDS, []),
            run_timeline(Path(run.path), []),
        )
        for label, run in zip(labels, runs)
    ]
    knees = [(label, run, knee) for label, run in zip(labels, runs) for knee in run.knees]
    parts = [
        f"<h1>llmtop report: {_e(', '.join(r.run_id for r in runs))}</h1>",
        f"<p>generated {time.strftime('%Y-%m-%d %H:%M:%S')}</p>",
        _runs_table(labels, runs),
        _profiles_table(labels, runs),
    ]
    parts += [
        definitions_html(figures, f"{label} ({run.run_id})")
        for label, run, figures in zip(labels, runs, definitions)
    ]
    if knees:
        parts.append("<h2>Knee</h2>" + "".join(_knee(label, knee) for label, _run, knee in knees))
    if len(runs) > 1:
        parts.append(_comparison(compare_loaded(runs)))
    parts += [
        "<h2>Latency distributions</h2>",
        latency_distributions(data),
        "<h2>Over time</h2>",
        over_time(data),
    ]
    if not any(d.timeline.gpus for d in data):
        parts.append("<p>No GPU samples in these runs (no NVIDIA driver, or sampling off).</p>")
    if knees:
        parts += ["<h2>Against load</h2>", against_load(knees)]
    notes += [f"{r.run_id}: {n}" for r in runs for n in r.notes]
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>llmtop report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def _e(text: object) -> str:
    return html.escape(str(text))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> str:
    head = "".join(
        f"<th class='{'l' if i < left else ''}'>{_e(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td class='{'l' if i < left else ''}'>{_e(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _knee(label: str, knee: Knee) -> str:
    """The statement, then every step's deciding numbers."""
    rows = [
        (
            knee.label(s.load),
            s.profile,
            f"{s.output_tokens_per_s:,.1f}",
            "-" if s.gain_pct is None else f"{s.gain_pct:+.1f} %",
            fmt_ms_cell(s.ttft_p99_s),
            fmt_ms_cell(s.tpot_p99_s),
            s.failures,
            "; ".join(s.slo_misses) or "meets",
        )
        for s in knee.steps
    ]
    return f"<pre>{_e(label)}: {_e(chr(10).join(knee.lines()))}</pre>" + _table(
        ("load", "profile", "out tok/s", "gain", "TTFT p99 ms", "TPOT p99 ms", "failed", "SLOs"),
        rows,
        left=2,
    )


def _runs_table(labels: Sequence[str], runs: Sequence[RunInfo]) -> str:
    rows = [
        (
            label,
            r.run_id,
            r.status,
            r.server_kind or "-",
            r.model or "-",
            r.url or "-",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started_unix_s or 0)),
            "-" if r.duration_s is None else f"{r.duration_s:,.1f} s",
            ", ".join(p.profile for p in r.profiles),
        )
        for label, r in zip(labels, runs)
    ]
    notes = "".join(
        f"<p class='warn'>{_e(label)} {_e(r.run_id)}: {_e(n)}</p>"
        for label, r in zip(labels, runs)
        for n in r.notes
    )
    return (
        "<h2>Runs</h2>"
        + _table(
            ("", "run", "status", "server", "model", "url", "started", "duration", "profiles"),
            rows,
            left=9,
        )
        + notes
    )


def _profiles_table(labels: Sequence[str], runs: Sequence[RunInfo]) -> str:
    rows = []
    for label, run in zip(labels, runs):
        for p in run.profiles:
            rows.append(
                (
                    label,
                    p.profile,
                    p.load,
                    p.status,
                    f"{p.successes}/{p.requests}",
                    f"{p.requests_per_s:,.2f}",
                    f"{p.output_tokens_per_s:,.1f}",
                    *(
                        fmt_ms_cell(stat_s(getattr(p, f), s))
                        for f, s in (
                            ("ttft_s", "p50"),
                            ("ttft_s", "p99"),
                            ("tpot_s", "p50"),
                            ("tpot_s", "p99"),
                            ("itl_s", "p50"),
                            ("e2e_s", "p50"),
                            ("e2e_s", "p99"),
                        )
                    ),
                    f"{p.goodput_rps:,.2f}",
                )
            )
    return "<h2>Profiles</h2>" + _table(
        (
            "",
            "profile",
            "load",
            "status",
            "ok/req",
            "req/s",
            "out tok/s",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "TPOT p50 ms",
            "TPOT p99 ms",
            "ITL p50 ms",
            "E2E p50 ms",
            "E2E p99 ms",
            "goodput req/s",
        ),
        rows,
        left=4,
    )


def _comparison(c: Comparison) -> str:
    parts = [
        f"<h2>Comparison with {c.baseline.label} ({_e(c.baseline.run_id)})</h2>",
        f"<p>{c.confidence:.0%} bootstrap interval of the difference over per-request "
        f"records ({c.resamples} resamples, seed {c.seed}); a verdict only where it "
        "excludes 0.</p>",
    ]
    for rc in c.runs:
        a, b = c.baseline.label, rc.candidate.label
        parts += [f"<p class='warn'>! {b} vs {a}: {_e(m)}</p>" for m in rc.mismatches]
        if rc.only_in_baseline or rc.only_in_candidate:
            parts.append(
                f"<p class='warn'>not compared: only in {a}: "
                f"{_e(', '.join(rc.only_in_baseline) or '-')}; only in {b}: "
                f"{_e(', '.join(rc.only_in_candidate) or '-')}</p>"
            )
        for p in rc.profiles:
            parts.append(f"<h3>{_e(p.profile)}: {b} vs {a}</h3>")
            parts += [f"<p class='warn'>! {_e(m)}</p>" for m in p.mismatches]
            rows = [
                (
                    m.label,
                    value_text(m.baseline, m.unit),
                    value_text(m.candidate, m.unit),
                    diff_text(m),
                    interval_text(m),
                    statement(m, b) or m.no_interval or "",
                )
                for m in p.metrics
            ]
            parts.append(_table(("figure", a, b, f"{b} - {a}", "CI", "verdict"), rows))
    return "".join(parts)
