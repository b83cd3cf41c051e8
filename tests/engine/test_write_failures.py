"""A results folder that cannot be written stops the run at once and says so; what is on disk
stays parseable (README "When the disk fills"). A real tmpfs of 200 KB where the test may mount
one (root), and a fault-injecting ``os.write`` everywhere."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import lines
from engine.errors import ExitCode, WriteFailed
from engine.events import EventBus, NoticeRaised
from engine.lines import LineFile
from tests.support.builders import Collect, make_profile


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 KB tmpfs (skipped where this process may not mount one)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class DiskFullAfter:
    """``os.write`` that writes ``budget`` bytes in all to ``.jsonl`` files, then part of the
    next write, then fails with ENOSPC, as a filling disk does. Other descriptors (the event
    loop's own pipes) are left alone."""

    def __init__(self, budget: int, suffix: str = ".jsonl") -> None:
        self.budget = budget
        self.suffix = suffix
        self._write = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(self.suffix):
            return self._write(fd, data)
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), self.budget)
        self.budget -= n
        return self._write(fd, bytes(data[:n]))


def test_a_failed_line_is_cut_off_so_the_file_still_parses(tmp_path, monkeypatch):
    path = tmp_path / "f.jsonl"
    f = LineFile(path)
    f.write(json.dumps({"a": 1}))
    monkeypatch.setattr(lines.os, "write", DiskFullAfter(budget=20))
    with pytest.raises(WriteFailed) as caught:
        f.write(json.dumps({"b": "x" * 100}))
    assert caught.value.saved == 1 and caught.value.disk_full
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}]
    f.write("ignored")  # a failed file stays closed; nothing more is written, nothing raised
    assert path.read_text() == '{"a": 1}\n'


