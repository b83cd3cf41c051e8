"""Reading run folders back: complete, killed, damaged; and `llmtop runs`."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.results.folder import RunFolderError
from engine.results.runs import discover_runs, load_run, resolve_run
from tests.support.run_fixtures import BASE, KILLED, LADDER, RUNS, SLOW, copy_run
from tui.cli import main


def test_complete_run_loads_from_its_summary():
    run = load_run(RUNS / LADDER)
    assert run.status == "completed" and run.complete and run.notes == []
    assert [p.profile for p in run.profiles] == ["step-c1", "step-c2", "step-c4"]
    assert run.model == "gemma-3-270m" and run.server_kind == "llama.cpp"
    assert len(run.knees) == 1 and run.knees[0].group == "step"


def test_suites_come_from_the_recorded_options_or_from_an_older_runs_arguments(tmp_path):
    # Written before run.json recorded options by name: argparse's "arguments".
    assert load_run(RUNS / LADDER).suites == ["/tmp/fx/ladder.toml"]
    path = copy_run(LADDER, tmp_path)
    meta = json.loads((path / "run.json").read_text())
    del meta["arguments"]
    meta["options"] = {"schema": 1, "suites": ["stress"], "profiles": []}
    (path / "run.json").write_text(json.dumps(meta))
    assert load_run(path).suites == ["stress"]


def test_killed_run_is_rebuilt_from_its_records_with_the_engines_aggregate():
    run = load_run(RUNS / KILLED)
    assert run.status == "incomplete" and not run.complete
    assert run.rebuilt_profiles == ["quick"]
    [p] = run.profiles
    assert p.status == "incomplete" and p.requests == 3 and p.warmup_requests == 1
    assert p.ttft_s is not None and p.ttft_s.count == 3
    assert any("truncated last line 5 skipped" in n for n in run.notes)


def test_rebuilt_figures_equal_the_summary_of_a_finished_run(tmp_path):
    # Remove summary.json from a complete run: the rebuilt figures must match the engine's.
    folder = copy_run(BASE, tmp_path, plain=True)
    original = load_run(folder).profiles[0]
    (folder / "summary.json").unlink()
    rebuilt = load_run(folder).profiles[0]
    assert rebuilt.requests == original.requests and rebuilt.successes == original.successes
    assert rebuilt.output_tokens_total == original.output_tokens_total
    assert rebuilt.ttft_s == original.ttft_s and rebuilt.tpot_s == original.tpot_s
    assert rebuilt.e2e_s == original.e2e_s
    assert rebuilt.duration_s == pytest.approx(original.duration_s, rel=0.05)


def test_partial_summary_of_a_run_killed_between_profiles(tmp_path):
    folder = copy_run(LADDER, tmp_path, plain=True)
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(
        json.dumps({"status": "running", "profiles": summary["profiles"][:2]})
    )
    run = load_run(folder)
    assert run.status == "incomplete" and run.rebuilt_profiles == ["step-c4"]
    assert [p.status for p in run.profiles] == ["completed", "completed", "incomplete"]
    assert len(run.knees) == 1  # computed from the three profiles, definitions from run.json


def test_run_killed_after_its_last_profile_says_where_its_figures_come_from(tmp_path):
    # Killed between the last profile's summary and the final one: every record belongs to
    # a profile the running summary.json holds. Before, the note said no request was recorded.
    folder = copy_run(BASE, tmp_path, plain=True)
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(
        json.dumps({"status": "running", "profiles": summary["profiles"]})
    )
    run = load_run(folder)
    assert run.status == "incomplete" and run.rebuilt_profiles == []
    assert run.profiles[0].requests == 10
    [note] = run.notes
    assert "no request was recorded" not in note
    assert "figures of quick from summary.json as written after each profile" in note
    (folder / "summary.json").unlink()
    (folder / "requests.jsonl").write_text("")
    assert load_run(folder).notes[-1].endswith("no request was recorded")


@pytest.mark.parametrize("damage", ["empty", "garbage", "no_run_json", "bad_summary"])
def test_damaged_folders_load_with_notes(tmp_path, damage):
    folder = copy_run(BASE, tmp_path, plain=True)
    requests = folder / "requests.jsonl"
    if damage == "empty":
        (folder / "summary.json").unlink()
        requests.write_text("")
    elif damage == "garbage":
        (folder / "summary.json").unlink()
        lines = requests.read_text().splitlines()
        requests.write_text(
            "\n".join([lines[0], "{not json", "[1, 2]", '{"x": 1}', *lines[1:]]) + "\n"
        )
    elif damage == "no_run_json":
        (folder / "run.json").unlink()
    else:
        (folder / "summary.json").write_text('{"status": "completed", "profiles": 7}')
    run = load_run(folder)
    if damage == "empty":
        assert run.status == "incomplete" and run.profiles == []
    elif damage == "garbage":
        assert run.profiles[0].requests == 10
        assert "requests.jsonl: line 2 is not a JSON object: skipped" in run.notes
        assert "requests.jsonl: 1 lines are not request records: skipped" in run.notes
    elif damage == "no_run_json":
        assert run.model is None and "run.json missing" in run.notes
        assert run.status == "completed" and run.run_id == BASE
    else:
        assert run.status == "incomplete" and run.profiles[0].requests == 10
        assert any("does not match this llmtop's format" in n for n in run.notes)


def test_discover_nested_and_resolve(tmp_path):
    copy_run(BASE, tmp_path / "matrix" / "tp1")
    copy_run(SLOW, tmp_path)
    (tmp_path / "matrix-x.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    assert sorted(p.name for p in discover_runs(tmp_path)) == [BASE, SLOW]
    with pytest.raises(RunFolderError, match="nope/x: no such folder"):
        resolve_run("nope/x", tmp_path)
    assert resolve_run(SLOW[:-2], tmp_path).name == SLOW
    assert resolve_run(str(tmp_path / SLOW), tmp_path).name == SLOW
    renamed = copy_run(LADDER, tmp_path / "archive")
    renamed.rename(tmp_path / "archive" / "my-ladder")
    assert resolve_run(LADDER[:15], tmp_path).name == "my-ladder"
    assert resolve_run("my-lad", tmp_path).name == "my-ladder"
    with pytest.raises(RunFolderError, match="matches 3 runs"):
        resolve_run("2026", tmp_path)
    with pytest.raises(RunFolderError, match="no run 'zzz' under"):
        resolve_run("zzz", tmp_path)
    with pytest.raises(RunFolderError, match="is not a run folder"):
        resolve_run(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(RunFolderError, match="does not exist"):
        discover_runs(tmp_path / "nope")


def test_cli_runs_table_newest_first_with_incomplete_marked(capsys):
    assert main(["runs", "--root", str(RUNS)]) == 0
    out = capsys.readouterr().out
    assert out.index(KILLED) < out.index(SLOW) < out.index(BASE) < out.index(LADDER)
    row = next(line for line in out.splitlines() if KILLED in line and "incomplete" in line)
    assert "gemma-3-270m" in row and "llama.cpp" in row and "3/3" in row
    assert f"{KILLED}: requests.jsonl: truncated last line 5 skipped" in out
    assert f"{LADDER}:   SLO knee: c=4" in out
    for header in ("TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms", "out tok/s", "duration"):
        assert header in out


def test_cli_runs_options_and_filters(capsys):
    assert (
        main(
            [
                "runs",
                "--root",
                str(RUNS),
                "--show-metrics",
                "--show-parameters",
                "--profile",
                "step",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert LADDER in out and BASE not in out
    assert "E2E p99 ms" in out and "SLO" in out and "TPOT 100 ms" in out
    assert main(["runs", "--root", str(RUNS), "--json", "--server", "LLAMA"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data][0] == KILLED and len(data) == 4
    assert data[0]["status"] == "incomplete" and data[-1]["knees"][0]["group"] == "step"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--profile", "nope"], "no run has a profile matching 'nope'; present: quick, step-c1"),
        (
            ["--model", "llama-70b"],
            "no run has a model matching 'llama-70b'; present: gemma-3-270m",
        ),
    ],
)
def test_cli_runs_bad_filters(capsys, argv, message):
    assert main(["runs", "--root", str(RUNS), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_runs_missing_root_and_empty_root(capsys, tmp_path):
    assert main(["runs", "--root", str(tmp_path / "nope")]) == 2
    assert "results folder" in capsys.readouterr().err
    assert main(["runs", "--root", str(tmp_path)]) == 0
    assert "no runs under" in capsys.readouterr().out
    shutil.rmtree(tmp_path)
