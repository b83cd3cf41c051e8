"""README's exit-code table, row by row, through the real ``llmtop`` command: against a
``--url`` server and against a server llmtop starts (``--server-cmd``), each a real process on
127.0.0.1 (the fake OpenAI server, tests/support/fakeserver.py), killed for real where a row
needs a dead server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.errors import ExitCode
from tests.engine.test_write_failures import tiny_disk  # noqa: F401 - a fixture
from tests.support.paths import ROOT
from tests.support.processes import ServerProcess, free_port

LOAD = ("--concurrency", "2", "--max-tokens", "5", "--warmup", "0", "--no-probe")
"""A small closed-loop load; the request count is set per row."""
LIMIT_S = 60


def llmtop(*args: str, output: Path) -> subprocess.Popen[str]:
    """``llmtop run --no-ui ARGS`` in the background, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "run", "--no-ui", *args, "--output", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=LIMIT_S)
    assert "Traceback" not in out, out
    return proc.returncode, out


def wait_for_records(output: Path, n: int) -> None:
    """Until the run's requests.jsonl holds ``n`` lines (the run is under way)."""
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        files = list(output.glob("*/requests.jsonl"))
        if files and len(files[0].read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} records under {output}")


def summary(output: Path) -> dict:
    (path,) = output.glob("*/summary.json")
    return json.loads(path.read_text())


# -- a server given with --url --


def test_0_completed(tmp_path):
    with ServerProcess(free_port()) as server:
        code, out = finish(llmtop("--url", server.url, *LOAD, "--requests", "8", output=tmp_path))
    assert code == ExitCode.OK, out
    assert summary(tmp_path)["status"] == "completed"


def test_1_every_request_refused_with_a_401_names_the_error_once(tmp_path):
    body = '{"error": {"message": "invalid api key", "type": "auth"}}'
    with ServerProcess(free_port(), "--status", "401", "--error-body", body) as server:
        code, out = finish(llmtop("--url", server.url, *LOAD, "--requests", "24", output=tmp_path))
    assert code == ExitCode.FAILED, out
    assert "all 24 requests failed: HTTP 401 invalid api key" in out
    assert summary(tmp_path)["status"] == "failed"


def test_1_a_server_killed_mid_run(tmp_path):
    with ServerProcess(free_port(), "--itl", "0.01") as server:
        proc = llmtop(
            "--url", server.url, *LOAD, "--requests", "5000", "--outage-grace", "1", output=tmp_path
        )
        wait_for_records(tmp_path, 20)
        server.kill()
        code, out = finish(proc)
    assert code == ExitCode.FAILED, out
    assert re.search(
        rf"{re.escape(server.url)} stopped answering at [\d.]+ s: connection refused", out
    )
    data = summary(tmp_path)
    assert data["status"] == "failed" and data["profiles"][0]["status"] == "failed"
    assert data["profiles"][0]["requests"] < 100  # not thousands of instant failures


def test_1_nothing_listening_at_the_start(tmp_path):
    code, out = finish(llmtop("--url", f"http://127.0.0.1:{free_port()}", *LOAD, output=tmp_path))
    assert code == ExitCode.FAILED, out
    assert "cannot reach" in out


def test_2_bad_input(tmp_path):
    code, out = finish(llmtop("--url", "http://127.0.0.1:1", "--concurrency", "0", output=tmp_path))
    assert code == ExitCode.USAGE, out
    assert out.startswith("llmtop: error:") and "concurrency" in out


def test_3_results_folder_full(tmp_path, tiny_disk):  # noqa: F811 - the fixture
    with ServerProcess(free_port()) as server:
        code, out = finish(
            llmtop("--url", server.url, *LOAD, "--requests", "400", output=tiny_disk)
        )
    assert code == ExitCode.WRITE_FAILED, out
    match = re.search(r"results folder full: (\d+) requests saved, run stopped", out)
    assert match, out
    (records,) = tiny_disk.glob("*/requests.jsonl")
    lines = records.read_text().splitlines()
    assert len(lines) == int(match.group(1)) and all(json.loads(line) for line in lines)


def test_130_interrupted(tmp_path):
    with ServerProcess(free_port(), "--itl", "0.01") as server:
        proc = llmtop("--url", server.url, *LOAD, "--requests", "5000", output=tmp_path)
        wait_for_records(tmp_path, 10)
        proc.send_signal(signal.SIGINT)
        code, out = finish(proc)
    assert code == ExitCode.INTERRUPTED, out
    assert summary(tmp_path)["status"] == "interrupted"


# -- a server llmtop starts (--server-cmd) --


def server_cmd(*args: str) -> tuple[str, str]:
    """``--server-cmd`` running the fake server on the port llmtop picks."""
    return (
        "--server-cmd",
        " ".join([sys.executable, "-m", "tests.support.fakeserver", *args, "--port", "{port}"]),
    )


def test_0_completed_with_a_started_server(tmp_path):
    code, out = finish(llmtop(*server_cmd(), *LOAD, "--requests", "8", output=tmp_path))
    assert code == ExitCode.OK, out


def test_1_a_started_server_that_dies_mid_run(tmp_path):
    proc = llmtop(*server_cmd("--itl", "0.01"), *LOAD, "--requests", "5000", output=tmp_path)
    wait_for_records(tmp_path, 20)
    (child,) = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "tests.support.fakeserver" in " ".join(p.cmdline())
    ]
    os.kill(child.pid, signal.SIGKILL)
    code, out = finish(proc)
    assert code == ExitCode.FAILED, out
    assert summary(tmp_path)["status"] == "failed"


def test_130_interrupted_with_a_started_server(tmp_path):
    proc = llmtop(*server_cmd("--itl", "0.01"), *LOAD, "--requests", "5000", output=tmp_path)
    wait_for_records(tmp_path, 10)
    proc.send_signal(signal.SIGINT)
    code, out = finish(proc)
    assert code == ExitCode.INTERRUPTED, out


@pytest.mark.parametrize("code", list(ExitCode))
def test_every_exit_code_has_a_test_here(code):
    names = [name for name in globals() if name.startswith(f"test_{int(code)}_")]
    assert names, f"no test runs exit code {int(code)}"
