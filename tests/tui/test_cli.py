"""The `llmtop` command as a user runs it: subprocesses, exit codes, files, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fakeserver import Behaviour, FakeServer
from tests.support.paths import ROOT
from tui.options import OPTIONS_SCHEMA

LLMTOP = [sys.executable, "-m", "tui"]


def llmtop(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LLMTOP, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def only_run_dir(root: Path) -> Path:
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return run_dir


def test_help_lists_every_option():
    result = llmtop("run", "--help")
    assert result.returncode == 0
    for option in (
        "--url",
        "--model",
        "--profile",
        "--concurrency",
        "--rate",
        "--requests",
        "--duration",
        "--input-tokens",
        "--max-tokens",
        "--output",
        "--no-ui",
        "--api-key",
        "--exact-output",
        "--warmup",
        "--slo-tpot",
    ):
        assert option in result.stdout


def test_profiles_command_lists_builtins():
    result = llmtop("profiles")
    assert result.returncode == 0
    assert "quick" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--concurrency", "0"], "field 'concurrency': Input should be greater than or equal to 1"),
        (["--input-tokens", "abc"], "'abc' is not a token length: use N or MIN-MAX"),
        (["--max-tokens", "50-10"], "field 'max_tokens': max (10) must be >= min (50)"),
        (
            ["--profile", "no-such-profile"],
            "unknown profile 'no-such-profile': built-in profiles are",
        ),
        (["--url", "ftp://example"], "invalid server URL 'ftp://example'"),
        (["--concurrency", "2", "--rate", "3"], "not allowed with argument"),
        (["--slo-tpot", "-1"], "--slo-tpot must be a positive number of seconds"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(args, expected):
    result = llmtop("run", "--url", "http://127.0.0.1:9", *args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_bad_profile_file_names_file_and_field(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text('concurrency = 2\nrequests = 5\nmax_tokens = "lots"\n')
    result = llmtop("run", "--url", "http://127.0.0.1:9", "--profile", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "max_tokens" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_server_exits_1(tmp_path):
    result = llmtop("run", "--url", "http://127.0.0.1:9", "--output", str(tmp_path))
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9/v1/models" in result.stderr


def test_unknown_model_lists_served_models(tmp_path):
    with FakeServer() as server:
        result = llmtop("run", "--url", server.url, "--model", "Qwen/Qwen3-0.6B")
    assert result.returncode == 2
    assert "model 'Qwen/Qwen3-0.6B' is not served" in result.stderr
    assert "fake-model" in result.stderr


def test_headless_run_writes_results_and_never_loads_textual(tmp_path):
    code = (
        "import sys; from tui.cli import main; "
        f"rc = main(['run', '--url', URL, '--concurrency', '2', '--requests', '6', "
        f"'--max-tokens', '5', '--warmup', '1', '--no-ui', '--output', {str(tmp_path)!r}]); "
        "assert 'textual' not in sys.modules, 'textual was imported'; sys.exit(rc)"
    )
    with FakeServer(Behaviour(itl_s=0.001)) as server:
        result = subprocess.run(
            [sys.executable, "-c", code.replace("URL", repr(server.url))],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "OPENAI_API_KEY": "sk-env-secret-42"},
        )
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path)
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 7 and sum(r["warmup"] for r in records) == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["profiles"][0]["successes"] == 6
    run = json.loads((run_dir / "run.json").read_text())
    assert run["model"] == "fake-model" and run["api_key_given"] is True
    # The options as documented names with a schema version, not argparse's destinations.
    options = run["options"]
    assert options["schema"] == OPTIONS_SCHEMA and "arguments" not in run
    assert options["overrides"] == {
        "concurrency": 2,
        "requests": 6,
        "max_tokens": 5,
        "warmup_requests": 1,
    }
    assert options["url"] == server.url and options["ui"] is False
    assert "api_key" not in options
    for path in run_dir.iterdir():
        assert "sk-env-secret-42" not in path.read_text()
    assert "adhoc (c=2)" in result.stdout


def _start_long_run(tmp_path: Path, server: FakeServer, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *LLMTOP,
            "run",
            "--url",
            server.url,
            "--concurrency",
            "3",
            "--requests",
            "40",
            "--max-tokens",
            "400",
            "--warmup",
            "0",
            "--no-ui",
            "--output",
            str(tmp_path),
            "--api-key",
            "sk-flag-secret-7",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_records(tmp_path: Path, count: int, timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirs = [p for p in tmp_path.iterdir() if p.is_dir()] if tmp_path.exists() else []
        jsonl = dirs[0] / "requests.jsonl" if dirs else None
        if jsonl and jsonl.exists() and len(jsonl.read_text().splitlines()) >= count:
            return dirs[0]
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} records after {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_interrupt_keeps_finished_records_and_cancels_in_flight(tmp_path, sig):
    # 5 ms per token x 400 tokens = 2 s per request: several finish, three are in flight.
    with FakeServer(Behaviour(itl_s=0.005)) as server:
        proc = _start_long_run(tmp_path, server)
        run_dir = _wait_for_records(tmp_path, 3)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    finished = [r for r in records if r["ok"]]
    cancelled = [r for r in records if r["error_kind"] == "cancelled"]
    assert len(finished) >= 3 and len(cancelled) == 3
    assert all(r["completion_tokens"] == 400 for r in finished)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["exit_code"] == 130
    assert summary["profiles"][0]["successes"] == len(finished)
    assert summary["profiles"][0]["failures_by_kind"] == {"cancelled": 3}
    for path in run_dir.iterdir():
        assert "sk-flag-secret-7" not in path.read_text()


def test_kill_9_loses_at_most_the_line_being_written(tmp_path):
    with FakeServer(Behaviour(itl_s=0.001)) as server:
        proc = _start_long_run(tmp_path, server, "--max-tokens", "20")
        run_dir = _wait_for_records(tmp_path, 5)
        proc.kill()
        proc.wait(10)
    text = (run_dir / "requests.jsonl").read_text()
    lines = text.split("\n")
    complete, last = lines[:-1], lines[-1]
    assert len(complete) >= 5
    for line in complete:
        json.loads(line)
    assert last == "" or not last.endswith("}")
    json.loads((run_dir / "run.json").read_text())


def test_ctrl_c_before_the_run_starts_exits_130_without_traceback(tmp_path):
    # A server that accepts connections but never answers: llmtop is stuck in detection.
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        proc = subprocess.Popen(
            [*LLMTOP, "run", "--url", url, "--output", str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err


def test_dry_run_prints_planned_requests_without_contacting_a_server():
    result = llmtop(
        "run",
        "--url",
        "http://127.0.0.1:9",
        "--dry-run",
        "--profile",
        "fixed-rate",
        "--requests",
        "5",
        "--warmup",
        "1",
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [line[1] for line in lines] == ["warm-up"] + ["measure"] * 5
    arrivals = [float(line[2]) for line in lines[1:]]
    assert arrivals[0] == 0.0 and arrivals == sorted(arrivals)  # seeded Poisson offsets
    again = llmtop(
        "run", "--dry-run", "--profile", "fixed-rate", "--requests", "5", "--warmup", "1"
    )
    assert again.stdout == result.stdout  # same seed, same plan
