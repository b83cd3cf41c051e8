"""Servers llmtop starts die with it, however it dies (issue 13 D): a real ``kill -9`` of a
real llmtop, with the server a child or, through a shell, a grandchild; and a server that
outlived its llmtop anyway is reported by the next run and stopped by ``llmtop clean``, never
a process that merely has its old PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.servers.stale import ProcessId, ServerRecord
from tests.support.paths import ROOT
from tests.tui.test_cli import LLMTOP
from tests.tui.test_cli import llmtop as run_llmtop

FAKE = f"{sys.executable} -m tests.support.fake_server_cmd --port {{port}} --itl 0.01"
GONE_WITHIN_S = 5.0


def start_llmtop(output: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LLMTOP, "run", "--no-ui", *args, "--duration", "120", "--requests", "100000"]
        + ["--max-tokens", "16", "--warmup", "0", "--output", str(output)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def measuring(output: Path, limit_s: float = 60) -> dict:
    """``server_process`` of run.json once requests are being recorded."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for run_dir in output.glob("*/"):
            records = run_dir / "requests.jsonl"
            if records.exists() and records.read_text().count("\n") >= 2:
                return json.loads((run_dir / "run.json").read_text())["server_process"]
        time.sleep(0.1)
    raise AssertionError("llmtop did not start measuring")


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone_within(processes: list[psutil.Process], limit_s: float) -> list[psutil.Process]:
    """The processes still alive after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in processes if alive(p)]


@pytest.mark.parametrize(
    ("command", "processes"),
    [(FAKE, 1), (f"sh -c '{FAKE}; echo server ended'", 2)],
    ids=["child", "grandchild-under-sh"],
)
def test_kill_9_of_llmtop_takes_its_server_with_it(tmp_path, command, processes):
    llmtop = start_llmtop(tmp_path, "--server-cmd", command)
    tree: list[psutil.Process] = []
    try:
        server = psutil.Process(measuring(tmp_path)["pid"])
        tree = [server, *server.children(recursive=True)]
        assert len(tree) == processes  # under sh -c, the real server is a grandchild
        os.kill(llmtop.pid, signal.SIGKILL)
        llmtop.wait(10)
        assert gone_within(tree, GONE_WITHIN_S) == []
    finally:
        llmtop.kill()
        for process in [*tree, *psutil.Process().children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def test_a_server_an_earlier_llmtop_left_running_is_reported_then_cleaned(tmp_path, fake_server):
    output = tmp_path / "results"
    llmtop = start_llmtop(output, "--server-cmd", FAKE)
    tree: list[psutil.Process] = []
    try:
        server = psutil.Process(measuring(output)["pid"])
        tree = [server]
        # Its watchdog dies first (killed by hand, say): the server outlives both.
        for child in psutil.Process(llmtop.pid).children():
            if "engine.servers.watchdog" in child.cmdline():
                child.kill()
                assert gone_within([child], GONE_WITHIN_S) == []
        os.kill(llmtop.pid, signal.SIGKILL)
        llmtop.wait(10)
        assert alive(server)

        again = run_llmtop(
            "run", "--no-ui", "--url", fake_server.url, "--requests", "1", "--output", str(output)
        )
        assert again.returncode == 0, again.stderr
        assert f"still running: pid {server.pid}" in again.stderr
        assert f"llmtop clean --root {output}" in again.stderr
        assert f"kill -TERM -- -{server.pid}" in again.stderr
        assert alive(server)  # reported; nothing is stopped unasked

        cleaned = run_llmtop("clean", "--root", str(output))
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"stopped: pid {server.pid}" in cleaned.stderr
        assert gone_within([server], GONE_WITHIN_S) == []
        assert "no server left running" in run_llmtop("clean", "--root", str(output)).stdout
    finally:
        llmtop.kill()
        for process in [*tree, *psutil.Process().children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def test_a_recorded_pid_that_is_now_another_process_is_left_alone(tmp_path):
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run_dir = tmp_path / "20260101-000000-abcd"
        run_dir.mkdir()
        started = ProcessId.of(other.pid).create_time
        ServerRecord(
            server=ProcessId(other.pid, started - 100),  # the recorded server ended; PID reused
            pgid=other.pid,
            command=["vllm", "serve", "M"],
            owner=ProcessId(other.pid, 0.0),
            watchdog=None,
        ).write(run_dir)
        result = run_llmtop("clean", "--root", str(tmp_path))
        assert result.returncode == 0
        assert "no server left running" in result.stdout
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_server_shell_runs_the_command_line_as_written(tmp_path):
    # `&&`, a pipe or a redirection only mean something to a shell: the command line goes to
    # /bin/sh as written (re-joining the split words quoted `&&` into an argument of `true`,
    # which exited at once and the server never came up).
    command = f"true && exec {FAKE} 2>&1"
    result = run_llmtop(
        "run", "--no-ui", "--server-cmd", command, "--server-shell", "--requests", "4",
        "--concurrency", "2", "--max-tokens", "4", "--warmup", "0", "--output", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.glob("*/")
    server = json.loads((run_dir / "run.json").read_text())["server_process"]
    assert server["shell"] is True
    records = (run_dir / "requests.jsonl").read_text().splitlines()
    assert len(records) == 4 and all(json.loads(r)["ok"] for r in records)
