"""Every bad input tried so far, and the one line it gets: exit code 2, no traceback.

One row per input: the arguments as a person types them (``{d}`` is a folder of bad files,
``{run}`` a recorded run) and a piece of the line llmtop must print. The next bad input
found is one more row. Rows run through ``tui.cli.main`` in this process, the way the console
script calls it, with an uncaught exception turned into the traceback a person would see.
Nothing listens on ``http://127.0.0.1:9``: an input that slips through fails to connect
(exit 1) instead of starting anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from tests.support.fakeserver import FakeServer
from tests.support.paths import ROOT
from tests.support.run_fixtures import BASE, RUNS, SLOW, copy_run
from tui.cli import main

URL = ["--url", "http://127.0.0.1:9"]
"""A run's server: nothing listens there."""
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
"""root writes into read-only folders, so those rows cannot fail for root."""
READ_ONLY = pytest.mark.skipif(AS_ROOT, reason="root may write into a read-only folder")


def row(argv: list[str], expected: str, *marks: pytest.MarkDecorator) -> object:
    """One bad input, named by what is typed."""
    return pytest.param(argv, expected, marks=marks, id=" ".join(argv) or "(nothing)")


BAD_INPUTS = [
    # -- files: profiles, suites, prompt files --
    row(["run", *URL, "--profile", "{d}/latin1.toml"], "latin1.toml: not UTF-8 text"),
    row(["run", *URL, "--suite", "{d}/latin1.toml"], "latin1.toml: not UTF-8 text"),
    row(["run", *URL, "--profile", "{d}/latin1-prompts.toml"], "latin1.jsonl: not UTF-8 text"),
    row(["run", *URL, "--profile", "{d}/empty.toml"], "set exactly one of 'concurrency'"),
    row(["run", *URL, "--profile", "{d}/syntax.toml"], "syntax.toml: not valid TOML"),
    row(["run", *URL, "--profile", "{d}/unknown-key.toml"], "field 'bogus': unknown field"),
    row(["run", *URL, "--profile", "{d}/no-such.toml"], "no-such.toml: no such profile file"),
    row(["run", *URL, "--profile", "{d}/folder.toml"], "folder.toml: cannot read the profile"),
    row(["run", *URL, "--profile", "{d}/no-prompts.toml"], "no-such.jsonl: no such prompt file"),
    row(["run", *URL, "--profile", "{d}/bad-prompts.toml"], "not-json.jsonl:1: not JSON"),
    row(["run", *URL, "--profile", "no-such-profile"], "unknown profile 'no-such-profile'"),
    row(["run", *URL, "--suite", "no-such-suite"], "unknown suite 'no-such-suite'"),
    row(["run", *URL, "--profile", ""], "unknown profile '': built-in profiles are"),
    row(["run", *URL, "--suite", "{d}/suite-unknown-profile.toml"], "unknown profile 'nope'"),
    row(["run", *URL, "--suite", "{d}/suite-empty.toml"], "field 'profiles': List should have"),
    row(["run", *URL, "--suite", "{d}/unknown-key.toml"], "field 'bogus': unknown field"),
    row(["run", *URL, "--suite", "{d}/suite-ladder-0.toml"], "field 'concurrency': Input should"),
    # -- the server --
    row(["run", "--url", ""], "--url is empty"),
    row(["run", "--url", "ftp://example"], "invalid server URL 'ftp://example'"),
    row(["run", "--url", "http://"], "invalid server URL 'http://'"),
    row(["run", "--url", "http://host:99999"], "the port must be a whole number from 1 to"),
    row(["run", "--url", "http://host:0"], "the port must be a whole number from 1 to 65535"),
    row(["run", "--url", "http://host:abc"], "the port must be a whole number from 1 to"),
    row(["run", "--url", "http://[::1"], "invalid server URL 'http://[::1': Invalid IPv6 URL"),
    row(["run", "--url", "http://[zz]:80"], "invalid server URL 'http://[zz]:80': 'zz' does"),
    row(["run", "--url", "http://gpu box:80"], "invalid server URL 'http://gpu box:80': expected"),
    row(["check", "--url", "http://host:99999"], "the port must be a whole number from 1 to"),
    row(["check", "--url", ""], "pass --url URL"),
    row(["check"], "pass --url URL"),
    row(["run", *URL, "--gpus", "-1"], "--gpus must be a positive number of GPUs (got -1)"),
    row(["run", *URL, "--gpus", "0"], "--gpus must be a positive number of GPUs (got 0)"),
    row(["run", *URL, "--local-parallel", "0"], "--local-parallel must be a positive number"),
    row(["run", *URL, "--server-pid", "0"], "--server-pid must be a positive number"),
    row(["run", *URL, "--server-pid", "-1"], "--server-pid must be a positive number"),
    row(["run", *URL, "--server-cmd", ""], "empty server command"),
    row(["run", *URL, "--server-cmd", "   "], "empty server command"),
    row(["run", *URL, "--server-cmd", 'vllm "x'], "cannot parse server command 'vllm \"x'"),
    row(
        ["run", "--server-cmd", "vllm serve m --port {{port}} --tensor-parallel-size {{2,4}}"]
        + ["--gpus", "1"],
        "no valid configuration: tensor x pipeline parallelism must equal the number of GPUs",
    ),
    row(["run", *URL, "--server-ready-timeout", "0"], "--server-ready-timeout must be a positive"),
    row(["run", *URL, "--server-grace", "-1"], "--server-grace must be a positive number"),
    # -- the load --
    row(["run", *URL, "--concurrency", "0"], "field 'concurrency': Input should be greater"),
    row(["run", *URL, "--concurrency", "-3"], "field 'concurrency': Input should be greater"),
    row(["run", *URL, "--concurrency", "abc"], "--concurrency: invalid int value: 'abc'"),
    row(["run", *URL, "--concurrency", "100001"], "field 'concurrency': Input should be less"),
    row(["run", *URL, "--concurrency", "2", "--rate", "3"], "not allowed with argument"),
    row(["run", *URL, "--requests", "0"], "field 'requests': Input should be greater"),
    row(["run", *URL, "--requests", "-5"], "field 'requests': Input should be greater"),
    row(["run", *URL, "--requests", "x"], "--requests: invalid int value: 'x'"),
    row(["run", *URL, "--rate", "0"], "field 'rate_rps': Input should be greater than 0"),
    row(["run", *URL, "--rate", "-1"], "field 'rate_rps': Input should be greater than 0"),
    row(["run", *URL, "--rate", "fast"], "--rate: 'fast' is not a number"),
    row(["run", *URL, "--rate", "nan"], "--rate: 'nan' is not a number"),
    row(["run", *URL, "--rate", "inf"], "--rate: 'inf' is not a number"),
    row(["run", *URL, "--duration", "0"], "field 'duration_s': Input should be greater than 0"),
    row(["run", *URL, "--duration", "-1"], "field 'duration_s': Input should be greater than 0"),
    row(["run", *URL, "--duration", "1m"], "--duration: '1m' is not a number"),
    row(["run", *URL, "--duration", "nan"], "--duration: 'nan' is not a number"),
    row(["run", *URL, "--warmup", "-1"], "field 'warmup_requests': Input should be greater"),
    row(["run", *URL, "--warmup", "100001"], "field 'warmup_requests': Input should be less"),
    row(["run", *URL, "--max-in-flight", "0"], "field 'max_in_flight': Input should be greater"),
    row(["run", *URL, "--round-pause", "-1"], "field 'round_pause_s': Input should be greater"),
    row(["run", *URL, "--rate", "5", "--round-pause", "1"], "'round_pause_s' needs closed-loop"),
    row(["run", *URL, "--temperature", "5"], "field 'temperature': Input should be less"),
    row(["run", *URL, "--temperature", "nan"], "--temperature: 'nan' is not a number"),
    row(["run", *URL, "--max-tokens", "0"], "field 'max_tokens.min': Input should be greater"),
    row(["run", *URL, "--max-tokens", "-5"], "'-5' is not a token length"),
    row(["run", *URL, "--max-tokens", "10-"], "'10-' is not a token length"),
    row(["run", *URL, "--max-tokens", "1-2-3"], "'1-2-3' is not a token length"),
    row(["run", *URL, "--input-tokens", ""], "'' is not a token length"),
    row(["run", *URL, "--max-tokens", "50-10"], "field 'max_tokens': max (10) must be >= min (50)"),
    row(["run", *URL, "--input-tokens", "abc"], "'abc' is not a token length"),
    row(["run", *URL, "--input-tokens", "0-5"], "field 'input_tokens.min': Input should be"),
    row(["run", *URL, "--arrival", "burst"], "--arrival: invalid choice: 'burst'"),
    row(["run", *URL, "--endpoint", "embeddings"], "--endpoint: invalid choice: 'embeddings'"),
    row(["run", *URL, "--endpoint", "completions", "--system-prompt", "x"], "needs endpoint"),
    row(["run", *URL, "--seed", "x"], "--seed: invalid int value: 'x'"),
    row(["run", *URL, "--pause-between", "-1"], "--pause-between must be 0 or more seconds"),
    # -- the measurement --
    row(["run", *URL, "--slo-tpot", "-1"], "--slo-tpot must be a positive number of seconds"),
    row(["run", *URL, "--slo-ttft", "0"], "--slo-ttft must be a positive number of seconds"),
    row(["run", *URL, "--slo-tpot", "abc"], "--slo-tpot: 'abc' is not a number"),
    row(["run", *URL, "--slo-tpot", "nan"], "--slo-tpot: 'nan' is not a number"),
    row(["run", *URL, "--slo-ttft", "inf"], "--slo-ttft: 'inf' is not a number"),
    row(["run", *URL, "--stall-timeout", "0"], "--stall-timeout must be a positive number"),
    row(["run", *URL, "--connect-timeout", "-1"], "--connect-timeout must be a positive number"),
    row(["run", *URL, "--sample-hz", "0"], "--sample-hz must be a positive number of samples per"),
    # -- scale-out --
    row(["run", *URL, "--workers", "0"], "--workers must be auto or 1 to 4096 (got 0)"),
    row(["run", *URL, "--workers", "many"], "'many' is not a number of workers or auto"),
    row(["run", *URL, "--ray", " "], "--ray is empty"),
    # -- where results go: checked before any request is sent --
    row(["run", *URL, "--output", "/proc/llmtop-x"], "--output /proc/llmtop-x: cannot write"),
    row(["run", *URL, "--output", ""], "argument --output: an empty path: give a folder or file"),
    row(["export", "{run}", "--output", " "], "argument --output/-o: an empty path"),
    row(["report", "{run}", "-o", ""], "argument --output/-o: an empty path"),
    row(["runs", "--root", ""], "argument --root: an empty path"),
    row(["run", *URL, "--output", "{d}/file.txt"], "--output {d}/file.txt: it is a file"),
    row(["run", *URL, "--output", "{d}/file.txt/sub"], "--output {d}/file.txt/sub: {d}/file.txt"),
    row(
        ["run", *URL, "--output", "{d}/read-only/sub"],
        "--output {d}/read-only/sub: cannot write in {d}/read-only: Permission denied",
        READ_ONLY,
    ),
    row(["report", "{run}", "-o", "/proc/x.html"], "--output /proc/x.html: cannot write in"),
    row(["report", "{run}", "-o", "{d}/file.txt/x.html"], "--output {d}/file.txt/x.html: {d}/file"),
    row(["report", "{run}", "-o", "{d}"], "--output {d} is a folder"),
    row(["report", "{run}", "--csv", "{d}/file.txt"], "--csv {d}/file.txt: it is a file"),
    row(["report", "{run}", "--csv", "/proc/x"], "--csv /proc/x: cannot write in /proc"),
    row(
        ["report", "{run}", "-o", "{d}/read-only/x.html"],
        "cannot write in {d}/read-only: Permission denied",
        READ_ONLY,
    ),
    row(["export", "{run}", "--output", "/proc/x"], "--output /proc/x: cannot write in /proc"),
    row(["export", "{run}", "--output", "{d}/file.txt/x"], "--output {d}/file.txt/x: {d}/file"),
    row(["export", "{run}", "--output", "{d}/file.txt"], "--output {d}/file.txt: it is a file"),
    row(
        ["export", "{run}", "--output", "{d}/read-only"],
        "cannot write in {d}/read-only: Permission denied",
        READ_ONLY,
    ),
    # -- runs read back --
    row(["replay", "{d}/file.txt"], "{d}/file.txt is a file, not a run folder"),
    row(["report", "{d}/file.txt"], "{d}/file.txt is a file, not a run folder"),
    row(["export", "{d}/file.txt", "--output", "{d}/csv"], "is a file, not a run folder"),
    row(["compare", "{d}/file.txt", "{run}"], "{d}/file.txt is a file, not a run folder"),
    row(["replay", "{d}/no-such/x"], "{d}/no-such/x: no such folder"),
    row(["replay", "{d}"], "{d} is not a run folder: it holds none of"),
    row(["replay", "no-such-run", "--root", "{d}"], "no run 'no-such-run' under {d}"),
    row(["replay", "{run}"], "replay draws the live screen: it needs a terminal"),
    row(["runs", "--root", "{d}/no-such"], "results folder {d}/no-such does not exist"),
    row(["runs", "--root", "{d}/file.txt"], "results folder {d}/file.txt is a file, not a results"),
    row(["compare", "{run}"], "compare needs at least two runs"),
    row(["compare", "{run}", "{slow}", "--resamples", "0"], "--resamples must be between 100 and"),
    row(
        ["compare", "{run}", "{slow}", "--resamples", "100000000"],
        "--resamples must be between 100 and 100,000 (got 100000000)",
    ),
    row(["compare", "{run}", "{slow}", "--seed", "-1"], "--seed must be 0 or more (got -1)"),
    # -- the command line itself --
    row(["run", *URL, "--bogus"], "unrecognized arguments: --bogus"),
    row(["run", *URL, "extra"], "unrecognized arguments: extra"),
    row(["replay"], "the following arguments are required: RUN"),
    row(["export", "{run}"], "export needs --output DIR (or --trace)"),
    row(["bogus"], "invalid choice: 'bogus'"),
]
"""(arguments, a piece of the one line llmtop must print): each exits 2."""


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the bad files the rows name."""
    d = tmp_path_factory.mktemp("bad")
    latin1 = 'description = "caf\xe9"\nconcurrency = 2\nrequests = 5\n'
    (d / "latin1.toml").write_bytes(latin1.encode("latin-1"))
    (d / "latin1.jsonl").write_bytes('{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    (d / "empty.toml").write_text("")
    (d / "syntax.toml").write_text("concurrency = = 2\n")
    (d / "unknown-key.toml").write_text("concurrency = 2\nrequests = 5\nbogus = 1\n")
    (d / "folder.toml").mkdir()
    (d / "not-json.jsonl").write_text("hello\n")
    (d / "suite-unknown-profile.toml").write_text('profiles = ["nope"]\n')
    (d / "suite-empty.toml").write_text("profiles = []\n")
    (d / "suite-ladder-0.toml").write_text('profiles = ["quick"]\nconcurrency_ladder = [0]\n')
    for name, prompts in [
        ("latin1-prompts", "latin1.jsonl"),
        ("no-prompts", "no-such.jsonl"),
        ("bad-prompts", "not-json.jsonl"),
    ]:
        (d / f"{name}.toml").write_text(
            f'concurrency = 2\nrequests = 5\nprompt_file = "{d / prompts}"\n'
        )
    (d / "file.txt").write_text("not a folder\n")
    (d / "read-only").mkdir(mode=0o555)
    # Copies: a row that slips through may write a report into the run's folder.
    copy_run(BASE, d / "runs")
    copy_run(SLOW, d / "runs")
    return d


def llmtop_main(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` as the console script runs it: (exit code, what reached stderr)."""
    try:
        return main(argv), ""
    except SystemExit as exc:  # argparse exits by itself
        return int(exc.code or 0), ""
    except Exception:  # noqa: BLE001 - what a person would see: the traceback
        return 1, traceback.format_exc()


@pytest.mark.parametrize(("argv", "expected"), BAD_INPUTS)
def test_bad_input_gets_one_clear_line_and_exit_2(
    argv: list[str],
    expected: str,
    bad_files: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An input that slipped through must not start the shared embedded server.
    monkeypatch.setenv("LLMTOP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    runs = bad_files / "runs"
    names = {"d": str(bad_files), "run": str(runs / BASE), "slow": str(runs / SLOW)}
    code, escaped = llmtop_main([arg.format(**names) for arg in argv])
    err = capsys.readouterr().err + escaped
    assert "Traceback" not in err, err
    assert code == 2, err
    assert expected.format(**names) in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_an_unwritable_output_folder_is_refused_before_any_request(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("")
    with FakeServer() as server:
        code, _ = llmtop_main(["run", "--url", server.url, "--output", f"{tmp_path}/file.txt/x"])
        assert code == 2 and server.behaviour.requests == []


def test_replay_into_a_pipe_says_it_needs_a_terminal() -> None:
    # Before: the screen was drawn into the pipe and waited for keys that never came.
    result = subprocess.run(
        [sys.executable, "-m", "tui", "replay", str(RUNS / BASE)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "needs a terminal" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
