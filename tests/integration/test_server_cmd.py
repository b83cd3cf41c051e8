"""llmtop starting servers itself (--server-cmd) with the real llama-server: start, readiness,
stop, a crash mid-run, a server that never becomes ready, and a two-configuration matrix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.real_server import read_manifest

pytestmark = pytest.mark.real_server


def llama_cmd(extra: str = "") -> str:
    manifest = read_manifest()
    if manifest is None:
        pytest.fail("llama-server is not built: run `llmtop setup-local`")
    return (
        f"{manifest['binary']} -m {manifest['model']} --host 127.0.0.1 --port {{port}} "
        f"-c 2048 --metrics {extra}"
    )


def llmtop(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tui", "run", "--no-ui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def test_server_cmd_is_started_measured_and_stopped(tmp_path):
    result = llmtop(
        "--server-cmd",
        llama_cmd("--parallel 2"),
        "--concurrency",
        "2",
        "--requests",
        "6",
        "--max-tokens",
        "48",
        "--warmup",
        "0",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path)
    process = json.loads((run_dir / "run.json").read_text())["server_process"]
    assert process["command"][0].endswith("llama-server") and "--parallel" in process["command"]
    assert process["startup_s"] > 0 and process["exit_code"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process["pid"], 0)
    assert "llama" in (run_dir / "server.log").read_text().lower()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["profiles"][0]["successes"] == 6
    # The server's own process was sampled: a 253 MB model mapped in, a core busy decoding.
    host = summary["profiles"][0]["telemetry"]["host"]
    assert host["server_rss_mib_peak"] > 200 and host["server_cpu_pct_peak"] > 20
    assert host["client_cpu_pct_peak"] > 0
    assert "server process: CPU mean" in result.stdout
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert {s["kind"] for s in samples} >= {"host", "server_metrics"}
    assert all(s["t_ns"] > 0 for s in samples)


def test_matrix_of_two_configurations_compares_them(tmp_path):
    result = llmtop(
        "--server-cmd",
        llama_cmd("--parallel {1,4}"),
        "--concurrency",
        "4",
        "--requests",
        "8",
        "--max-tokens",
        "16",
        "--warmup",
        "0",
        "--output",
        str(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 2
    commands = [json.loads((d / "run.json").read_text())["server_process"]["command"] for d in dirs]
    assert sorted(c[c.index("--parallel") + 1] for c in commands) == ["1", "4"]
    (matrix,) = tmp_path.glob("matrix-*.json")
    assert [m["label"] for m in json.loads(matrix.read_text())] == ["parallel=1", "parallel=4"]
    table = result.stdout[result.stdout.index("configurations compared") :]
    assert "parallel=1" in table and "parallel=4" in table and "*" in table


def test_server_that_never_becomes_ready_fails_with_its_log(tmp_path):
    script = "echo loading weights; sleep 30"
    result = llmtop(
        "--server-cmd",
        f"sh -c '{script}'",
        "--url",
        "http://127.0.0.1:9",
        "--server-ready-timeout",
        "2",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "server not ready after 2 s" in result.stderr
    assert "loading weights" in result.stderr


def test_server_that_exits_at_start_fails_with_its_code_and_log(tmp_path):
    result = llmtop(
        "--server-cmd",
        "sh -c 'echo no GPU found; exit 3'",
        "--url",
        "http://127.0.0.1:9",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "exited with code 3 before it was ready" in result.stderr
    assert "no GPU found" in result.stderr


def test_server_dying_mid_run_keeps_every_finished_record(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            "--no-ui",
            "--server-cmd",
            llama_cmd("--parallel 2"),
            "--concurrency",
            "2",
            "--requests",
            "40",
            "--max-tokens",
            "48",
            "--warmup",
            "0",
            "--output",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    run_dir = None
    while time.monotonic() < deadline:
        dirs = run_dirs(tmp_path) if tmp_path.exists() else []
        jsonl = dirs[0] / "requests.jsonl" if dirs else None
        if jsonl and jsonl.exists() and len(jsonl.read_text().splitlines()) >= 3:
            run_dir = dirs[0]
            break
        time.sleep(0.1)
    assert run_dir is not None, "no records appeared"
    pid = json.loads((run_dir / "run.json").read_text())["server_process"]["pid"]
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    finished = [r for r in records if r["ok"]]
    failed = [r for r in records if not r["ok"]]
    assert len(finished) >= 3 and len(records) < 40  # the run stopped sending
    assert failed and {r["error_kind"] for r in failed} <= {"stream_broken", "connect"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["exit_code"] == 1
    assert "exited with code -9" in summary["error"]
    assert summary["server"]["exit_code"] == -9 and summary["server"]["log_tail"]
    assert summary["profiles"][0]["successes"] == len(finished)
