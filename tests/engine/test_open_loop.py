"""End-to-end: open-loop (rate) load against the fake server."""

from __future__ import annotations

import asyncio

from engine.errors import ExitCode
from tests.support.builders import make_profile

MS = 1e-3
NS = 1_000_000_000


def test_constant_rate_schedule(fake_server, run_engine):
    # Each request lasts ~0.3 s, so about six overlap: the schedule must not wait for them.
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.1, 0.05
    result = run_engine(fake_server.url, make_profile(rate_rps=20, requests=None, duration_s=1.0))

    assert result.summary.status == "completed"
    assert len(result.records) == 20  # arrivals at 0, 50, ..., 950 ms
    assert result.profile.successes == 20
    scheduled = sorted(r["scheduled_ns"] for r in result.records)
    gaps = [b - a for a, b in zip(scheduled, scheduled[1:], strict=False)]
    # The schedule is computed, not measured: 50 ms apart to the nanosecond (int rounding).
    assert all(abs(g - 50_000_000) <= 1 for g in gaps)
    # Sends follow the schedule: asyncio timers are ~1 ms late at worst when idle; 20 ms
    # leaves room for a busy shared machine while still being far below the 50 ms spacing.
    assert max(r["schedule_lag_s"] for r in result.records) < 20 * MS
    assert all(r["concurrency"] is None and r["rate_rps"] == 20 for r in result.records)
    # Requests overlapped (the open loop did not wait for completions).
    first = min(result.records, key=lambda r: r["scheduled_ns"])
    assert sum(r["sent_ns"] < first["end_ns"] for r in result.records) >= 4
    for r in result.records:
        assert r["e2e_from_scheduled_s"] >= r["e2e_s"]
        assert r["ttft_from_scheduled_s"] >= r["ttft_s"]
    assert result.profile.e2e_from_scheduled_s.p50 >= result.profile.e2e_s.p50


def _offsets(result) -> list[int]:
    scheduled = sorted(r["scheduled_ns"] for r in result.records)
    return [s - scheduled[0] for s in scheduled]


def test_poisson_is_reproducible_with_a_seed(fake_server, run_engine):
    def profile(seed):
        return make_profile(rate_rps=40, arrival="poisson", seed=seed, requests=12)

    a = run_engine(fake_server.url, profile(7))
    b = run_engine(fake_server.url, profile(7))
    c = run_engine(fake_server.url, profile(8))
    assert len(a.records) == len(b.records) == 12
    assert _offsets(a) == _offsets(b)  # the same seed, the same arrival times, to the ns
    assert _offsets(a) != _offsets(c)
    gaps = [y - x for x, y in zip(_offsets(a), _offsets(a)[1:], strict=False)]
    assert len(set(gaps)) == len(gaps)  # exponential gaps, not a constant spacing
    assert all(r["ok"] for r in a.records + b.records + c.records)


def test_max_in_flight_overflow_is_recorded_as_cancelled(fake_server, run_engine):
    # 10 arrivals 20 ms apart (0-180 ms) while each request takes ~0.3 s and at most 2 may be
    # in flight: the first two are sent, the other eight are recorded as not sent.
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.1, 0.05
    result = run_engine(fake_server.url, make_profile(rate_rps=50, requests=10, max_in_flight=2))

    assert result.summary.status == "completed"
    assert len(result.records) == 10
    assert len(fake_server.behaviour.requests) == 2
    assert result.profile.successes == 2
    assert result.profile.failures_by_kind == {"cancelled": 8}
    for r in (r for r in result.records if not r["ok"]):
        assert r["error_kind"] == "cancelled"
        assert "max_in_flight" in r["error_message"]
        assert r["sent_ns"] is None and r["http_status"] is None
    # Their arrival times are still on the schedule.
    assert all(abs(g - 20_000_000) <= 1 for g in _gaps(result))


def _gaps(result) -> list[int]:
    offsets = _offsets(result)
    return [y - x for x, y in zip(offsets, offsets[1:], strict=False)]


def test_open_loop_warmup_then_measured(fake_server, run_engine):
    result = run_engine(fake_server.url, make_profile(rate_rps=20, requests=5, warmup_requests=2))
    assert sum(r["warmup"] for r in result.records) == 2
    assert result.profile.requests == 5 and result.profile.warmup_requests == 2
    measured = sorted(r["scheduled_ns"] for r in result.records if not r["warmup"])
    assert all(abs(b - a - 50_000_000) <= 1 for a, b in zip(measured, measured[1:], strict=False))


def test_interrupt_wakes_a_slow_open_loop(fake_server, run_engine):
    # 0.5 rps: the second arrival is due at 2 s; the interrupt at 0.3 s must end the run now.
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.05, 0.05

    async def interrupt_soon(engine):
        await asyncio.sleep(0.3)
        engine.interrupt()

    result = run_engine(
        fake_server.url,
        make_profile(rate_rps=0.5, requests=3, max_tokens=100),
        during=interrupt_soon,
    )
    assert result.summary.exit_code == ExitCode.INTERRUPTED
    assert [r["error_kind"] for r in result.records] == ["cancelled"]
    assert result.wall_s < 0.3 + 1.0
