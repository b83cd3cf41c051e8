"""``llmtop report``: the HTML report of one or more runs; ``llmtop export``: their CSV, or
their Chrome/Perfetto traces (``--trace``).

The sub-commands' glue: resolve the runs, check the paths given, choose the output file,
print where things went. The HTML itself is built by ``tui.report.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.analysis.peers import SUMMARY_SECTION, record_in_summary, run_peer_figures
from engine.analysis.trace import TRACE_FILE, write_trace
from engine.errors import ExitCode, InputError
from engine.results.export import export_csv
from engine.results.layout import SUMMARY_FILE
from engine.results.runs import RunInfo, load_runs
from tui.commands.output import writable_file, writable_folder
from tui.report.html import build_html
from tui.report.peers import definitions_text


def report_command(
    refs: list[str],
    root: Path,
    output: Path | None,
    csv_dir: Path | None,
    definitions: tuple[str, ...] = (),
    in_summary: bool = False,
) -> int:
    """Resolve the runs, write the HTML (and CSV), print where they went; with
    ``definitions`` (peer keys), print and add the peers' definitions too, and with
    ``in_summary`` record them in each run's summary.json."""
    runs = load_runs(refs, root)
    target = output or default_output(runs)
    writable_file(target, "--output" if output else "report")
    if csv_dir is not None:
        writable_folder(csv_dir, "--csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    figures = [run_peer_figures(run, definitions, notes) for run in runs] if definitions else []
    for run, run_figures in zip(runs, figures):
        print(f"peers' definitions of {run.run_id}:\n{definitions_text(run_figures)}\n")
        if in_summary and record_in_summary(run, run_figures, notes):
            print(f"recorded under {SUMMARY_SECTION} in {Path(run.path) / SUMMARY_FILE}")
    target.write_text(build_html(runs, notes, figures), encoding="utf-8")
    if csv_dir is not None:
        _print_csv(runs, csv_dir)
    for note in notes:
        print(f"note: {note}")
    print(f"report: {target} ({target.stat().st_size / 1024:,.0f} KiB, opens offline)")
    return ExitCode.OK


def export_command(refs: list[str], root: Path, folder: Path | None, trace: bool = False) -> int:
    """Write requests.csv and summary.csv of the runs into ``folder``; with ``trace``, a trace
    of each run instead (into ``folder``, or into each run's folder)."""
    if folder is None and not trace:
        raise InputError("export needs --output DIR (or --trace)")
    if folder is not None:
        writable_folder(folder, "--output")
    runs = load_runs(refs, root)
    if not trace:
        assert folder is not None
        _print_csv(runs, folder)
        return ExitCode.OK
    for run in runs:
        target = folder / f"{run.run_id}.trace.json" if folder else Path(run.path) / TRACE_FILE
        notes: list[str] = []
        written = write_trace(Path(run.path), target, notes)
        for note in notes:
            print(f"note: {run.run_id}: {note}")
        size = target.stat().st_size / 1024
        print(
            f"trace: {target} ({written.requests} requests, {written.token_instants} token "
            f"instants, {size:,.0f} KiB): open it in https://ui.perfetto.dev"
        )
    return ExitCode.OK


def _print_csv(runs: list[RunInfo], folder: Path) -> None:
    requests, summary, notes = export_csv(runs, folder)
    for note in notes:
        print(f"note: {note}")
    print(f"csv: {requests} and {summary}")


def default_output(runs: Sequence[RunInfo]) -> Path:
    """``report.html`` in the run's folder; for several runs, beside the first run's folder."""
    first = Path(runs[0].path)
    if len(runs) == 1:
        return first / "report.html"
    others = f"-vs-{runs[1].run_id}" if len(runs) == 2 else f"-and-{len(runs) - 1}-more"
    return first.parent / f"report-{runs[0].run_id}{others}.html"
