"""A server that dies mid-run: the run stops sending, probes, fails with the reason or goes on
after a restart (README "When the server dies"). Real server processes, killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import random
import re

from engine.events import EventBus, NoticeRaised
from engine.records import ErrorKind, RequestRecord
from engine.run.outage import FAILURES_IN_A_ROW, FailureStreak, probe
from engine.stats import NS
from tests.support.builders import Collect, make_profile
from tests.support.processes import ServerProcess, free_port
from tests.support.tui_data import record

ITL = ("--itl", "0.01")


def _kill_after(server: ServerProcess, seconds: float):
    async def during(_engine) -> None:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(server.kill)

    return during


def test_a_killed_server_fails_the_run_with_the_reason_and_keeps_every_record(run_engine):
    notices: list[NoticeRaised] = []
    bus = EventBus()
    bus.subscribe(Collect(notices, NoticeRaised))
    with ServerProcess(free_port(), *ITL) as server:
        result = run_engine(
            server.url,
            make_profile(concurrency=4, requests=5000, max_tokens=5),
            bus=bus,
            during=_kill_after(server, 1.0),
            outage_grace_s=1.0,
            limit_s=20,
        )
    summary = result.summary
    assert summary.status == "failed" and summary.exit_code == 1
    assert summary.profiles[0].status == "failed"
    assert summary.error is not None
    match = re.fullmatch(
        rf"server at {re.escape(server.url)} stopped answering at ([\d.]+) s: connection refused",
        summary.error,
    )
    assert match, summary.error
    assert 0.9 < float(match.group(1)) < 3.0  # when the first failure of the streak ended
    # Not thousands of instant failures: the streak, plus what was in flight then.
    failed = [r for r in result.records if not r["ok"]]
    assert FAILURES_IN_A_ROW <= len(failed) <= FAILURES_IN_A_ROW + 4
    assert {r["error_kind"] for r in failed} <= {"connect", "stream_broken"}
    # Every request that finished is on disk and parses, and the summary counts the same.
    lines = (result.run_dir / "requests.jsonl").read_text().splitlines()
    assert len(lines) == summary.profiles[0].requests + summary.profiles[0].warmup_requests
    assert sum(r["ok"] for r in map(json.loads, lines)) > 20
    (outage,) = summary.outages
    assert outage.ended_s is None and outage.reason == "connection refused"
    # The reason went out as an error notice while the run ran (the screen shows it).
    assert any(n.level == "error" and n.message == summary.error for n in notices)
    assert result.wall_s < 8


def test_a_server_restarted_within_the_grace_lets_the_run_go_on_with_the_gap_recorded(
    run_engine,
):
    port = free_port()
    server = ServerProcess(port, *ITL).start()

    async def restart(_engine) -> None:
        await asyncio.sleep(0.8)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(server.start)

    try:
        result = run_engine(
            server.url,
            make_profile(concurrency=2, requests=150, max_tokens=5),
            during=restart,
            outage_grace_s=10.0,
            limit_s=30,
        )
    finally:
        server.kill()
    summary = result.summary
    assert summary.status == "completed" and summary.exit_code == 0, summary.error
    (outage,) = summary.outages
    assert outage.ended_s is not None and 1.0 < outage.gap_s < 6.0
    assert outage.reason == "connection refused"
    assert outage.failures == FAILURES_IN_A_ROW
    after = [r for r in result.records if r["ok"] and r["sent_ns"] / NS > outage.ended_s]
    assert len(after) > 10  # requests were sent again, and succeeded, after the restart
    failed = [r for r in result.records if not r["ok"]]
    assert len(failed) <= FAILURES_IN_A_ROW + 2


def test_answered_requests_reset_the_streak_so_scattered_failures_never_probe():
    streak = FailureStreak(threshold=3)
    connect = _record(ErrorKind.CONNECT)
    assert not streak.add(connect) and not streak.add(connect)
    assert not streak.add(_record(None))  # an answered request: not a dead server
    assert not streak.add(connect) and not streak.add(connect)
    assert not streak.add(_record(ErrorKind.HTTP_5XX, status=503))  # the server answered
    assert [streak.add(connect) for _ in range(3)] == [False, False, True]


def test_a_probe_tells_refused_from_an_answer_and_from_a_5xx():
    port = free_port()
    assert asyncio.run(probe(f"http://127.0.0.1:{port}", 1.0)).reason == "connection refused"
    with ServerProcess(port) as server:
        assert asyncio.run(probe(server.url + "/v1", 1.0)).answered
    with ServerProcess(port, "--status", "503") as server:
        # The models route answers 200 even then; only completions fail: the server is alive.
        assert asyncio.run(probe(server.url, 1.0)).answered


def _record(kind: ErrorKind | None, status: int | None = None) -> RequestRecord:
    base = record(0, "p", rng=random.Random(0), error=kind)
    return base.model_copy(update={"http_status": status})
