"""The real live screen, headless, against the real llama-server: a person watches a run,
adds a scenario, stops the run and quits, and the results folder holds every request. The
engine runs in its own process, as under llmtop run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from engine.results.layout import new_run_id
from engine.run.config import RunConfig
from engine.telemetry.config import TelemetryConfig
from engine.workload.queue import EntryStatus
from tests.support.builders import make_profile
from tests.support.paths import ROOT
from tests.support.real_server import MODEL, start_llama_server
from tui.live.engine_process import EngineJob
from tui.live.session import start_live
from tui.live.widgets.request_list import RequestList

pytestmark = [pytest.mark.real_server, pytest.mark.timeout(180)]


async def _until(pilot, condition, limit_s: float = 90.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "the screen never showed it"
        await pilot.pause(0.2)


def test_live_screen_over_a_real_run(real_server, tmp_path):
    config = RunConfig(
        url=real_server.url,
        model=MODEL,
        results_root=tmp_path,
        hold_open=True,
        profiles=[
            make_profile(name="first", concurrency=2, requests=6, max_tokens=16, input_tokens=32)
        ],
        telemetry=TelemetryConfig(
            rate_hz=4.0, server_url=real_server.url, server_pid=real_server.pid
        ),
    )
    live = start_live(EngineJob(config, new_run_id()))

    async def watch() -> None:
        async with live.app.run_test(size=(100, 30)) as pilot:
            app = live.app
            await _until(pilot, lambda: app.view.totals.get("requests") == 6)
            assert len(app.query_one(RequestList).records) == 6
            assert app.view.latency[0].exact and app.view.latency[0].metrics["ttft_s"].count == 6
            # Samples reach the screen from samples.jsonl: the engine's process and its server.
            assert app.view.host is not None and app.view.host.server_pid == real_server.pid
            await _until(pilot, lambda: app.idle)  # the queue ran out: the session waits
            app.controls.add_profile(
                make_profile(name="added", requests=3, max_tokens=8, input_tokens=32)
            )
            await _until(
                pilot,
                lambda: [e.status for e in app.view.queue] == [EntryStatus.DONE, EntryStatus.DONE],
            )
            await pilot.press("q")  # idle: ends the run without asking, then exits
            await _until(pilot, lambda: not app.is_running, 30)
        assert live.app.return_value == 0

    asyncio.run(watch())
    summary = live.finish()
    assert summary.status == "completed"
    assert [p.profile for p in summary.profiles] == ["first", "added"]
    lines = (tmp_path / summary.run_id / "requests.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 9 and all(r["ok"] for r in records)
    saved = json.loads((tmp_path / summary.run_id / "summary.json").read_text())
    assert saved["status"] == "completed" and len(saved["profiles"]) == 2


def test_a_dying_server_is_a_notification_and_every_finished_request_is_kept(tmp_path):
    server = start_llama_server(tmp_path, parallel=2)
    try:
        config = RunConfig(
            url=server.url,
            model=MODEL,
            results_root=tmp_path,
            hold_open=True,
            profiles=[
                make_profile(
                    name="long", concurrency=2, requests=10_000, max_tokens=32, input_tokens=32
                )
            ],
            server_process=server.info(),
        )
        live = start_live(EngineJob(config, new_run_id()), server)

        async def watch() -> None:
            async with live.app.run_test(size=(100, 30)) as pilot:
                app = live.app
                await _until(pilot, lambda: app.view.totals.get("requests", 0) >= 4)
                server.proc.kill()  # the server dies mid-run
                await _until(pilot, lambda: app.view.status == "failed", 30)
                await pilot.pause(0.5)
                messages = [n.message for n in app._notifications]
                assert any("run failed" in m and "exited with code -9" in m for m in messages)
                await pilot.press("q")  # the run has ended: quits without asking
                await _until(pilot, lambda: not app.is_running, 10)
            assert live.app.return_value == 1

        asyncio.run(watch())
        summary = live.finish()
    finally:
        server.stop()
    assert summary.status == "failed" and summary.server["exit_code"] == -9
    assert "log_tail" in summary.server
    lines = (tmp_path / summary.run_id / "requests.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    ok = [r for r in records if r["ok"]]
    assert len(ok) >= 4 and len(records) == summary.profiles[0].requests
    assert {r["error_kind"] for r in records if not r["ok"]} <= {"stream_broken", "connect"}


SCREEN_PROCESS = """
import sys, time
from pathlib import Path
from engine.workload.profile import validate_profile
from engine.run.config import RunConfig
from tui.live.engine_process import EngineJob
from tui.live.session import start_live
if __name__ == "__main__":
    profile = validate_profile({"name": "long", "concurrency": 2, "requests": 10000,
                                "max_tokens": 400, "input_tokens": 8}, "test")
    config = RunConfig(url=sys.argv[1], model="fake-model", results_root=Path(sys.argv[2]),
                       profiles=[profile], hold_open=True)
    start_live(EngineJob(config, "killed-screen"))
    time.sleep(60)
"""


def test_the_screens_process_killed_still_leaves_a_summary(fake_server, tmp_path):
    fake_server.behaviour.itl_s = 0.005  # 2 s per request: some finish, two are in flight
    screen = subprocess.Popen(
        [sys.executable, "-c", SCREEN_PROCESS, fake_server.url, str(tmp_path)], cwd=ROOT
    )
    requests = tmp_path / "killed-screen" / "requests.jsonl"
    deadline = time.monotonic() + 60
    while not (requests.exists() and len(requests.read_text().splitlines()) >= 2):
        assert time.monotonic() < deadline and screen.poll() is None
        time.sleep(0.1)
    screen.kill()  # kill -9: the screen cannot clean up; the engine's process must
    screen.wait(10)
    summary_path = tmp_path / "killed-screen" / "summary.json"
    while not (
        summary_path.exists() and json.loads(summary_path.read_text())["status"] != "running"
    ):
        assert time.monotonic() < deadline, "the engine never wrote its summary"
        time.sleep(0.1)
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "interrupted"
    records = [json.loads(line) for line in requests.read_text().splitlines()]
    assert sum(r["ok"] for r in records) >= 2
    assert [r["error_kind"] for r in records if not r["ok"]] == ["cancelled", "cancelled"]
