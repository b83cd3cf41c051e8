"""What stops a run given on the command line: a duration alone runs until the duration, a
count alone until the count, both until the first; ``--dry-run`` says which.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fakeserver import Behaviour, FakeServer
from tui.cli import main
from tui.commands.run import resolve_profiles
from tui.options import RunOptions


def stop_fields(*profiles: str, **overrides: object) -> list[tuple[int | None, float | None]]:
    """(requests, duration_s) of each profile once the command line's fields are applied."""
    options = RunOptions(profiles=profiles, overrides=overrides)
    return [(p.requests, p.duration_s) for p in resolve_profiles(options)]


def test_a_duration_alone_runs_until_the_duration():
    # The README's example: before, the default profile's `requests = 24` still applied.
    assert stop_fields(rate_rps=5.0, arrival="poisson", duration_s=60.0) == [(None, 60.0)]
    # long-qa has `requests = 40`; fixed-rate already runs by time.
    assert stop_fields("long-qa", "fixed-rate", duration_s=30.0) == [(None, 30.0), (None, 30.0)]


def test_a_count_alone_runs_until_the_count():
    # fixed-rate runs for `duration_s = 60`: a count given alone replaces it.
    assert stop_fields("fixed-rate", requests=5) == [(5, None)]
    assert stop_fields(concurrency=2, requests=7) == [(7, None)]


def test_both_stop_at_the_first_and_none_keeps_the_profiles_rule():
    assert stop_fields("fixed-rate", requests=5, duration_s=2.0) == [(5, 2.0)]
    assert stop_fields("ladder-step", "fixed-rate", rate_rps=3.0) == [(64, 120.0), (None, 60.0)]


@pytest.mark.timeout(60)
def test_an_open_loop_run_by_duration_sends_every_arrival_in_it(tmp_path: Path, capsys):
    with FakeServer(Behaviour(itl_s=0.001)) as server:
        code = main(
            ["run", "--url", server.url, "--rate", "20", "--duration", "2", "--max-tokens", "5"]
            + ["--no-ui", "--no-probe", "--output", str(tmp_path)]
        )
    assert code == 0, capsys.readouterr().err
    (run_dir,) = tmp_path.iterdir()
    lines = (run_dir / "requests.jsonl").read_text().splitlines()
    measured = [r for r in map(json.loads, lines) if not r["warmup"]]
    # 20/s for 2 s: arrivals at 0, 0.05, ... 1.95 s. Before: 24, the default profile's count.
    assert 36 <= len(measured) <= 40
    assert (
        max(r["scheduled_ns"] for r in measured) - min(r["scheduled_ns"] for r in measured) > 1.5e9
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--rate", "5", "--duration", "60"], "stops after 60 s: 300 arrivals due (no count)"),
        (["--profile", "fixed-rate", "--requests", "5"], "stops after 5 measured requests (no"),
        (["--concurrency", "2", "--requests", "8"], "stops after 8 measured requests (no time"),
        (
            ["--rate", "5", "--duration", "60", "--requests", "10"],
            "stops at 10 requests or after 60 s, whichever comes first: the count, at 1.8 s",
        ),
        (
            ["--rate", "5", "--duration", "1", "--requests", "10"],
            "stops at 10 requests or after 1 s, whichever comes first: the duration, 5 arrivals",
        ),
        (
            ["--profile", "ladder-step"],
            "stops at 64 requests or after 120 s, whichever comes first (closed loop: which",
        ),
    ],
)
def test_dry_run_says_what_stops_the_run(argv: list[str], says: str, capsys):
    assert main(["run", "--dry-run", *argv]) == 0
    assert says in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flag", "value"),
    [([], None), (["--stop-when-saturated"], True), (["--no-stop-when-saturated"], False)],
)
def test_the_saturation_stop_flag_sets_every_profile_of_a_ladder(flag, value):
    from tui.cli import run_options
    from tui.parser import build_parser

    args = build_parser().parse_args(["run", "--suite", "ladder", *flag])
    profiles = resolve_profiles(run_options(args))
    assert len(profiles) == 7
    assert {p.stop_when_saturated for p in profiles} == {value}
