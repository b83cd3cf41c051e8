"""Run comparison in the live screen: pick a run, see ``engine.analysis.compare`` side by side.

``c`` in a live run or a replay lists the other runs under the results folder; the chosen
one is the baseline (A) and the run on screen the candidate (B). ``llmtop compare A B --ui``
opens the same screen directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from engine.analysis.compare import Comparison
from engine.analysis.wording import diff_text, interval_text, statement, value_text

VERDICT_STYLE = {"better": "bold green", "worse": "bold red"}


class CompareScreen(Screen[None]):
    """Per profile and figure: A, B, B - A, its confidence interval and the verdict."""

    BINDINGS = [Binding("escape,q", "dismiss", "back")]

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison

    def compose(self) -> ComposeResult:
        c = self.comparison
        lines = [
            Text.assemble(
                ("A ", "bold"),
                _describe(
                    c.baseline.run_id, c.baseline.status, c.baseline.server_kind, c.baseline.model
                ),
            )
        ]
        for rc in c.runs:
            ref = rc.candidate
            lines.append(
                Text.assemble(
                    (f"{ref.label} ", "bold"),
                    _describe(ref.run_id, ref.status, ref.server_kind, ref.model),
                )
            )
            for note in rc.mismatches + [
                f"{p.profile}: {m}" for p in rc.profiles for m in p.mismatches
            ]:
                lines.append(Text(f"! {note}", "yellow"))
            for names, side in ((rc.only_in_baseline, "A"), (rc.only_in_candidate, ref.label)):
                if names:
                    lines.append(
                        Text(f"! only in {side} (not compared): {', '.join(names)}", "yellow")
                    )
        lines.append(
            Text(
                f"{c.confidence:.0%} bootstrap intervals of the difference over "
                f"per-request records ({c.resamples} resamples, seed {c.seed}); a "
                "verdict only where the interval excludes 0",
                "dim",
            )
        )
        with Vertical():
            yield Static(Text("\n").join(lines), id="compare-head")
            yield DataTable(id="compare", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#compare", DataTable)
        for header in ("profile", "figure", "A", "B", "B - A", "CI of B - A", "verdict"):
            table.add_column(header, key=header)
        for rc in self.comparison.runs:
            label = rc.candidate.label
            for p in rc.profiles:
                for index, m in enumerate(p.metrics):
                    verdict = statement(m, label) or (m.no_interval or "")
                    table.add_row(
                        Text(p.profile if index == 0 else "", "bold"),
                        m.label,
                        value_text(m.baseline, m.unit),
                        value_text(m.candidate, m.unit),
                        diff_text(m),
                        interval_text(m),
                        Text(verdict, VERDICT_STYLE.get(m.verdict or "", "")),
                    )
        table.focus()


def _describe(run_id: str, status: str, kind: str | None, model: str | None) -> str:
    return f"{run_id} ({kind or '?'}, {model or '?'}, {status})"


class RunPicker(ModalScreen[Path | None]):
    """The runs under a results folder, newest first; Enter picks the baseline."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, runs: list[Path], current: Path | None) -> None:
        super().__init__()
        self.runs = [r for r in runs if current is None or r.resolve() != current.resolve()]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Compare with which run? It becomes A (the baseline); this run is B.")
            if self.runs:
                yield OptionList(
                    *[Option(str(p), id=str(i)) for i, p in enumerate(self.runs)], id="runs"
                )
            else:
                yield Label(Text("no other run in this results folder", "yellow"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.runs[int(str(event.option.id))])


class CompareApp(App[int]):
    """``llmtop compare --ui``: the comparison screen on its own."""

    CSS_PATH = "../app.tcss"
    TITLE = "llmtop compare"

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison

    def on_mount(self) -> None:
        self.push_screen(CompareScreen(self.comparison), lambda _: self.exit(0))


def pick_and_compare(app: App[Any], current: Path) -> None:
    """List the runs beside ``current``; compare the chosen one (A) with it (B) in a thread
    (bootstrap intervals take seconds on large runs), then show the result."""
    from engine.results.folder import RunFolderError
    from engine.results.runs import discover_runs  # numpy behind it: loaded when first needed

    try:
        runs = sorted(discover_runs(current.parent), key=lambda p: p.name, reverse=True)
    except RunFolderError as exc:
        app.notify(str(exc), severity="error")
        return

    def compare(baseline: Path) -> None:
        from engine.analysis.compare import compare_runs

        app.call_from_thread(app.notify, f"comparing with {baseline.name}...")
        comparison = compare_runs([baseline, current])
        app.call_from_thread(app.push_screen, CompareScreen(comparison))

    def chosen(other: Path | None) -> None:
        if other is not None:
            app.run_worker(
                lambda: compare(other),
                name="compare_runs",
                group="compare",
                thread=True,
                exclusive=True,
                exit_on_error=False,
            )

    app.push_screen(RunPicker(runs, current), chosen)