def _check_stopped_run(result, notices: list[NoticeRaised]) -> None:
    summary = result.summary
    saved = (result.run_dir / "requests.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in saved]  # every line parses
    assert 0 < len(records) < 400
    assert summary.status == "failed" and summary.exit_code == ExitCode.WRITE_FAILED
    assert summary.error == f"results folder full: {len(records)} requests saved, run stopped"
    # Said at once (the screen shows it while in-flight requests are cancelled), then counted.
    assert any(
        n.level == "error"
        and n.message.startswith(f"results folder full ({result.run_dir}/requests.jsonl")
        and n.message.endswith("run stopping")
        for n in notices
    ), notices
    # Stopped at once: nothing sent after the failure beyond what was in flight.
    assert summary.profiles[0].requests <= len(records) + 4


def test_a_disk_filling_mid_run_stops_it_at_once(run_engine, fake_server, monkeypatch):
    notices: list[NoticeRaised] = []
    bus = EventBus()
    bus.subscribe(Collect(notices, NoticeRaised))
    monkeypatch.setattr(lines.os, "write", DiskFullAfter(budget=60_000))
    result = run_engine(
        fake_server.url, make_profile(concurrency=4, requests=400), bus=bus, telemetry=None
    )
    _check_stopped_run(result, notices)
    # The summary went through write_json_atomic (not LineFile), so it was written.
    on_disk = json.loads((result.run_dir / "summary.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["error"] == result.summary.error
    run_json = json.loads((result.run_dir / "run.json").read_text())
    assert run_json["status"] == "failed" and run_json["exit_code"] == 3


def test_a_real_full_tmpfs_stops_the_run_and_whatever_is_on_disk_parses(
    tiny_disk, run_engine, fake_server, monkeypatch
):
    notices: list[NoticeRaised] = []
    bus = EventBus()
    bus.subscribe(Collect(notices, NoticeRaised))
    from engine.run.config import RunConfig
    from engine.run.engine import Engine

    config = RunConfig(
        url=fake_server.url,
        model="fake-model",
        profiles=[make_profile(concurrency=4, requests=400)],
        results_root=tiny_disk,
    )
    import asyncio
    import time

    engine = Engine(config, bus=bus)
    started = time.monotonic()
    summary = asyncio.run(asyncio.wait_for(engine.run(), 30))

    class Result:
        pass

    result = Result()
    result.summary, result.run_dir = summary, engine.run_dir
    _check_stopped_run(result, notices)
    assert time.monotonic() - started < 20
    summary_file = engine.run_dir / "summary.json"
    if summary_file.exists():  # room for it, or the console was told it could not be written
        assert json.loads(summary_file.read_text())["status"] in ("failed", "running")
    if not summary_file.exists() or json.loads(summary_file.read_text())["status"] != "failed":
        assert any("summary could not be written" in n.message for n in notices)


def test_a_live_run_whose_folder_cannot_be_written_ends_with_one_line_and_exit_3(tmp_path):
    """The engine runs in a child process under the screen: a results folder it cannot create
    comes back as one line and exit code 3, not a traceback over the screen."""
    from engine.run.config import RunConfig
    from tui.live.engine_process import EngineJob, EngineProcess
    from tui.live.session import EngineEnded
    from tui.live.state import LiveState

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    config = RunConfig(
        url="http://127.0.0.1:9",
        model="m",
        profiles=[make_profile()],
        results_root=blocker / "results",
    )
    state = LiveState()
    engine = EngineProcess(EngineJob(config, "r1"), state)
    engine.start()
    assert engine.join(30)
    assert engine.summary is None and engine.exit_code == ExitCode.WRITE_FAILED
    ended = EngineEnded(engine.error, engine.exit_code)
    assert ended.exit_code == ExitCode.WRITE_FAILED
    assert str(blocker / "results") in str(ended) and "Not a directory" in str(ended)
    assert state.view().notices[-1][0] == "error"


def test_a_samples_file_that_cannot_be_written_stops_the_run_too(
    run_engine, fake_server, monkeypatch
):
    from engine.telemetry.config import TelemetryConfig

    notices: list[NoticeRaised] = []
    bus = EventBus()
    bus.subscribe(Collect(notices, NoticeRaised))
    fake_server.behaviour.itl_s = 0.01
    monkeypatch.setattr(lines.os, "write", DiskFullAfter(budget=2_000, suffix="samples.jsonl"))
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=2, requests=2000),
        bus=bus,
        telemetry=TelemetryConfig(rate_hz=20),
    )
    summary = result.summary
    assert summary.status == "failed" and summary.exit_code == ExitCode.WRITE_FAILED
    saved = len((result.run_dir / "requests.jsonl").read_text().splitlines())
    assert summary.error == f"results folder full: {saved} requests saved, run stopped"
    assert summary.profiles[0].requests < 500  # stopped at once, not after 2000
    samples = (result.run_dir / "samples.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in samples)  # the cut-off line is gone


def test_a_profile_summary_that_cannot_be_written_stops_the_run(
    run_engine, fake_server, monkeypatch
):
    """summary.json is rewritten after every profile: a failure there is a run failure too,
    never a note."""
    from engine.results import writer

    real = writer.write_json_atomic
    calls = {"n": 0}

    def fail_on_profile_summary(path, data):
        if path.name == "summary.json" and calls["n"] == 0:
            calls["n"] += 1
            raise WriteFailed(str(path), OSError(errno.EIO, os.strerror(errno.EIO)))
        return real(path, data)

    monkeypatch.setattr(writer, "write_json_atomic", fail_on_profile_summary)
    result = run_engine(
        fake_server.url,
        [make_profile(name="a", requests=4), make_profile(name="b", requests=4)],
        telemetry=None,
    )
    summary = result.summary
    assert summary.status == "failed" and summary.exit_code == ExitCode.WRITE_FAILED
    assert summary.error is not None and summary.error.startswith("cannot write results (")
    assert "Input/output error" in summary.error and summary.error.endswith(
        "4 requests saved, run stopped"
    )
    assert [p.profile for p in summary.profiles] == ["a"]  # b was never started
