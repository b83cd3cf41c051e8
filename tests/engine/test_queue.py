"""The scenario queue and the interactive controls the UI drives: switch, next, pause, add,
remove, re-run, end. Engine tests run against the fake server.
"""

from __future__ import annotations

import asyncio

from engine.events import EventBus, QueueChanged, SendingPaused
from engine.workload.queue import EntryStatus, ScenarioQueue
from tests.support.builders import Collect, make_profile


def _names(queue: ScenarioQueue) -> list[str]:
    return [e.name for e in queue.entries]


def test_queue_runs_in_order_and_moves_entries():
    queue = ScenarioQueue([make_profile(name=n) for n in ("a", "b", "c")])
    first = queue.start_next()
    assert first is not None and first.name == "a" and queue.running() == queue.entries[0]
    c = queue.entries[2]
    assert queue.move_next(c.entry_id)
    assert _names(queue) == ["a", "c", "b"]
    assert not queue.move_next(first.entry_id), "a running entry is not queued"
    assert not queue.remove(first.entry_id), "an entry that ran holds results"
    queue.finish(first.entry_id, "stopped", finished=3, failed=1)
    assert queue.entries[0].status is EntryStatus.STOPPED and queue.entries[0].failed == 1
    assert queue.remove(queue.entries[2].entry_id)
    assert _names(queue) == ["a", "c"]
    queue.skip_pending()
    assert [e.status for e in queue.entries] == [EntryStatus.STOPPED, EntryStatus.SKIPPED]


def test_rerun_gets_a_distinct_name_next_in_line():
    queue = ScenarioQueue([make_profile(name="a"), make_profile(name="b")])
    a = queue.start_next()
    queue.finish(a.entry_id, "completed", 4, 0)
    again = queue.requeue(a.entry_id)
    third = queue.requeue(a.entry_id)
    assert again.name == "a.r2" and third.name == "a.r3"
    assert _names(queue) == ["a", "a.r3", "a.r2", "b"]
    assert queue.start_next().name == "a.r3"
    assert queue.add(make_profile(name="a.r2")).name == "a.r4"


# -- the engine under control -------------------------------------------------------------------


def _slow(server) -> None:
    server.behaviour.ttft_s, server.behaviour.itl_s = 0.02, 0.01


def test_switch_to_stops_the_current_profile_and_keeps_its_requests(fake_server, run_engine):
    _slow(fake_server)
    profiles = [
        make_profile(name="long", concurrency=2, requests=10_000, max_tokens=5),
        make_profile(name="other", requests=3),
        make_profile(name="target", requests=2),
    ]

    async def switch(engine) -> None:
        await asyncio.sleep(0.4)
        engine.switch_to(engine.queue.entries[2].entry_id)

    result = run_engine(fake_server.url, profiles, during=switch)
    by_name = {p.profile: p for p in result.summary.profiles}
    assert [p.profile for p in result.summary.profiles] == ["long", "target", "other"]
    assert by_name["long"].status == "stopped" and 0 < by_name["long"].requests < 10_000
    assert by_name["target"].successes == 2 and by_name["other"].successes == 3
    long_records = [r for r in result.records if r["profile"] == "long"]
    assert len(long_records) == by_name["long"].requests, "in-flight requests finished, kept"
    assert all(r["error_kind"] is None for r in long_records)
    statuses = [e.status for e in result.engine.queue.entries]
    assert statuses == [EntryStatus.STOPPED, EntryStatus.DONE, EntryStatus.DONE]


def test_pause_sends_nothing_until_resumed(fake_server, run_engine):
    _slow(fake_server)
    bus, events = EventBus(), []
    bus.subscribe(Collect(events))
    seen: dict[str, int] = {}

    async def pause(engine) -> None:
        await asyncio.sleep(0.3)
        engine.set_paused(True)
        await asyncio.sleep(0.3)  # in-flight requests drain
        seen["at_pause"] = len(fake_server.behaviour.requests)
        await asyncio.sleep(0.6)
        seen["after_wait"] = len(fake_server.behaviour.requests)
        engine.set_paused(False)

    result = run_engine(
        fake_server.url, make_profile(concurrency=2, requests=40), bus=bus, during=pause
    )
    assert seen["at_pause"] == seen["after_wait"], "nothing sent while paused"
    assert result.profile.successes == 40
    assert [e.paused for e in events if isinstance(e, SendingPaused)] == [True, False]
    # The idle part of the pause is not in the measured window.
    first = min(r["scheduled_ns"] for r in result.records)
    last = max(r["end_ns"] for r in result.records)
    assert result.profile.duration_s < (last - first) / 1e9 - 0.4


def test_hold_open_waits_for_added_profiles_until_ended(fake_server, run_engine):
    bus, events = EventBus(), []
    bus.subscribe(Collect(events))

    async def drive(engine) -> None:
        await asyncio.sleep(0.5)
        assert engine.queue.entries[0].status is EntryStatus.DONE, "ran, then waits"
        engine.add_profile(make_profile(name="added", requests=2))
        engine.add_profile(make_profile(name="dropped", requests=2))
        engine.remove_entry(engine.queue.entries[2].entry_id)
        await asyncio.sleep(0.5)
        engine.rerun(engine.queue.entries[0].entry_id)
        await asyncio.sleep(0.5)
        engine.end_run()

    result = run_engine(
        fake_server.url,
        make_profile(name="first", requests=2),
        hold_open=True,
        bus=bus,
        during=drive,
    )
    assert result.summary.status == "completed"
    assert [p.profile for p in result.summary.profiles] == ["first", "added", "first.r2"]
    assert {r["profile"] for r in result.records} == {"first", "added", "first.r2"}
    last_view = [e for e in events if isinstance(e, QueueChanged)][-1].entries
    assert [(e.name, e.status) for e in last_view] == [
        ("first", EntryStatus.DONE),
        ("added", EntryStatus.DONE),
        ("first.r2", EntryStatus.DONE),
    ]


def test_end_run_skips_queued_profiles(fake_server, run_engine):
    _slow(fake_server)
    profiles = [make_profile(name="a", requests=10_000), make_profile(name="b")]

    async def end(engine) -> None:
        await asyncio.sleep(0.3)
        engine.end_run()

    result = run_engine(fake_server.url, profiles, during=end)
    assert [p.profile for p in result.summary.profiles] == ["a"]
    assert [e.status for e in result.engine.queue.entries] == [
        EntryStatus.STOPPED,
        EntryStatus.SKIPPED,
    ]


def test_paused_open_loop_does_not_burst_on_resume(fake_server, run_engine):
    async def pause(engine) -> None:
        await asyncio.sleep(0.25)
        engine.set_paused(True)
        await asyncio.sleep(0.6)
        engine.set_paused(False)

    result = run_engine(fake_server.url, make_profile(rate_rps=20, requests=20), during=pause)
    starts = sorted(r["scheduled_ns"] for r in result.records)
    gaps = [(b - a) / 1e9 for a, b in zip(starts, starts[1:])]
    assert max(gaps) > 0.5, "the pause shows as one gap"
    assert sum(g < 0.02 for g in gaps) <= 1, "arrivals keep their 50 ms spacing after it"
