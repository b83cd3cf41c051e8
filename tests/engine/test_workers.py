"""--workers N: the load sent by worker processes, merged by the parent into one run folder
(engine/run/workers/). Against the fake server; each run spawns real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil
import pytest

from engine.events import EventBus, NoticeRaised, SnapshotTaken
from engine.records import ErrorKind
from tests.support.builders import Collect, make_profile
from tests.support.processes import ServerProcess, free_port


def _by_id(records):
    return {r["request_id"]: r for r in records}


def _plans(records):
    """What each request asked for, by id: the same ids must carry the same requests."""
    return {
        r["request_id"]: (r["requested_input_tokens"], r["requested_max_tokens"], r["warmup"])
        for r in records
    }


def _gone(pids, timeout_s: float = 10.0) -> bool:
    _, alive = psutil.wait_procs(
        [p for p in (_process(pid) for pid in pids) if p is not None], timeout=timeout_s
    )
    return not alive


def _process(pid):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def test_closed_loop_split_between_workers_is_the_one_process_run(fake_server, run_engine):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.01, 0.002
    profile = make_profile(concurrency=6, requests=30, warmup_requests=3, input_tokens=[8, 40])
    one = run_engine(fake_server.url, profile)
    snapshots: list[SnapshotTaken] = []
    bus = EventBus()
    bus.subscribe(Collect(snapshots, SnapshotTaken))
    many = run_engine(fake_server.url, profile, workers=2, bus=bus, snapshot_interval_s=0.05)

    assert many.summary.status == "completed" and many.summary.exit_code == 0
    assert many.profile.requests == 30 and many.profile.successes == 30
    assert many.profile.warmup_requests == 3
    assert len(many.records) == 33
    # The same ids, each the same request (prompt length, max_tokens) as in one process.
    assert _plans(many.records) == _plans(one.records)
    assert {r["worker"] for r in many.records} == {0, 1}
    assert all(r["host"] for r in many.records)
    assert all(r["worker"] is None and r["host"] is None for r in one.records)
    # One file, in the order requests ended, on the parent's clock.
    ends = [r["end_ns"] for r in many.records]
    assert ends == sorted(ends)
    assert all(r["sent_ns"] >= r["scheduled_ns"] >= 0 for r in many.records)
    # Each worker's streams: 3 each, so at most 6 in flight at once across both.
    workers = many.summary.client.workers
    assert [w.worker for w in workers] == [0, 1]
    assert sum(w.requests for w in workers) == 33
    assert all(w.lost is None and w.pid for w in workers)
    assert all(abs(w.clock_offset_ns) < 5_000_000 for w in workers)  # one machine's clock
    assert max(s.in_flight for s in snapshots) <= 6
    assert many.profile.itl_s is not None and many.profile.itl_s.count == 30 * 4
    assert _gone([w.pid for w in workers])


def test_open_loop_workers_send_the_one_schedule(fake_server, run_engine):
    fake_server.behaviour.ttft_s = 0.01
    profile = make_profile(rate_rps=40, arrival="poisson", seed=5, requests=24)
    one = run_engine(fake_server.url, profile)
    many = run_engine(fake_server.url, profile, workers=3)
    assert many.summary.status == "completed"

    def offsets(result):
        by_id = _by_id(result.records)
        first = min(r["scheduled_ns"] for r in result.records)
        return {i: r["scheduled_ns"] - first for i, r in by_id.items()}

    # The union of the three streams is the one schedule: same arrival times, same ids.
    assert offsets(many) == offsets(one)
    assert {r["worker"] for r in many.records} == {0, 1, 2}
    assert max(r["schedule_lag_s"] for r in many.records) < 0.05


def test_a_duration_stops_every_worker_and_ids_stay_unique_across_profiles(fake_server, run_engine):
    fake_server.behaviour.ttft_s = 0.01
    first = make_profile(name="a", rate_rps=20, requests=None, duration_s=1.0)
    second = make_profile(name="b", concurrency=3, requests=7)
    result = run_engine(fake_server.url, [first, second], workers=2)
    assert result.summary.status == "completed"
    a = [r for r in result.records if r["profile"] == "a"]
    assert len(a) == 20  # arrivals at 0, 50, ..., 950 ms, across both workers
    assert result.summary.profiles[0].duration_s == pytest.approx(1.0, abs=0.15)
    ids = [r["request_id"] for r in result.records]
    assert len(set(ids)) == len(ids) == 27
    assert sorted(ids) == [f"req_{n:06d}" for n in range(1, 28)]


def test_stop_and_interrupt_reach_every_worker(fake_server, run_engine):
    fake_server.behaviour.itl_s = 0.01

    async def stop_then_interrupt(engine):
        await asyncio.sleep(1.5)
        engine.interrupt()

    result = run_engine(
        fake_server.url,
        make_profile(concurrency=4, requests=100_000, max_tokens=50),
        workers=2,
        during=stop_then_interrupt,
    )
    assert result.summary.status == "interrupted" and result.summary.exit_code == 130
    cancelled = [r for r in result.records if r["error_kind"] == ErrorKind.CANCELLED]
    assert {r["worker"] for r in cancelled} == {0, 1}  # each had requests in flight
    assert len(cancelled) == 4
    assert _gone([w.pid for w in result.summary.client.workers])


def test_a_killed_worker_is_reported_and_its_records_kept(fake_server, run_engine):
    fake_server.behaviour.itl_s = 0.005
    notices: list[NoticeRaised] = []
    bus = EventBus()
    bus.subscribe(Collect(notices, NoticeRaised))

    killed_at: list[float] = []

    async def kill_worker_1(engine):
        # Once it has sent for a while (starting takes seconds on a busy machine).
        while not engine._senders.workers or engine._senders.workers[-1].records < 10:
            await asyncio.sleep(0.05)
        os.kill(engine._senders.workers[1].link.pid, signal.SIGKILL)
        killed_at.append(time.perf_counter_ns() - engine.origin_ns)

    result = run_engine(
        fake_server.url,
        make_profile(concurrency=4, requests=None, duration_s=3.0, max_tokens=20),
        workers=2,
        bus=bus,
        during=kill_worker_1,
    )
    summary = result.summary
    assert summary.status == "completed"
    lost = [n.message for n in notices if "was not sent from then on" in n.message]
    assert len(lost) == 1
    assert lost[0].startswith("worker 1 (process ")
    assert "killed by SIGKILL (9)" in lost[0]
    assert "2 of 4 streams (50.0 % of the load)" in lost[0]
    health = {w.worker: w for w in summary.client.workers}
    assert health[1].lost and "SIGKILL" in health[1].lost and health[0].lost is None
    from_1 = [r for r in result.records if r["worker"] == 1]
    assert from_1 and len(from_1) == health[1].requests  # what it finished is kept
    assert max(r["end_ns"] for r in from_1) < killed_at[0]  # and nothing after its death
    last_0 = max(r["end_ns"] for r in result.records if r["worker"] == 0)
    assert last_0 > killed_at[0] + 1e9  # the other worker went on
    assert _gone([health[0].pid])


def test_the_outage_rule_holds_every_worker(run_engine):
    with ServerProcess(free_port(), "--itl", "0.01") as server:

        async def kill(_engine):
            await asyncio.sleep(2.0)
            await asyncio.to_thread(server.kill)

        result = run_engine(
            server.url,
            make_profile(concurrency=4, requests=5000, max_tokens=5),
            workers=2,
            during=kill,
            outage_grace_s=1.0,
            limit_s=30,
        )
    summary = result.summary
    assert summary.status == "failed" and summary.exit_code == 1
    assert summary.error and "stopped answering" in summary.error
    connect = [r for r in result.records if r["error_kind"] == ErrorKind.CONNECT]
    # Sending held after 5 failures in a row: each worker may have had a few more in
    # flight or in its batch, but not thousands.
    assert 5 <= len(connect) < 40, len(connect)


def test_auto_adds_a_worker_after_a_saturated_profile(fake_server, run_engine, monkeypatch):
    import engine.run.workers.pool as pool
    import engine.run.workers.pooled_run as pooled_run

    monkeypatch.setattr(pool, "usable_cores", lambda: 8)
    # Whatever this busy machine measures: every share counts as saturated.
    monkeypatch.setattr(pooled_run, "is_saturated", lambda *_figures: True)
    notices: list[NoticeRaised] = []
    bus = EventBus()
    bus.subscribe(Collect(notices, NoticeRaised))
    first = make_profile(name="a", concurrency=2, requests=6)
    second = make_profile(name="b", concurrency=2, requests=6)
    result = run_engine(fake_server.url, [first, second], workers="auto", bus=bus)
    assert result.summary.status == "completed"
    by_profile = {p: {r["worker"] for r in result.records if r["profile"] == p} for p in "ab"}
    assert by_profile == {"a": {0}, "b": {0, 1}}  # auto: 1 worker for c=2, then one more
    texts = [n.message for n in notices]
    assert any(t.startswith("worker 0 was saturated during 'a'") for t in texts)
    assert "--workers auto added worker 1" in " ".join(texts)


def test_a_restarted_server_lets_every_worker_send_again(run_engine):
    port = free_port()
    server = ServerProcess(port, "--itl", "0.01").start()
    restarted: list[float] = []

    async def restart(engine) -> None:
        while not engine._senders.workers or min(w.records for w in engine._senders.workers) < 5:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(server.start)
        restarted.append(time.perf_counter_ns() - engine.origin_ns)

    try:
        result = run_engine(
            server.url,
            make_profile(concurrency=4, requests=300, max_tokens=5),
            workers=2,
            during=restart,
            outage_grace_s=10.0,
            limit_s=60,
        )
    finally:
        server.kill()
    summary = result.summary
    assert summary.status == "completed" and summary.exit_code == 0, summary.error
    (outage,) = summary.outages
    assert outage.ended_s is not None and outage.reason == "connection refused"
    after = [r for r in result.records if r["ok"] and r["sent_ns"] > restarted[0]]
    assert {r["worker"] for r in after} == {0, 1}  # both resumed, their own holds lifted
    assert summary.profiles[0].successes + summary.profiles[0].failures == 300


def test_reports_larger_than_the_pipe_arrive_whole_on_uvloop(fake_server, run_engine):
    # llmtop runs the engine on uvloop, whose add_reader made the pipe non-blocking: a report
    # larger than the socket buffer (here each ~20k-token record with its gaps, ~400 KB)
    # then failed half-read, every worker "stopped answering" and the run still completed.
    profile = make_profile(concurrency=2, requests=4, warmup_requests=0, max_tokens=20_000)
    result = run_engine(fake_server.url, profile, workers=2, save_itl=True, uvloop=True)

    assert result.summary.status == "completed"
    assert [w.lost for w in result.summary.client.workers] == [None, None]
    assert len(result.records) == 4
    assert all(r["ok"] and len(r["itl_s"]) == 19_999 for r in result.records)


def test_a_run_whose_every_worker_is_lost_fails(fake_server, run_engine):
    fake_server.behaviour.itl_s = 0.005

    async def kill_every_worker(engine):
        while not engine._senders.workers or engine._senders.workers[-1].records < 4:
            await asyncio.sleep(0.05)
        for state in engine._senders.workers:
            os.kill(state.link.pid, signal.SIGKILL)

    result = run_engine(
        fake_server.url,
        make_profile(concurrency=4, requests=None, duration_s=20.0, max_tokens=20),
        workers=2,
        during=kill_every_worker,
        uvloop=True,
    )
    summary = result.summary
    assert summary.status == "failed" and summary.exit_code == 1
    assert "every worker of" in (summary.error or "") and "was lost" in (summary.error or "")
    assert result.wall_s < 15  # it ended when nobody was left, not at the 20 s duration
    assert all(w.lost and "SIGKILL" in w.lost for w in summary.client.workers)
    assert result.records  # what they finished is kept
