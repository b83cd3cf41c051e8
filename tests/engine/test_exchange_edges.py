"""Protocol edge cases replayed into an ``Exchange``: framing variants, how a stream ends,
errors in the stream, what counts as a token, and where token counts come from.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine.http.exchange import Exchange
from engine.http.failures import StreamError, error_event
from engine.records import ErrorKind
from tests.support.exchange_replay import (
    ORIGIN,
    SCHEDULED,
    SENT,
    arrival,
    chunk,
    payloads_of,
    record,
    replay,
    replay_file,
)

# -- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "edge_crlf.sse",
        "edge_data_no_space.sse",
        "edge_keepalive_comments.sse",
        "edge_no_blank_lines.sse",
    ],
)
def test_framing_variants_give_the_same_record(name: str) -> None:
    rec = replay_file(name)
    assert rec.ok
    assert rec.finish_reason == "stop"
    assert rec.token_chunks == 3
    assert rec.first_token_ns == arrival(1) - ORIGIN
    assert rec.completion_tokens == 3
    assert rec.prompt_tokens == 5
    assert rec.output_chars == len("naïve café ✓")


def test_missing_done_still_succeeds_on_finish_reason() -> None:
    ex = replay(payloads_of("edge_no_done.sse"))
    assert not ex.done
    rec = record(ex)
    assert rec.ok
    assert rec.finish_reason == "length"
    assert rec.completion_tokens == 3
    assert rec.completion_tokens_source == "usage"


def test_done_without_finish_reason_succeeds() -> None:
    rec = record(replay([chunk({"content": "a"}), chunk({"content": "b"}), b"[DONE]"]))
    assert rec.ok
    assert rec.finish_reason is None
    assert rec.completion_tokens == 2
    assert rec.completion_tokens_source == "chunks"


def test_data_after_done_is_not_counted() -> None:
    ex = replay(payloads_of("edge_data_after_done.sse"))
    rec = record(ex)
    assert rec.ok
    assert rec.token_chunks == 3
    assert rec.output_chars == len("one two three")
    assert rec.last_token_ns == arrival(3) - ORIGIN
    assert rec.completion_tokens_by_source == {"usage": 3, "chunks": 3}
    assert not rec.token_count_mismatch


def test_no_finish_reason_and_no_done_is_not_ok() -> None:
    ex = replay([chunk({"content": "a"}), chunk({"content": "b"})])
    ex.fail(ErrorKind.STREAM_BROKEN, "stream ended without a finish reason or [DONE]")
    rec = record(ex)
    assert not rec.ok
    assert rec.error_kind == ErrorKind.STREAM_BROKEN
    assert rec.token_chunks == 2


def test_failure_wins_over_a_finish_reason() -> None:
    ex = replay([chunk({"content": "a"}, "stop")])
    ex.fail(ErrorKind.CANCELLED, "cancelled by llmtop")
    ex.fail(ErrorKind.TIMEOUT, "later failures do not overwrite the first")
    rec = record(ex)
    assert not rec.ok
    assert rec.error_kind == ErrorKind.CANCELLED
    assert rec.error_message == "cancelled by llmtop"


def test_error_object_mid_stream_raises_with_the_server_code() -> None:
    payloads = payloads_of("edge_error_midstream.sse")
    ex = Exchange(SCHEDULED)
    ex.sent_ns = SENT
    with pytest.raises(StreamError) as caught:
        for i, payload in enumerate(payloads):
            ex.on_payload(payload, arrival(i))
    assert caught.value.kind == ErrorKind.HTTP_5XX
    assert caught.value.status == 500
    assert "illegal memory access" in str(caught.value)
    # Tokens before the error were kept.
    assert ex.streamed_tokens == 2


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        ({"message": "rate limited", "type": "rate_limit", "code": 429}, ErrorKind.HTTP_4XX, 429),
        ({"message": "bad input", "code": 400}, ErrorKind.HTTP_4XX, 400),
        ({"message": "overloaded", "code": 503}, ErrorKind.HTTP_5XX, 503),
        ({"message": "no code at all"}, ErrorKind.HTTP_5XX, None),
        ({"message": "OpenAI-style string code", "code": "server_error"}, ErrorKind.HTTP_5XX, None),
        ("Input validation error: TGI sends a plain string", ErrorKind.HTTP_5XX, None),
    ],
)
def test_in_stream_error_kind_follows_its_code(
    error: Any, kind: ErrorKind, status: int | None
) -> None:
    ex = Exchange(SCHEDULED)
    with pytest.raises(StreamError) as caught:
        ex.on_payload(orjson.dumps({"error": error}), SENT)
    assert caught.value.kind == kind
    assert caught.value.status == status
    assert str(caught.value).startswith("error in stream: ")


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (b'{"message": "overloaded", "code": 503}', ErrorKind.HTTP_5XX, "overloaded"),
        (b'{"error": {"message": "too long", "code": 400}}', ErrorKind.HTTP_4XX, "too long"),
        (b'{"error": "plain string inside"}', ErrorKind.HTTP_5XX, "plain string inside"),
        (b"model crashed", ErrorKind.HTTP_5XX, "model crashed"),
        (b"", ErrorKind.HTTP_5XX, "(no message)"),
        (b'{"detail": "queue full"}', ErrorKind.HTTP_5XX, "queue full"),
        (
            b'{"type": "overloaded", "code": 529}',
            ErrorKind.HTTP_5XX,
            '{"type":"overloaded","code":529}',
        ),
    ],
)
def test_error_event_keeps_the_servers_message(data: bytes, kind: ErrorKind, message: str) -> None:
    failure = error_event(data)
    assert failure.kind == kind
    assert str(failure) == f"error in stream: {message}"


def test_error_event_stream_keeps_the_tokens_before_it() -> None:
    ex = replay(payloads_of("edge_error_event.sse"))
    assert ex.streamed_tokens == 2
    assert ex.finish_reason is None  # the chunk after the error event never reached it


def test_null_error_field_is_not_an_error() -> None:
    ex = Exchange(SCHEDULED)
    ex.on_payload(chunk({"content": "a"}, error=None), SENT)
    ex.on_payload(b'{"choices":[],"usage":{"completion_tokens":1},"error":null}', SENT + 1)
    assert ex.usage == {"completion_tokens": 1}


@pytest.mark.parametrize("payload", [b'{"choices": [', b"not json", b'{"a":1}}'])
def test_invalid_json_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(StreamError) as caught:
        Exchange(SCHEDULED).on_payload(payload, SENT)
    assert caught.value.kind == ErrorKind.PROTOCOL
    assert "invalid JSON" in str(caught.value)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"choices": ["x"]}',
        b'{"choices": [{"delta": "text"}]}',
        b'{"choices": {"0": {}}}',
        b'{"choices": 3}',
        b'{"choices": [{"delta": {"content": 5}}]}',
        b'{"choices": [], "usage": "lots"}',
        b'{"choices": [], "timings": [1, 2]}',
    ],
)
def test_an_event_of_the_wrong_shape_is_a_protocol_error_that_shows_it(payload: bytes) -> None:
    with pytest.raises(StreamError) as caught:
        Exchange(SCHEDULED).on_payload(payload, SENT)
    assert caught.value.kind == ErrorKind.PROTOCOL
    assert str(caught.value) == f"stream event has an unexpected shape: {payload.decode()}"


def test_a_finish_reason_that_is_not_a_string_is_kept_as_text() -> None:
    payload = b'{"choices": [{"delta": {"content": "a"}, "finish_reason": {"type": "stop"}}]}'
    rec = record(replay([payload]))
    assert rec.finish_reason == "{'type': 'stop'}"
    assert rec.ok


def test_json_that_is_not_an_object_is_a_protocol_error() -> None:
    with pytest.raises(StreamError) as caught:
        Exchange(SCHEDULED).on_payload(b"[1, 2]", SENT)
    assert caught.value.kind == ErrorKind.PROTOCOL


def test_role_only_and_empty_chunks_do_not_count_as_tokens() -> None:
    ex = replay(
        [
            chunk({"role": "assistant"}),
            chunk({"role": "assistant", "content": ""}),
            chunk({"role": "assistant", "content": None, "reasoning_content": None}),
            chunk({"content": "x"}),
            chunk({}, "stop"),
        ]
    )
    rec = record(ex)
    assert rec.first_chunk_ns == arrival(0) - ORIGIN
    assert rec.first_token_ns == arrival(3) - ORIGIN
    assert rec.token_chunks == 1
    # One token: no TPOT, no ITL.
    assert rec.tpot_s is None
    assert rec.itl is None


def test_completions_text_field() -> None:
    ex = replay(
        [
            orjson.dumps({"choices": [{"index": 0, "text": "Hel", "finish_reason": None}]}),
            orjson.dumps({"choices": [{"index": 0, "text": "", "finish_reason": None}]}),
            orjson.dumps({"choices": [{"index": 0, "text": "lo", "finish_reason": "stop"}]}),
        ]
    )
    rec = record(ex, endpoint="completions")
    assert rec.token_chunks == 2
    assert rec.output_chars == 5
    assert rec.finish_reason == "stop"
    assert rec.ok


def test_usage_and_timings_disagreeing_is_a_mismatch() -> None:
    rec = record(
        replay(
            [
                chunk({"content": "a"}),
                chunk({"content": "b"}),
                chunk(
                    {},
                    "stop",
                    usage={"prompt_tokens": 4, "completion_tokens": 10},
                    timings={"prompt_n": 4, "predicted_n": 12, "predicted_ms": 50.0},
                ),
            ]
        )
    )
    assert rec.token_count_mismatch
    assert rec.completion_tokens == 10
    assert rec.completion_tokens_source == "usage"
    assert rec.completion_tokens_by_source == {"usage": 10, "timings": 12, "chunks": 2}


def test_more_text_chunks_than_reported_tokens_is_a_mismatch() -> None:
    rec = record(
        replay(
            [chunk({"content": c}) for c in "abcd"]
            + [chunk({}, "stop", usage={"completion_tokens": 3})]
        )
    )
    assert rec.token_count_mismatch
    assert rec.completion_tokens == 3


def test_usage_without_any_text_is_a_failure_that_keeps_the_claim() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 3}
    rec = record(
        replay(
            [chunk({"role": "assistant"})]
            + [chunk({"content": ""}) for _ in range(3)]
            + [chunk({}, "stop"), orjson.dumps({"choices": [], "usage": usage})]
        )
    )
    assert not rec.ok
    assert rec.error_kind == ErrorKind.NO_OUTPUT
    assert rec.error_message == (
        "the stream carried no generated text, but the server reported 3 completion tokens"
    )
    assert rec.completion_tokens == 3 and rec.completion_tokens_source == "usage"
    assert rec.completion_tokens_by_source == {"usage": 3}
    assert rec.token_count_mismatch
    assert rec.token_chunks == 0 and rec.ttft_s is None


def test_an_empty_answer_the_server_counts_as_empty_is_ok() -> None:
    rec = record(
        replay([chunk({"content": ""}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 0})])
    )
    assert rec.ok
    assert rec.completion_tokens == 0
    assert not rec.token_count_mismatch


def test_an_answer_of_only_the_end_of_turn_token_is_an_empty_answer_not_no_output() -> None:
    """vLLM counts the stop token it never sends as text: a model that stops at once gives one
    completion token and no text (seen on the real vLLM with logit_bias on token 106)."""
    usage = {"prompt_tokens": 5, "completion_tokens": 1}
    rec = record(
        replay([chunk({"role": "assistant", "content": ""}), chunk({}, "stop", usage=usage)])
    )
    assert rec.ok and rec.error_kind is None
    assert rec.completion_tokens == 1 and rec.finish_reason == "stop"
    two = {"prompt_tokens": 5, "completion_tokens": 2}
    lie = record(replay([chunk({"content": ""}), chunk({}, "stop", usage=two)]))
    assert not lie.ok and lie.error_kind == "no_output"  # more than a stop token: not seen
    cut = record(replay([chunk({"content": ""}), chunk({}, "length", usage=usage)]))
    assert not cut.ok and cut.error_kind == "no_output"  # a length stop means a real token


def test_usage_beats_timings_beats_chunks() -> None:
    both = {
        "usage": {"completion_tokens": 5, "prompt_tokens": 9},
        "timings": {"predicted_n": 5, "prompt_n": 2, "cache_n": 6},
    }
    rec = record(replay([chunk({"content": "a"}), chunk({}, "stop", **both)]))
    assert (rec.completion_tokens_source, rec.prompt_tokens_source) == ("usage", "usage")
    assert rec.prompt_tokens == 9
    rec = record(replay([chunk({"content": "a"}), chunk({}, "stop", timings=both["timings"])]))
    assert (rec.completion_tokens_source, rec.prompt_tokens_source) == ("timings", "timings")
    assert rec.prompt_tokens == 8
    rec = record(replay([chunk({"content": "a"}), chunk({}, "stop")]))
    assert (rec.completion_tokens_source, rec.prompt_tokens_source) == ("chunks", None)
    assert rec.completion_tokens == 1


def test_openai_reasoning_and_cached_token_details() -> None:
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 32},
        "completion_tokens_details": {"reasoning_tokens": 20},
    }
    rec = record(
        replay(
            [
                chunk({"reasoning_content": "hm"}),
                chunk({"content": "ok"}),
                chunk({}, "stop"),
                orjson.dumps({"choices": [], "usage": usage}),
            ]
        )
    )
    assert rec.reasoning_tokens == 20
    assert rec.cached_prompt_tokens == 32
    assert rec.first_token_ns == arrival(0) - ORIGIN
    assert rec.first_content_ns == arrival(1) - ORIGIN


def test_reset_forgets_a_failed_attempt() -> None:
    ex = replay(payloads_of("llamacpp_chat_usage.sse"))
    ex.fail(ErrorKind.STREAM_BROKEN, "x")
    ex.retries = 1
    ex.reset()
    assert ex.streamed_tokens == 0
    assert ex.usage is None and ex.timings is None and ex.finish_reason is None
    assert ex.error_kind is None and ex.error_message is None
    assert ex.end_ns == 0 and ex.sent_ns is None
    assert ex.retries == 1
    rec = record(replay(payloads_of("llamacpp_chat_no_usage.sse"), ex))
    assert rec.ok
    assert rec.retries == 1
    assert rec.completion_tokens == 8


def test_unsent_request_has_no_latencies() -> None:
    ex = Exchange(SCHEDULED)
    ex.fail(ErrorKind.CANCELLED, "over max_in_flight")
    rec = record(ex)
    assert not rec.ok
    assert rec.sent_ns is None
    assert rec.ttft_s is None and rec.e2e_s is None and rec.tpot_s is None
    assert rec.e2e_from_scheduled_s is None and rec.client_queue_wait_s is None
    assert rec.token_chunks == 0
    assert rec.completion_tokens is None


@pytest.mark.parametrize("reason", ["error", "abort"])
def test_finish_reason_error_or_abort_is_a_failure(reason: str) -> None:
    rec = record(replay([chunk({"content": "Hi"}), chunk({}, finish=reason)]))
    assert not rec.ok
    assert rec.error_kind == ErrorKind.HTTP_5XX
    assert reason in (rec.error_message or "")
