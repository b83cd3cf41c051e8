"""End-to-end: the engine against the fake server, checked the way a user would check a run.

Timing tolerances: the fake server sleeps exactly the configured delays with asyncio timers, and
client and server share two (shared) cores, so every measured latency is the configured one plus
scheduling noise; it is never less (timers do not fire early, and the client clock starts before
the request is written). Lower bounds are therefore tight (-1 ms, clock granularity) and upper
bounds leave room for scheduling noise that grows with concurrency.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr

from engine.errors import ExitCode
from engine.events import (
    EventBus,
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RequestFinished,
    RequestStarted,
    RunFinished,
    RunStarted,
    SnapshotTaken,
)
from engine.metrics.summary import RunSummary
from engine.records import RequestRecord
from engine.workload.queue import EntryStatus
from tests.support.builders import Collect, make_profile

MS = 1e-3
NS = 1e9
TTFT, ITL, TOKENS = 0.1, 0.02, 20


# -- 1. known delays -------------------------------------------------------------------------


@pytest.mark.parametrize(("concurrency", "ttft_slack"), [(1, 15 * MS), (4, 25 * MS)])
def test_known_delays_are_measured(fake_server, run_engine, concurrency, ttft_slack):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = TTFT, ITL
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=concurrency, requests=2 * concurrency + 2, max_tokens=TOKENS),
    )

    assert result.summary.status == "completed"
    assert result.profile.successes == 2 * concurrency + 2
    for r in result.records:
        assert r["ok"], r
        # Configured TTFT plus request setup and scheduling: ~2 ms at c=1 here; four streams
        # sharing two cores with the server add a few ms more (+15 / +25 ms, never below -1 ms).
        assert TTFT - 1 * MS <= r["ttft_s"] <= TTFT + ttft_slack
        # TPOT averages 19 gaps, so noise mostly cancels: within -1 / +3 ms of the ITL.
        assert ITL - 1 * MS <= r["tpot_s"] <= ITL + 3 * MS
        # The median gap is robust to a single late chunk: -1 / +3 ms.
        assert ITL - 1 * MS <= r["itl"]["p50_s"] <= ITL + 3 * MS
        assert r["itl"]["count"] == TOKENS - 1
        # e2e is TTFT + 19 ITLs + the tail (finish, usage, [DONE] in one write): every sleep
        # may overshoot a little, so allow +40 ms over 20 timers.
        expected_e2e = TTFT + (TOKENS - 1) * ITL
        assert expected_e2e - 1 * MS <= r["e2e_s"] <= expected_e2e + 40 * MS
        assert r["completion_tokens"] == TOKENS
        assert r["completion_tokens_source"] == "usage"
        assert r["prompt_tokens"] == 7 and r["prompt_tokens_source"] == "usage"
        assert r["token_chunks"] == TOKENS
        assert r["finish_reason"] == "length"
        assert r["http_status"] == 200 and r["retries"] == 0
    # The summary's distributions are built from those same records.
    assert result.profile.ttft_s.count == 2 * concurrency + 2
    assert TTFT - 1 * MS <= result.profile.ttft_s.p50 <= TTFT + ttft_slack
    assert ITL - 1 * MS <= result.profile.itl_s.p50 <= ITL + 3 * MS
    assert result.profile.itl_s.count == (2 * concurrency + 2) * (TOKENS - 1)
    assert result.profile.output_tokens_total == (2 * concurrency + 2) * TOKENS


def test_no_client_queueing_at_concurrency_16(fake_server, run_engine):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.05, 0.01
    result = run_engine(fake_server.url, make_profile(concurrency=16, requests=32, max_tokens=10))

    assert result.profile.successes == 32
    # 16 requests in flight at once; the pool holds 16 connections, so none waits for one.
    # The trace hook would record any wait; 1 ms is far above timer noise and far below a
    # request (which would be the wait if the pool were too small).
    assert max(r["client_queue_wait_s"] for r in result.records) <= 1 * MS
    # Closed loop sends a request as soon as its worker takes it: nothing awaits in between,
    # so lateness is microseconds; 5 ms covers a descheduled process.
    assert max(r["schedule_lag_s"] for r in result.records) <= 5 * MS
    assert result.profile.client_queue_wait_p99_s <= 1 * MS
    # The server really saw 16 at once: request k+16 was sent only after one of the first
    # 16 ended, and the first 16 overlapped.
    first = sorted(result.records, key=lambda r: r["sent_ns"])[:16]
    assert max(r["sent_ns"] for r in first) < min(r["end_ns"] for r in first)


# -- 2. warm-up, request count, duration, rounds ---------------------------------------------


def test_warmup_is_recorded_but_excluded(fake_server, run_engine):
    # Warm-up requests are slow (TTFT 0.3 s), measured ones fast: any leak shows in the summary.
    fake_server.behaviour.ttft_s = 0.02
    fake_server.behaviour.per_request = lambda n: {"ttft_s": 0.3} if n <= 3 else {}
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=5, warmup_requests=3))

    assert len(result.records) == 8
    warm = [r for r in result.records if r["warmup"]]
    assert [r["request_id"] for r in warm] == ["req_000001", "req_000002", "req_000003"]
    assert all(r["ttft_s"] >= 0.3 for r in warm)
    assert result.profile.requests == 5
    assert result.profile.warmup_requests == 3
    assert result.profile.successes == 5
    assert result.profile.ttft_s.count == 5
    assert result.profile.ttft_s.max < 0.3  # no warm-up sample in the distribution
    # The measured window starts after the warm-up: it is shorter than the warm-up alone.
    assert result.profile.duration_s < 0.3


def test_requests_count_is_exact(fake_server, run_engine):
    result = run_engine(fake_server.url, make_profile(concurrency=3, requests=7))
    assert len(result.records) == 7
    assert len(fake_server.behaviour.requests) == 7
    assert result.profile.requests == result.profile.successes == 7


def test_duration_stops_sending_and_lets_in_flight_finish(fake_server, run_engine):
    # Each request lasts ~0.28 s (TTFT 0.1 + 9 gaps of 0.02); at c=2 with 0.5 s the workers
    # send at ~0 and ~0.28 s; the next send (~0.56 s) is past the deadline.
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.1, 0.02
    result = run_engine(
        fake_server.url, make_profile(concurrency=2, requests=None, duration_s=0.5, max_tokens=10)
    )

    start = min(r["scheduled_ns"] for r in result.records)
    deadline = start + 0.5 * NS
    assert len(result.records) == 4
    assert all(r["sent_ns"] < deadline for r in result.records)
    # In-flight requests were not cut at the deadline: they ended after it, successfully.
    assert all(r["ok"] for r in result.records)
    assert max(r["end_ns"] for r in result.records) > deadline
    assert result.profile.status == "completed"
    # Duration = first schedule to last end: ~0.56 s (+0.1 s for scheduling noise).
    assert 0.5 <= result.profile.duration_s <= 0.56 + 0.1


def test_rounds_pause_is_excluded_from_duration(fake_server, run_engine):
    # 3 rounds of 2 requests (~0.1 s each) with 0.3 s pauses: wall ~0.9 s, measured ~0.3 s.
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.05, 0.01
    result = run_engine(
        fake_server.url, make_profile(concurrency=2, requests=6, round_pause_s=0.3, max_tokens=6)
    )

    by_start: dict[int, list[dict]] = {}
    for r in result.records:
        by_start.setdefault(r["scheduled_ns"], []).append(r)
    rounds = [by_start[k] for k in sorted(by_start)]
    assert [len(x) for x in rounds] == [2, 2, 2]  # a round shares one schedule time
    for previous, following in zip(rounds, rounds[1:], strict=False):
        gap = (following[0]["scheduled_ns"] - max(r["end_ns"] for r in previous)) / NS
        assert gap >= 0.3 - 1 * MS  # the pause really happened, after the whole round
    assert result.profile.successes == 6
    # Three ~0.1 s rounds; the two pauses (0.6 s) are not in duration_s. +0.1 s for noise.
    assert 0.3 <= result.profile.duration_s <= 0.3 + 0.1
    assert result.wall_s >= 0.3 + 0.6


def test_rounds_stop_at_the_deadline_without_a_last_pause(fake_server, run_engine):
    # Rounds of one ~0.1 s request, 0.15 s of measured time, 1 s pauses: round 1 ends inside
    # the window, round 2 ends past it (pauses do not count), and then the run must end at
    # once rather than sleep through another pause.
    fake_server.behaviour.ttft_s = 0.1
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=1, requests=None, duration_s=0.15, round_pause_s=1.0),
    )
    assert len(result.records) == 2
    assert result.wall_s < 1.2 + 0.5  # two rounds and one pause; +0.5 s for start and noise


# -- 3. results folder -------------------------------------------------------------------------


def test_results_folder_contents(fake_server, run_engine):
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=2, requests=5, warmup_requests=2),
        api_key=SecretStr("sk-secret-123"),
    )

    # The key was really used...
    assert all(
        h.get("Authorization") == "Bearer sk-secret-123" for h in fake_server.behaviour.headers
    )
    # ...and is written nowhere.
    files = sorted(p for p in result.run_dir.rglob("*") if p.is_file())
    assert {p.name for p in files} == {"run.json", "requests.jsonl", "summary.json"}
    for path in files:
        assert b"sk-secret-123" not in path.read_bytes(), path.name

    lines = (result.run_dir / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 7  # warm-up included
    records = [RequestRecord.model_validate_json(line) for line in lines]
    assert sum(r.warmup for r in records) == 2
    assert len({r.request_id for r in records}) == 7
    assert {r.run_id for r in records} == {result.summary.run_id}

    run_json = _json(result.run_dir / "run.json")
    assert run_json["status"] == "completed" and run_json["exit_code"] == ExitCode.OK
    assert run_json["url"] == fake_server.url and "api_key" not in run_json
    saved = RunSummary.model_validate(_json(result.run_dir / "summary.json"))
    assert saved == result.summary


# -- 4. events ---------------------------------------------------------------------------------


def test_events_arrive_in_order(fake_server, run_engine):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.05, 0.01
    bus = EventBus()
    events: list = []
    bus.subscribe(Collect(events))
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=2, requests=8, max_tokens=6),
        bus=bus,
        snapshot_interval_s=0.05,
    )

    queue_views = [e.entries for e in events if isinstance(e, QueueChanged)]
    assert [entry.status for entry in queue_views[-1]] == [EntryStatus.DONE]
    assert queue_views[-1][0].finished == 8
    kinds = [type(e) for e in events if not isinstance(e, QueueChanged)]
    assert kinds[0] is RunStarted and kinds[1] is ProfileStarted
    assert kinds[-2] is ProfileFinished and kinds[-1] is RunFinished
    middle = kinds[2:-2]
    assert set(middle) <= {RequestStarted, RequestFinished, SnapshotTaken}
    started = [e.request_id for e in events if isinstance(e, RequestStarted)]
    finished = [e.record.request_id for e in events if isinstance(e, RequestFinished)]
    assert sorted(started) == sorted(finished) and len(started) == 8
    for request_id in started:  # each request starts before it finishes
        assert _index(events, RequestStarted, request_id) < _index(
            events, RequestFinished, request_id
        )
    # ~0.4 s of load at 50 ms intervals: a few snapshots, with monotonic counters.
    snaps = [e for e in events if isinstance(e, SnapshotTaken)]
    assert len(snaps) >= 3
    assert [s.finished_total for s in snaps] == sorted(s.finished_total for s in snaps)
    assert all(s.planned_total == 8 and s.in_flight <= 2 for s in snaps)
    ordered = [e for e in events if not isinstance(e, QueueChanged)]
    assert ordered[-1].summary == result.summary
    assert ordered[-2].summary == result.profile


def test_raising_sink_is_detached(fake_server, run_engine):
    bus = EventBus()
    events: list = []
    broken = _Broken()
    bus.subscribe(broken)
    bus.subscribe(Collect(events))
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=4), bus=bus)

    assert result.summary.status == "completed"
    assert result.profile.successes == 4
    assert len(result.records) == 4  # the results writer was unaffected
    notices = [e for e in events if isinstance(e, NoticeRaised)]
    assert len(notices) == 1 and notices[0].level == "error"
    assert "_Broken" in notices[0].message and "sink exploded" in notices[0].message
    assert broken.calls == 1  # detached after its first failure, never called again
    assert broken not in bus.sinks
    assert sum(isinstance(e, RequestFinished) for e in events) == 4
    assert result.summary.notices == [notices[0].message]  # the summary says so too


# -- 5. interrupt -----------------------------------------------------------------------------


def test_interrupt_cancels_in_flight_and_keeps_earlier_records(fake_server, run_engine):
    # Requests 1-4 are quick (~15 ms); from 5 on they would stream for ~5 s.
    b = fake_server.behaviour
    b.ttft_s, b.itl_s = 0.05, 0.05
    b.per_request = lambda n: {"ttft_s": 0.005, "itl_s": 0.0} if n <= 4 else {}

    async def interrupt_soon(engine):
        await asyncio.sleep(0.3)
        engine.interrupt()

    profiles = [
        make_profile(name="first", concurrency=2, requests=10, max_tokens=100),
        make_profile(name="second", concurrency=1, requests=2),
    ]
    result = run_engine(fake_server.url, profiles, during=interrupt_soon)

    assert result.summary.status == "interrupted"
    assert result.summary.exit_code == ExitCode.INTERRUPTED == 130
    assert [p.profile for p in result.summary.profiles] == ["first"]  # second never started
    assert result.profile.status == "interrupted"
    # The run ended right after the interrupt, not after the 5 s streams (+1 s of slack).
    assert result.wall_s < 0.3 + 1.0
    ok = [r for r in result.records if r["ok"]]
    cancelled = [r for r in result.records if not r["ok"]]
    assert len(ok) == 4  # the quick ones, all on disk
    assert len(cancelled) == 2  # the two in flight at the interrupt
    assert all(r["error_kind"] == "cancelled" for r in cancelled)
    assert all("cancelled" in r["error_message"] for r in cancelled)
    assert all(r["token_chunks"] > 0 for r in cancelled)  # they were streaming
    assert len(b.requests) == 6  # nothing sent after the interrupt
    assert result.profile.failures_by_kind == {"cancelled": 2}
    assert _json(result.run_dir / "run.json")["status"] == "interrupted"


def test_interrupt_during_round_pause(fake_server, run_engine):
    async def interrupt_soon(engine):
        await asyncio.sleep(0.3)
        engine.interrupt()

    # One quick request, then a 2 s pause before the next round: the interrupt lands in it.
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=1, requests=3, round_pause_s=2.0),
        during=interrupt_soon,
    )
    assert result.summary.exit_code == ExitCode.INTERRUPTED
    assert len(result.records) == 1 and result.records[0]["ok"]
    assert result.wall_s < 0.3 + 1.0  # not after the 2 s pause


def test_stop_sending_lets_in_flight_finish(fake_server, run_engine):
    b = fake_server.behaviour
    b.ttft_s, b.itl_s = 0.05, 0.02

    async def stop_soon(engine):
        await asyncio.sleep(0.3)
        engine.stop_sending()

    result = run_engine(
        fake_server.url, make_profile(concurrency=2, requests=50, max_tokens=10), during=stop_soon
    )
    # Requests last ~0.23 s: two rounds of two were sent before the stop, all complete.
    assert result.summary.status == "completed" and result.summary.exit_code == ExitCode.OK
    assert result.profile.status == "stopped"
    assert 2 <= len(result.records) <= 6
    assert all(r["ok"] for r in result.records)


# -- helpers -----------------------------------------------------------------------------------


class _Broken:
    def __init__(self) -> None:
        self.calls = 0

    def handle(self, event) -> None:
        if isinstance(event, RequestFinished):
            self.calls += 1
            raise RuntimeError("sink exploded")


def _index(events: list, kind: type, request_id: str) -> int:
    for i, e in enumerate(events):
        rid = (
            e.record.request_id
            if isinstance(e, RequestFinished)
            else getattr(e, "request_id", None)
        )
        if isinstance(e, kind) and rid == request_id:
            return i
    raise AssertionError(f"no {kind.__name__} for {request_id}")


def _json(path):
    return json.loads(path.read_text())
