"""Aggregate math: percentiles as NumPy's linear method, warm-up exclusion, throughput, goodput.

Expected values are worked out by hand (NumPy is not a dependency). NumPy's default method
places the q-th percentile of n sorted values at rank r = (n - 1) * q / 100 and interpolates
between values[floor(r)] and values[floor(r) + 1].
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.metrics.summary import Distribution, ProfileAggregate, Slo
from engine.records import ErrorKind, RequestRecord
from engine.stats import mean, percentile
from engine.workload.profile import validate_profile

PROFILE = validate_profile(
    {"name": "agg", "description": "aggregate test", "concurrency": 4, "requests": 10},
    source="test",
)


def make_record(
    n: int = 1,
    *,
    ok: bool = True,
    warmup: bool = False,
    ttft: float | None = 0.1,
    tpot: float | None = 0.02,
    e2e: float | None = 1.0,
    prompt: int | None = 100,
    completion: int | None = 50,
    **fields: Any,
) -> RequestRecord:
    data: dict[str, Any] = {
        "run_id": "r",
        "request_id": f"req_{n:06d}",
        "profile": "agg",
        "concurrency": 4,
        "rate_rps": None,
        "warmup": warmup,
        "endpoint": "chat",
        "scheduled_ns": 0,
        "sent_ns": 0,
        "connection_ready_ns": 0,
        "headers_ns": 0,
        "first_chunk_ns": 0,
        "first_token_ns": 0,
        "first_content_ns": 0,
        "last_token_ns": 0,
        "end_ns": 0,
        "ttft_s": ttft,
        "ttfc_s": ttft,
        "e2e_s": e2e,
        "tpot_s": tpot,
        "ttft_from_scheduled_s": ttft,
        "e2e_from_scheduled_s": e2e,
        "schedule_lag_s": 0.0,
        "client_queue_wait_s": 0.0,
        "itl": None,
        "token_chunks": completion or 0,
        "prompt_tokens": prompt,
        "prompt_tokens_source": "usage" if prompt else None,
        "completion_tokens": completion,
        "completion_tokens_source": "usage" if completion else None,
        "ok": ok,
        "error_kind": None if ok else ErrorKind.HTTP_5XX,
    }
    data.update(fields)
    return RequestRecord(**data)


def summarize(
    records: list[RequestRecord],
    duration_s: float = 2.0,
    slo: Slo | None = None,
    gaps: dict[int, list[float]] | None = None,
) -> Any:
    agg = ProfileAggregate(PROFILE, slo or Slo())
    for i, rec in enumerate(records):
        agg.add(rec, (gaps or {}).get(i, ()))
    return agg.summarize(duration_s, "completed")


# -- percentiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 50, 2.5),  # r = 1.5
        ([1, 2, 3, 4], 90, 3.7),  # r = 2.7 -> 3 + 0.7 * (4 - 3)
        ([1, 2, 3, 4], 99, 3.97),  # r = 2.97
        ([1, 2, 3, 4], 0, 1.0),
        ([1, 2, 3, 4], 100, 4.0),
        ([15, 20, 35, 40, 50], 40, 29.0),  # r = 1.6 -> 20 + 0.6 * (35 - 20)
        ([15, 20, 35, 40, 50], 50, 35.0),  # r = 2, exact rank
        ([15, 20, 35, 40, 50], 95, 48.0),  # r = 3.8 -> 40 + 0.8 * 10
        ([0, 10], 25, 2.5),
        ([0, 10], 99, 9.9),
        ([7], 50, 7.0),
        ([7], 99, 7.0),
    ],
)
def test_percentile_matches_numpy_linear(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_mean_is_exact_for_many_small_floats() -> None:
    assert mean([0.1] * 10) == 0.1
    assert mean([1, 2, 3, 4]) == 2.5


def test_distribution_sorts_its_input() -> None:
    d = Distribution.of([0.4, 0.1, 0.3, 0.2])
    assert d is not None
    assert d.count == 4
    assert d.mean == pytest.approx(0.25)
    assert d.p50 == pytest.approx(0.25)
    assert d.p90 == pytest.approx(0.37)
    assert d.p95 == pytest.approx(0.385)
    assert d.p99 == pytest.approx(0.397)
    assert d.max == 0.4
    assert Distribution.of([]) is None


# -- aggregates ---------------------------------------------------------------------------------


def test_warmup_requests_are_counted_but_excluded_from_everything() -> None:
    measured = [make_record(i, ttft=t) for i, t in enumerate([0.1, 0.2, 0.3, 0.4])]
    warm = [
        make_record(
            10 + i,
            warmup=True,
            ttft=9.0,
            prompt=5000,
            completion=5000,
            retries=3,
            token_count_mismatch=True,
        )
        for i in range(2)
    ]
    s = summarize(warm[:1] + measured + warm[1:])
    assert s.warmup_requests == 2
    assert s.requests == 4
    assert s.successes == 4
    assert s.ttft_s.count == 4
    assert s.ttft_s.max == 0.4
    assert s.ttft_s.p50 == pytest.approx(0.25)
    assert s.input_tokens_total == 400
    assert s.output_tokens_total == 200
    assert s.retries == 0
    assert s.token_count_mismatches == 0


def test_throughput_is_tokens_of_successes_over_duration() -> None:
    records = [make_record(i) for i in range(4)]
    records.append(make_record(9, ok=False, prompt=100, completion=20))
    s = summarize(records, duration_s=2.0)
    assert s.requests == 5
    assert (s.successes, s.failures) == (4, 1)
    assert s.requests_per_s == pytest.approx(2.0)
    assert s.input_tokens_total == 400
    assert s.output_tokens_total == 200
    assert s.input_tokens_per_s == pytest.approx(200.0)
    assert s.output_tokens_per_s == pytest.approx(100.0)
    assert s.total_tokens_per_s == pytest.approx(300.0)
    assert s.mean_input_tokens == pytest.approx(100.0)
    assert s.mean_output_tokens == pytest.approx(50.0)


def test_latency_distributions_only_cover_successes() -> None:
    s = summarize(
        [make_record(1, e2e=1.0), make_record(2, e2e=3.0), make_record(3, ok=False, e2e=100.0)]
    )
    assert s.e2e_s.count == 2
    assert s.e2e_s.mean == pytest.approx(2.0)
    assert s.e2e_s.max == 3.0


def test_failures_by_kind() -> None:
    s = summarize(
        [
            make_record(1),
            make_record(2, ok=False),
            make_record(3, ok=False, error_kind=ErrorKind.TIMEOUT),
            make_record(4, ok=False, error_kind=ErrorKind.TIMEOUT),
        ]
    )
    assert s.failures == 3
    assert s.failures_by_kind == {"http_5xx": 1, "timeout": 2}


def test_goodput_counts_successes_meeting_every_slo() -> None:
    records = [
        make_record(1, ttft=0.2, tpot=0.03),  # good
        make_record(2, ttft=0.6, tpot=0.03),  # TTFT too slow
        make_record(3, ttft=0.2, tpot=0.08),  # TPOT too slow
        make_record(4, ttft=0.1, tpot=None, completion=1),  # one token: no TPOT, good
        make_record(5, ttft=0.5, tpot=0.05),  # exactly on both limits: good
        make_record(6, ok=False, ttft=0.1, tpot=0.01),  # failed: never good
    ]
    s = summarize(records, duration_s=4.0, slo=Slo(ttft_s=0.5, tpot_s=0.05))
    assert s.good_requests == 3
    assert s.goodput_rps == pytest.approx(0.75)
    assert s.slo == Slo(ttft_s=0.5, tpot_s=0.05)


def test_default_slo_is_tpot_only() -> None:
    records = [make_record(1, ttft=30.0, tpot=0.1), make_record(2, tpot=0.1001)]
    s = summarize(records)
    assert s.slo.ttft_s is None and s.slo.tpot_s == 0.1
    assert s.good_requests == 1


def test_ttft_slo_fails_a_request_without_ttft() -> None:
    assert not Slo(ttft_s=1.0).met_by(make_record(ttft=None))
    assert Slo(ttft_s=None, tpot_s=None).met_by(make_record(ttft=None, tpot=None))


def test_itl_pools_the_gaps_of_successful_requests() -> None:
    records = [make_record(1), make_record(2), make_record(3, ok=False)]
    gaps = {0: [0.01, 0.02], 1: [0.03, 0.04, 0.05], 2: [9.0, 9.0]}
    s = summarize(records, gaps=gaps)
    assert s.itl_s.count == 5
    assert s.itl_s.mean == pytest.approx(0.03)
    assert s.itl_s.p50 == pytest.approx(0.03)
    assert s.itl_s.p90 == pytest.approx(0.046)  # r = 3.6 -> 0.04 + 0.6 * 0.01
    assert s.itl_s.max == pytest.approx(0.05)


def test_zero_duration_gives_zero_rates_not_an_error() -> None:
    s = summarize([make_record(1)], duration_s=0.0)
    assert s.requests_per_s == 0.0
    assert s.output_tokens_per_s == 0.0
    assert s.goodput_rps == 0.0


def test_no_records_at_all() -> None:
    s = summarize([])
    assert s.requests == 0
    assert s.ttft_s is None and s.itl_s is None
    assert s.mean_input_tokens is None
    assert s.client_queue_wait_p99_s is None


def test_bookkeeping_counts() -> None:
    records = [
        make_record(
            1,
            completion_tokens_source="timings",
            retries=1,
            exact_output_requested=True,
            exact_output_honoured=True,
        ),
        make_record(
            2,
            completion_tokens_source="chunks",
            token_count_mismatch=True,
            exact_output_requested=True,
            exact_output_honoured=False,
        ),
        make_record(3, client_queue_wait_s=0.5, schedule_lag_s=0.25),
        make_record(4, ok=False, retries=2, token_count_mismatch=True),
    ]
    s = summarize(records)
    assert s.token_sources == {"timings": 1, "chunks": 1, "usage": 1}
    assert s.token_count_mismatches == 2
    assert s.exact_output_requested == 2
    assert s.exact_output_honoured == 1
    assert s.retries == 3
    # p99 over all four records' values [0, 0, 0, 0.5]: r = 2.97 -> 0.97 * 0.5
    assert s.client_queue_wait_p99_s == pytest.approx(0.485)
    assert s.schedule_lag_p99_s == pytest.approx(0.2425)


def test_profile_identity_is_carried() -> None:
    s = summarize([make_record(1)])
    assert (s.profile, s.description, s.load) == ("agg", "aggregate test", "c=4")
    assert s.concurrency == 4 and s.rate_rps is None
    assert s.status == "completed"
    assert s.duration_s == 2.0


def test_input_length_error_is_reported_in_percent_of_the_request() -> None:
    profile = validate_profile({"name": "p", "concurrency": 1, "requests": 3}, "test")
    aggregate = ProfileAggregate(profile, Slo())
    for requested, got in ((100, 110), (100, 100), (200, 190)):
        aggregate.add(_record_for_length(requested, got))
    error = aggregate.summarize(1.0, "completed").input_length_error_pct
    assert error is not None and error.count == 3
    assert error.mean == pytest.approx((10 + 0 - 5) / 3)
    assert error.max == pytest.approx(10.0)


def _record_for_length(requested: int, got: int):
    from engine.http.exchange import Exchange

    ex = Exchange(0)
    ex.sent_ns = 1
    ex.requested_input_tokens = requested
    ex.usage = {"prompt_tokens": got, "completion_tokens": 2}
    ex.token_times = [4, 6]  # the two tokens arrived (usage alone would be no_output)
    ex.finish_reason = "stop"
    ex.end_ns = 10
    return ex.to_record(
        run_id="r",
        request_id="req_1",
        profile="p",
        concurrency=1,
        rate_rps=None,
        warmup=False,
        endpoint="chat",
        origin_ns=0,
    )
