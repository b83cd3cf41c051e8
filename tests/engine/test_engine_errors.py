"""End-to-end: every way a request can fail is recorded with the right kind, status and message,
and the run goes on to complete (fails, when every request of a profile failed).

Each test mixes failing requests with successful ones (``Behaviour.per_request``) where it can, so
that "the run still completes and keeps the good records" is checked too.
"""

from __future__ import annotations

import socket

import pytest

from tests.support.builders import make_profile

MS = 1e-3

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n"
    b"<script>var x = '<b>not text</b>';</script></body>\r\n</html>\r\n"
)


def _every_other(**overrides):
    """Requests 2, 4, 6... behave per ``overrides``; 1, 3, 5... succeed."""
    return lambda n: overrides if n % 2 == 0 else {}


@pytest.mark.parametrize(
    ("status", "body", "content_type", "kind", "message"),
    [
        (
            429,
            b'{"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}',
            "application/json",
            "http_4xx",
            "HTTP 429: Rate limit reached",
        ),
        (
            500,
            b'{"error": {"message": "CUDA out of memory", "code": 500}}',
            "application/json",
            "http_5xx",
            "HTTP 500: CUDA out of memory",
        ),
        (
            502,
            HTML_502,
            "text/html",
            "http_5xx",
            "HTTP 502: 502 Bad Gateway 502 Bad Gateway nginx/1.24.0",
        ),
    ],
    ids=["429-json", "500-json", "502-html"],
)
def test_http_errors(fake_server, run_engine, status, body, content_type, kind, message):
    fake_server.behaviour.per_request = _every_other(
        status=status, error_body=body, error_content_type=content_type
    )
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=6))

    assert result.summary.status == "completed"
    assert result.profile.successes == 3 and result.profile.failures == 3
    assert result.profile.failures_by_kind == {kind: 3}
    failed = [r for r in result.records if not r["ok"]]
    assert [r["request_id"] for r in failed] == ["req_000002", "req_000004", "req_000006"]
    for r in failed:
        assert r["error_kind"] == kind
        assert r["http_status"] == status
        assert r["error_message"] == message  # the text, never the tags or the script
        assert r["ttft_s"] is None and r["completion_tokens"] is None
        assert r["e2e_s"] is not None and r["e2e_s"] < 0.5
        assert r["retries"] == 0  # HTTP errors are never re-sent


@pytest.mark.parametrize(
    ("status", "location", "message"),
    [
        (
            307,
            "https://llm.example/v1/chat/completions",
            "HTTP 307 redirect to https://llm.example/v1/chat/completions (not followed: "
            "point --url at the address that answers)",
        ),
        (
            301,
            None,
            "HTTP 301 redirect without a Location header (not followed: point --url at the "
            "address that answers)",
        ),
    ],
)
def test_redirects_are_recorded_with_their_location(
    fake_server, run_engine, status, location, message
):
    fake_server.behaviour.per_request = _every_other(
        status=status, error_body=b"", location=location
    )
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=4))

    assert result.profile.successes == 2
    assert result.profile.failures_by_kind == {"redirect": 2}
    for r in (r for r in result.records if not r["ok"]):
        assert r["http_status"] == status
        assert r["error_message"] == message
        assert r["retries"] == 0


def test_error_object_mid_stream(fake_server, run_engine):
    fake_server.behaviour.per_request = _every_other(error_after_tokens=3)
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=4))

    assert result.summary.status == "completed"
    assert result.profile.successes == 2
    for r in (r for r in result.records if not r["ok"]):
        assert r["error_kind"] == "http_5xx"  # in-stream {"error": {"code": 500}}
        assert r["http_status"] == 200  # the HTTP answer itself was fine
        assert r["error_message"] == "error in stream: boom"
        assert r["token_chunks"] == 3


def test_error_event_mid_stream_keeps_the_servers_message(fake_server, run_engine):
    b = fake_server.behaviour
    b.per_request = _every_other(error_after_tokens=2)
    b.in_stream_error_event = "error"
    b.in_stream_error = b'{"message": "model overloaded, retry later", "type": "server_error"}'
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=4))

    assert result.summary.status == "completed"
    assert result.profile.successes == 2
    assert result.profile.failures_by_kind == {"http_5xx": 2}
    for r in (r for r in result.records if not r["ok"]):
        assert r["http_status"] == 200
        assert r["error_message"] == "error in stream: model overloaded, retry later"
        assert r["token_chunks"] == 2


