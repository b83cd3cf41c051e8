"""Modal screens: help, quit confirmation, the profile picker (a request's record is in
``record.py``)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from engine.workload.profile import Profile, ProfileError, builtin_names, load_profile

HELP = """\
[b]Keys[/b] (the mouse too: click a scenario, a tab or a request; the wheel scrolls)
  up/down   move in the scenario queue (tab moves to the list below; t switches it
            between Requests, Results, Ladder, Latency and Notices)
  enter     run the selected scenario now: the current one stops sending and its
            in-flight requests finish and are kept (on a request: its timeline and
            full record; a click on the selected request opens it too)
  w         charts over the last 1 min, 10 min or the whole run
  n         next scenario now             space   pause / resume sending
  a         add a scenario (built-in or a TOML file)
  d         remove the selected queued scenario
  r         run the selected scenario again (next in line)
  s         stop the run: in-flight requests finish, the summary is written
  q         quit (asks while a run is going; results are always kept)
  ctrl+c    quit now: in-flight requests are recorded as cancelled
  c         compare this run with another one under the results folder
  ctrl+p    command palette: every action by name         ?   this help
  [ ] e     replay only: back / forward through the run, jump to the end

[b]Figures[/b] (the engine's own definitions; see README)
  TTFT   time to first token: request sent -> first chunk carrying a token
  TPOT   time per output token after the first: (E2E - TTFT) / (output tokens - 1)
  ITL    gap between token-bearing chunks (table: all gaps pooled once a scenario
         ends; while it runs, each request's mean gap)
  E2E    request sent -> last byte
  Charts: time runs left to right over the span in the title (-1m ... now); the
  number left of a chart is its top, 0 its bottom.
  Latency: each column the worst request that ended in it, red where it broke that
  metric's own SLO (TTFT and TPOT apart); p50/p99 above: the running scenario's
  requests so far.
  Throughput: each column the mean of the engine's 2 s rates; the rates line: the
  last 10 s of the running scenario.
  GPUs: bars and histories on fixed ranges (util 0-100 %, VRAM 0-installed, power
  0-limit). CPU: the host in % of all cores; llmtop's engine and the server in % of
  one core (llmtop over 80 % is CLIENT-BOUND: its timestamps may be late).
  Results: each scenario's whole measured window (~ while it runs). Ladder: a
  sweep's throughput and p99 against load, the knee once three steps are done.
  Latency rows marked ~live come from a bounded sample of the running scenario;
  they become exact when it ends. Everything is in the results folder.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(Text.from_markup(HELP))


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; ``y``/enter confirms, ``n``/escape declines."""

    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question)
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ProfilePicker(ModalScreen[Profile | None]):
    """Choose a built-in profile, or type the path of a TOML profile file."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        options = []
        for name in builtin_names():
            profile = load_profile(name)
            options.append(
                Option(
                    Text.assemble(
                        (f"{name:<18}", "bold"),
                        f"{profile.load_label:<12} ",
                        (profile.description, "dim"),
                    ),
                    id=name,
                )
            )
        with Vertical(id="dialog"):
            yield Label("Add a scenario: pick a built-in profile, or type a TOML file path")
            yield OptionList(*options, id="builtin")
            yield Input(placeholder="path/to/profile.toml", id="path")
            yield Label("", id="error")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._load(str(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._load(event.value.strip())

    def _load(self, ref: str) -> None:
        try:
            self.dismiss(load_profile(ref))
        except ProfileError as exc:
            self.query_one("#error", Label).update(Text(str(exc), "bold red"))
