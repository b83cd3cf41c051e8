"""The engine adapting to what servers do, against the fake server: llama-server closing
keep-alive connections, servers rejecting ``stream_options``, and asking for (and checking)
exactly ``max_tokens`` output tokens.
"""

from __future__ import annotations

import pytest

from engine.events import EventBus, NoticeRaised
from tests.support.builders import Collect, make_profile

MS = 1e-3


# -- 1. llama-server's stale keep-alive connections --------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
def test_stale_keepalive_connections_are_retried(fake_server, run_engine, concurrency):
    # The server closes every connection after its stream while advertising keep-alive; the
    # fake always loses the race, so every reused connection fails before any response byte.
    b = fake_server.behaviour
    b.close_after_stream, b.ttft_s, b.itl_s = True, 0.005, 0.001
    result = run_engine(fake_server.url, make_profile(concurrency=concurrency, requests=40))

    assert result.profile.failures == 0, result.profile.failures_by_kind
    assert result.profile.successes == 40
    retries = [r["retries"] for r in result.records]
    # Every closed connection that a request was sent on shows up as exactly one retry...
    assert b.stale_closes > 0
    assert sum(retries) == b.stale_closes == result.profile.retries
    # ...and a stale attempt never reached the server: it handled each request once.
    assert len(b.requests) == 40
    # The client learned: one notice, then fresh connections, so only the requests sent on
    # the pooled connections (at most one per worker) were retried.
    assert b.stale_closes <= concurrency
    assert len(result.summary.notices) == 1 and "keep-alive" in result.summary.notices[0]
    # A retried request's timings are its retry's: sane TTFT. Median within the configured
    # 5 ms +15 ms; every request within +100 ms: after a long test session a gen-2 garbage
    # collection (~40 ms here, shown as loop_lag_max_ms) can stall one request, but a retry
    # must never carry a failed attempt's wait.
    ttfts = sorted(r["ttft_s"] for r in result.records)
    assert ttfts[0] >= 0.005 - 1 * MS and ttfts[len(ttfts) // 2] <= 0.005 + 15 * MS
    assert ttfts[-1] <= 0.005 + 100 * MS, (ttfts[-1], result.summary.client)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_once_announced_every_request_gets_a_fresh_connection(fake_server, run_engine, concurrency):
    # The server says keep-alive even to "Connection: close" and closes after every stream: the
    # header alone cannot get llmtop a fresh connection, so after the notice none may be pooled.
    b = fake_server.behaviour
    b.close_after_stream = b.ignore_connection_close = True
    result = run_engine(fake_server.url, make_profile(concurrency=concurrency, requests=12))

    assert result.profile.successes == 12
    assert len(result.summary.notices) == 1 and "fresh connection" in result.summary.notices[0]
    # Only requests sent on a pooled connection before the notice (one per worker: the second
    # round) are re-sent; every later request went out on a fresh connection.
    assert 1 <= b.stale_closes <= concurrency
    retries = [r["retries"] for r in sorted(result.records, key=lambda r: r["request_id"])]
    assert sum(retries) == b.stale_closes
    assert retries[2 * concurrency :] == [0] * (12 - 2 * concurrency), retries


# -- 2. stream_options rejected ----------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
def test_rejected_stream_options_adapts(fake_server, run_engine, concurrency):
    b = fake_server.behaviour
    b.reject_stream_options, b.ttft_s = True, 0.01
    bus = EventBus()
    notices: list[NoticeRaised] = []
    bus.subscribe(Collect(notices, NoticeRaised))
    result = run_engine(
        fake_server.url, make_profile(concurrency=concurrency, requests=8, max_tokens=6), bus=bus
    )

    # Every request succeeds, including those sent with stream_options before the server's
    # first rejection came back (at c=4 the first four were all sent with it).
    assert result.profile.successes == 8, [r["error_message"] for r in result.records]
    assert any("stream_options" in n for n in result.summary.notices)
    assert len(result.summary.notices) == 1  # learned once, not once per request
    assert [n.level for n in notices] == ["warning"]
    # Without usage, tokens are counted from the streamed chunks.
    assert all(r["completion_tokens"] == 6 for r in result.records)
    assert all(r["completion_tokens_source"] == "chunks" for r in result.records)
    # Once learned, requests go without the field: the server answered 400 at most once per
    # request that was already in flight, and the last requests carry no stream_options.
    sent = b.requests
    assert len(sent) <= 8 + concurrency
    assert "stream_options" not in sent[-1]
    assert sum(r["retries"] for r in result.records) == len(sent) - 8


def test_rejected_stream_options_falls_back_to_timings(fake_server, run_engine):
    b = fake_server.behaviour
    b.reject_stream_options, b.timings = True, True
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=3, max_tokens=6))
    assert result.profile.successes == 3
    assert {r["completion_tokens_source"] for r in result.records} == {"timings"}
    assert all(r["completion_tokens"] == 6 for r in result.records)


# -- 3. exact output ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_kind", "fields"),
    [
        ("vllm", {"ignore_eos", "min_tokens"}),  # vLLM needs both to pass EOS
        ("llama.cpp", {"ignore_eos"}),
        ("unknown", {"ignore_eos"}),  # the widely accepted one; dropped if rejected
    ],
)
def test_exact_output_fields_are_sent_and_checked(fake_server, run_engine, server_kind, fields):
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=2, requests=4, max_tokens=9, exact_output=True),
        server_kind=server_kind,
    )
    for body in fake_server.behaviour.requests:
        assert {"ignore_eos", "min_tokens"} & set(body) == fields
        assert body["ignore_eos"] is True
        assert body.get("min_tokens", 9) == body["max_tokens"] == 9
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert all(r["exact_output_requested"] for r in result.records)
    assert all(r["exact_output_honoured"] is True for r in result.records)
    assert result.profile.exact_output_requested == result.profile.exact_output_honoured == 4


def test_exact_output_not_honoured_is_reported(fake_server, run_engine):
    fake_server.behaviour.output_tokens = 5  # the model stops early (EOS) despite ignore_eos
    result = run_engine(
        fake_server.url, make_profile(concurrency=1, requests=3, max_tokens=9, exact_output=True)
    )
    assert all(r["ok"] and r["finish_reason"] == "stop" for r in result.records)
    assert all(r["exact_output_honoured"] is False for r in result.records)
    assert result.profile.exact_output_honoured == 0


def test_without_exact_output_no_fields_are_sent(fake_server, run_engine):
    result = run_engine(fake_server.url, make_profile(requests=2))
    assert all(
        "ignore_eos" not in b and "min_tokens" not in b for b in fake_server.behaviour.requests
    )
    assert all(r["exact_output_honoured"] is None for r in result.records)


def test_rejected_exact_output_fields_are_dropped(fake_server, run_engine):
    # A strict server rejects all three optional fields, one per 400: the first request is
    # re-sent three times; later requests are sent clean at once.
    fake_server.behaviour.reject_fields = ("stream_options", "ignore_eos", "min_tokens")
    result = run_engine(
        fake_server.url,
        make_profile(concurrency=1, requests=3, max_tokens=6, exact_output=True),
        server_kind="vllm",
    )
    assert result.profile.successes == 3, [r["error_message"] for r in result.records]
    assert [r["retries"] for r in result.records] == [3, 0, 0]
    assert len(result.summary.notices) == 3
    last = fake_server.behaviour.requests[-1]
    assert not {"stream_options", "ignore_eos", "min_tokens"} & set(last)
    # Token counts still known (from chunks); honoured is judged on them.
    assert all(r["exact_output_honoured"] is True for r in result.records)
