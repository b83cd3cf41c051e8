"""``llmtop run --workers N`` as a person runs it: the real command against the fake server in
a process of its own; Ctrl+C and a parent killed with ``kill -9`` leave no worker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from engine.errors import ExitCode
from tests.support.paths import ROOT
from tests.support.processes import ServerProcess, free_port

LOAD = ("--concurrency", "4", "--max-tokens", "10", "--no-probe", "--no-ui", "--workers", "2")


def llmtop(*args: str, output: Path) -> subprocess.Popen[str]:
    """``llmtop run ARGS`` in a session of its own (so a signal to its group is a terminal's)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "run", *args, "--output", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )


def _workers_of(proc: subprocess.Popen[str], output: Path, timeout_s: float = 60) -> list[int]:
    """The pids of ``proc``'s children (workers, the resource tracker) once measured
    requests end (past the warm-up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        files = list(output.glob("*/requests.jsonl"))
        if files and files[0].read_text().count("\n") >= 20:
            return [pid for pid, _ in _children(proc.pid)]
        time.sleep(0.1)
    raise AssertionError("no request ended")


def _children(pid: int) -> list[tuple[int, str]]:
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            out.append((child.pid, " ".join(child.cmdline())))
        except psutil.Error:  # a short-lived helper that just ended
            pass
    return out


def _gone(pids: list[int], timeout_s: float = 15) -> list[int]:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    return [p.pid for p in alive]


def test_a_run_with_workers_completes_and_says_so(tmp_path):
    with ServerProcess(free_port(), "--itl", "0.002") as server:
        proc = llmtop("--url", server.url, *LOAD, "--requests", "40", output=tmp_path)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.OK, out
    assert "2 worker processes send the load" in out
    assert "worker 0 (" in out and "worker 1 (" in out  # each one's health
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["profiles"][0]["successes"] == 40
    assert [w["worker"] for w in summary["client"]["workers"]] == [0, 1]
    records = [json.loads(x) for x in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert {r["worker"] for r in records} == {0, 1}


def test_ctrl_c_stops_every_worker_and_writes_the_summary(tmp_path):
    with ServerProcess(free_port(), "--itl", "0.01") as server:
        proc = llmtop("--url", server.url, *LOAD, "--duration", "120", output=tmp_path)
        pids = _workers_of(proc, tmp_path)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C does
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, out
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    records = [json.loads(x) for x in (run_dir / "requests.jsonl").read_text().splitlines()]
    cancelled = [r for r in records if r["error_kind"] == "cancelled"]
    assert {r["worker"] for r in cancelled} == {0, 1}
    assert _gone(pids) == []


def test_a_parent_killed_with_sigkill_leaves_no_worker(tmp_path):
    with ServerProcess(free_port(), "--itl", "0.01") as server:
        proc = llmtop("--url", server.url, *LOAD, "--duration", "120", output=tmp_path)
        pids = _workers_of(proc, tmp_path)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        # Each worker sees its pipe close, cancels what it has in flight and exits.
        assert _gone(pids) == []