def test_tokens_claimed_in_usage_but_never_streamed_are_not_throughput(fake_server, run_engine):
    # Every other answer streams only empty deltas, then a usage object claiming 5 tokens.
    fake_server.behaviour.per_request = _every_other(token_text="")
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=4, max_tokens=5))

    assert result.profile.successes == 2
    assert result.profile.failures_by_kind == {"no_output": 2}
    ok = [r for r in result.records if r["ok"]]
    # Output tokens and goodput count only what arrived: the two real answers.
    duration = result.profile.duration_s
    assert result.profile.output_tokens_per_s == pytest.approx(10 / duration)
    assert result.profile.goodput_rps == pytest.approx(2 / duration)
    assert all(r["completion_tokens"] == 5 for r in ok)
    for r in (r for r in result.records if not r["ok"]):
        assert r["token_chunks"] == 0
        assert r["completion_tokens_by_source"] == {"usage": 5}
        assert r["token_count_mismatch"]
        assert "reported 5 completion tokens" in r["error_message"]


def test_connection_dropped_mid_stream(fake_server, run_engine):
    fake_server.behaviour.itl_s = 0.002
    fake_server.behaviour.per_request = lambda n: {"drop_after_tokens": 2} if n >= 3 else {}
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=5))

    assert result.summary.status == "completed"
    first, second, *dropped = result.records
    assert first["ok"] and second["ok"]  # earlier records kept
    assert len(dropped) == 3
    for r in dropped:
        assert r["error_kind"] == "stream_broken", r
        assert r["http_status"] == 200 and r["token_chunks"] == 2
        assert r["error_message"]
        assert r["retries"] == 0  # bytes had arrived: never re-sent
    assert result.profile.failures_by_kind == {"stream_broken": 3}


def test_stream_ending_without_finish_or_done_is_broken(fake_server, run_engine):
    b = fake_server.behaviour
    b.send_finish, b.send_done, b.usage = False, False, False
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=2))
    assert all(r["error_kind"] == "stream_broken" for r in result.records)
    assert all("without a finish reason" in r["error_message"] for r in result.records)


def test_missing_done_is_ok_when_finish_reason_arrived(fake_server, run_engine):
    fake_server.behaviour.send_done = False
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=3))
    assert result.profile.successes == 3
    assert all(
        r["finish_reason"] == "length" and r["completion_tokens"] == 5 for r in result.records
    )


def test_server_not_listening(run_engine):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_engine(f"http://127.0.0.1:{port}", make_profile(concurrency=2, requests=4))

    # Fewer failures than the outage rule's streak: no probe; the profile failed, and says why.
    assert result.summary.status == "failed"
    assert result.summary.exit_code == 1
    assert result.profile.status == "failed"
    assert result.profile.failures_by_kind == {"connect": 4}
    assert result.profile.error is not None
    assert result.profile.error.startswith("all 4 requests failed: connect")
    assert result.summary.error == f"{result.profile.profile}: {result.profile.error}"
    for r in result.records:
        assert r["error_kind"] == "connect"
        assert r["http_status"] is None
        assert "refused" in r["error_message"].lower() or "connect" in r["error_message"].lower()
        assert r["e2e_s"] < 1.0  # refused at once, no waiting for a timeout
    assert result.wall_s < 5


@pytest.mark.parametrize(
    ("behaviour", "chunks"),
    [
        ({"headers_delay_s": 3.0}, 0),  # accepts, then never answers
        ({"ttft_s": 3.0}, 0),  # headers and a role chunk, then silence
        ({"stall_after_tokens": 2, "stall_s": 3.0}, 2),  # stalls mid-stream
    ],
    ids=["before-headers", "before-first-token", "mid-stream"],
)
def test_stall_longer_than_stall_timeout(fake_server, run_engine, behaviour, chunks):
    fake_server.behaviour.per_request = _every_other(**behaviour)
    result = run_engine(
        fake_server.url, make_profile(concurrency=1, requests=4), stall_timeout_s=0.3
    )

    assert result.summary.status == "completed"
    assert result.profile.successes == 2
    stalled = [r for r in result.records if not r["ok"]]
    assert len(stalled) == 2
    for r in stalled:
        assert r["error_kind"] == "timeout", r
        assert "stall timeout" in r["error_message"]
        assert r["token_chunks"] == chunks
        # Given up after the 0.3 s stall timeout, not after the server's 3 s: -1 ms for clock
        # granularity, +0.2 s for the timer and teardown on two shared cores.
        assert 0.3 - 1 * MS <= r["e2e_s"] <= 0.3 + 0.2
    assert result.wall_s < 3.0


