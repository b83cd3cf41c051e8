"""``llmtop compare A B [C ...]``: each run's headline figures next to the first run's."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from engine.analysis.compare import Comparison, ProfileComparison, RunRef, compare_loaded
from engine.analysis.wording import diff_text, interval_text, statement, value_text
from engine.errors import ExitCode, InputError
from engine.results.runs import load_runs

MIN_RESAMPLES = 100
"""Fewer bootstrap resamples give intervals too rough to decide anything."""
MAX_RESAMPLES = 100_000
"""More add nothing a verdict needs and take minutes (2,000 of 10k records take ~1 s)."""


def compare_command(
    refs: list[str],
    root: Path,
    *,
    resamples: int,
    seed: int,
    as_json: bool,
    console: Console | None = None,
    ui: bool = False,
) -> int:
    """Resolve the runs (paths, ids or id prefixes under ``root``), compare, print."""
    if len(refs) < 2:
        raise InputError("compare needs at least two runs: llmtop compare A B [C ...]")
    if not MIN_RESAMPLES <= resamples <= MAX_RESAMPLES:
        raise InputError(
            f"--resamples must be between {MIN_RESAMPLES} and {MAX_RESAMPLES:,} (got {resamples})"
        )
    if seed < 0:
        # NumPy's generator refuses negative seeds, with a traceback from deep inside it.
        raise InputError(f"--seed must be 0 or more (got {seed})")
    runs = load_runs(refs, root)
    comparison = compare_loaded(runs, resamples=resamples, seed=seed)
    if as_json:
        print(comparison.model_dump_json(indent=2))
        return ExitCode.OK
    if ui:
        from tui.live.screens.compare import CompareApp

        CompareApp(comparison).run()
        return ExitCode.OK
    print_comparison(comparison, console or Console(highlight=False, width=160))
    return ExitCode.OK


def _describe(ref: RunRef) -> str:
    return (
        f"{ref.label} = {ref.run_id} ({ref.server_kind or '?'}, {ref.model or '?'}, {ref.status})"
    )


def print_comparison(c: Comparison, console: Console) -> None:
    """Run headers, then per compared run and profile a table and its mismatches."""
    console.print(f"baseline {_describe(c.baseline)}", markup=False)
    for rc in c.runs:
        console.print(_describe(rc.candidate), markup=False)
    if len(c.runs) > 1:
        console.print(f"each run is compared with {c.baseline.label}, the baseline")
    console.print(
        f"intervals: {c.confidence:.0%} bootstrap of the difference over per-request "
        f"records ({c.resamples} resamples, seed {c.seed}); a verdict only where the "
        "interval excludes 0",
        markup=False,
    )
    for rc in c.runs:
        a, b = c.baseline.label, rc.candidate.label
        for line in rc.mismatches:
            console.print(f"[yellow]! {b} vs {a}:[/] {line}")
        for name, side in ((rc.only_in_baseline, a), (rc.only_in_candidate, b)):
            if name:
                console.print(f"[yellow]! only in {side}:[/] {', '.join(name)} (not compared)")
        for p in rc.profiles:
            console.print(comparison_table(p, a, b, c.confidence))
            for line in p.mismatches:
                console.print(f"[yellow]! {p.profile}:[/] {line}", markup=True)
    console.print(f"({c.elapsed_s:.2f} s)")


def comparison_table(p: ProfileComparison, a: str, b: str, confidence: float) -> Table:
    """One profile of two runs compared, a row per figure: A, B, B - A, the interval of
    B - A and the verdict.
    """
    table = Table(
        title=f"{p.profile}: {b} vs {a} ({p.baseline_successes} and "
        f"{p.candidate_successes} successful requests)",
        title_justify="left",
    )
    for header in ("figure", a, b, f"{b} - {a}", f"{confidence:.0%} CI of {b} - {a}", "verdict"):
        table.add_column(header, justify="left" if header in ("figure", "verdict") else "right")
    for m in p.metrics:
        verdict = statement(m, b) or (m.no_interval or "")
        style = {"better": "green", "worse": "red"}.get(m.verdict or "", "")
        table.add_row(
            m.label,
            value_text(m.baseline, m.unit),
            value_text(m.candidate, m.unit),
            diff_text(m),
            interval_text(m),
            f"[{style}]{verdict}[/]" if style else verdict,
        )
    return table
