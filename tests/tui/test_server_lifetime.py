"""Servers llmtop starts die with it, however it dies (issue 13 D): a real ``kill -9`` of a
real llmtop, with the server a child or, through a shell, a grandchild."""

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

from tests.support.paths import ROOT
from tests.tui.test_cli import LLMTOP

FAKE = f"{sys.executable} -m tests.support.fake_server_cmd --port {{port}} --itl 0.01"
GONE_WITHIN_S = 5.0


def start_llmtop(output: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LLMTOP, "run", "--no-ui", *args, "--duration", "120", "--max-tokens", "16"]
        + ["--warmup", "0", "--output", str(output)],
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