def test_rejected_required_field_is_a_plain_4xx(fake_server, run_engine):
    # Only optional fields are dropped and re-sent; any other rejection is the request's fate.
    fake_server.behaviour.reject_fields = ("temperature",)
    result = run_engine(fake_server.url, make_profile(concurrency=2, requests=4))
    assert result.profile.failures_by_kind == {"http_4xx": 4}
    assert all(r["http_status"] == 400 and r["retries"] == 0 for r in result.records)
    assert all("temperature" in r["error_message"] for r in result.records)
    assert result.summary.notices == []
    assert len(fake_server.behaviour.requests) == 4


def test_json_answer_instead_of_a_stream_is_a_protocol_error(fake_server, run_engine):
    fake_server.behaviour.plain_json = True
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=2))
    assert result.profile.failures_by_kind == {"protocol": 2}
    assert all(r["http_status"] == 200 for r in result.records)
    assert all("expected an SSE stream" in r["error_message"] for r in result.records)


def test_in_stream_error_with_4xx_code(fake_server, run_engine):
    # e.g. vLLM reporting a context-length overflow inside the stream
    fake_server.behaviour.per_request = lambda n: {"error_after_tokens": 0}
    fake_server.behaviour.in_stream_error = b'{"error": {"message": "too long", "code": 400}}'
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=2))
    assert result.profile.failures_by_kind == {"http_4xx": 2}
    assert all(r["error_message"] == "error in stream: too long" for r in result.records)


def test_an_over_long_sse_line_fails_that_request_and_the_run_goes_on(fake_server, run_engine):
    # A 20 MB line: past the decoder's 8 MiB bound, the request is given up with a kind and a
    # message that say so, and the next requests are unaffected.
    fake_server.behaviour.per_request = lambda n: {"long_line_bytes": 20_000_000} if n == 2 else {}
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=3))

    assert result.summary.status == "completed"
    assert [r["ok"] for r in result.records] == [True, False, True]
    failed = result.records[1]
    assert failed["error_kind"] == "protocol"
    assert failed["error_message"] == "an SSE line passed 8 MiB without ending"
    assert failed["token_chunks"] == 1


@pytest.mark.parametrize(
    ("behaviour", "kind", "message"),
    [
        (
            {"drop_after_tokens": 2},
            "stream_broken",
            "the connection closed before the answer was complete (Not enough data to satisfy "
            "transfer length header.)",
        ),
        (
            {"raw_response": b"HTTTP/1.1 200 OK\r\n\r\n"},
            "protocol",
            "malformed HTTP response from the server (Bad status line: Expected HTTP/, RTSP/ or "
            "ICE/: b'HTTTP/1.1 200 OK')",
        ),
        (
            {
                "raw_response": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"
            },
            "protocol",
            "malformed HTTP response from the server (Invalid character in chunk size: b'zz')",
        ),
        (
            {"error_after_tokens": 1, "in_stream_error": b'{"choices": ["not an object"]}'},
            "protocol",
            'stream event has an unexpected shape: {"choices": ["not an object"]}',
        ),
    ],
    ids=["dropped", "bad-status-line", "bad-chunk-size", "bad-event-shape"],
)
def test_failure_messages_name_the_servers_problem(
    fake_server, run_engine, behaviour, kind, message
):
    fake_server.behaviour.per_request = _every_other(**behaviour)
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=4))

    assert result.summary.status == "completed"
    assert result.profile.successes == 2
    for r in (r for r in result.records if not r["ok"]):
        assert (r["error_kind"], r["error_message"]) == (kind, message)
