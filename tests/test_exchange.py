"""Recorded streams replayed through the decoder into an ``Exchange``, then frozen into records.

Timestamps are synthetic so every latency has a hand-computable value: the request is sent at
``SENT`` and the i-th payload (0-based, ``[DONE]`` included) arrives at ``SENT + (i+1) * STEP``.
The client's error-body and transport-exception helpers are tested in test_client_errors.py.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from test_sse import STREAMS, decode, random_reads

from engine.exchange import Exchange, StreamError
from engine.records import ErrorKind, RequestRecord

MS = 1_000_000
ORIGIN = 5_000 * MS          # the run's clock origin
SCHEDULED = ORIGIN + 100 * MS
SENT = SCHEDULED + 2 * MS    # 2 ms of schedule lag
STEP = 10 * MS


def arrival(i: int) -> int:
    """When the i-th payload arrives."""
    return SENT + (i + 1) * STEP


def payloads_of(name: str, seed: int | None = None) -> list[bytes]:
    """Decode a fixture whole, or in random small reads when ``seed`` is given."""
    data = (STREAMS / name).read_bytes()
    return decode([data] if seed is None else random_reads(data, seed))


def replay(payloads: list[bytes], ex: Exchange | None = None) -> Exchange:
    """Feed payloads with synthetic arrival times; the stream ends with the last one."""
    ex = ex or Exchange(SCHEDULED)
    ex.sent_ns = SENT
    for i, payload in enumerate(payloads):
        ex.on_payload(payload, arrival(i))
    ex.end_ns = arrival(len(payloads) - 1)
    return ex


def record(ex: Exchange, **context: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "run_id": "run_test", "request_id": "req_000001", "profile": "p", "concurrency": 1,
        "rate_rps": None, "warmup": False, "endpoint": "chat", "origin_ns": ORIGIN,
    }
    fields.update(context)
    return ex.to_record(**fields)


def replay_file(name: str, **context: Any) -> RequestRecord:
    return record(replay(payloads_of(name)), **context)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          **extra: Any) -> bytes:
    body: dict[str, Any] = {"choices": [{"index": 0, "delta": delta or {},
                                         "finish_reason": finish}]}
    body.update(extra)
    return orjson.dumps(body)


# -- llama.cpp captures -----------------------------------------------------------------------


def test_llamacpp_chat_with_usage_chunk() -> None:
    rec = replay_file("llamacpp_chat_usage.sse")
    assert rec.ok
    assert rec.finish_reason == "length"
    assert rec.token_chunks == 24
    assert rec.completion_tokens == 24
    assert rec.completion_tokens_source == "usage"
    assert rec.completion_tokens_by_source == {"usage": 24, "timings": 24, "chunks": 24}
    assert not rec.token_count_mismatch
    assert rec.prompt_tokens == 27
    assert rec.prompt_tokens_source == "usage"
    assert rec.cached_prompt_tokens == 0
    assert rec.reasoning_tokens is None
    assert rec.server_timings is not None
    assert rec.server_timings["predicted_n"] == 24
    assert rec.server_timings["prompt_ms"] == pytest.approx(78.527)
    assert rec.output_chars == 39
    assert rec.reasoning_chars == 0


def test_llamacpp_role_only_first_chunk_is_not_the_first_token() -> None:
    rec = replay_file("llamacpp_chat_usage.sse")
    # Payload 0 is {"role": "assistant", "content": null}; the first text is payload 1.
    assert rec.first_chunk_ns == arrival(0) - ORIGIN
    assert rec.first_token_ns == arrival(1) - ORIGIN
    assert rec.first_content_ns == rec.first_token_ns
    assert rec.ttft_s == pytest.approx(0.020)
    assert rec.ttfc_s == pytest.approx(0.020)


def test_llamacpp_chat_latencies_from_synthetic_clock() -> None:
    rec = replay_file("llamacpp_chat_usage.sse")
    # 28 payloads: role, 24 tokens (payloads 1-24), finish, usage, [DONE] (payload 27).
    assert rec.sent_ns == SENT - ORIGIN
    assert rec.scheduled_ns == SCHEDULED - ORIGIN
    assert rec.last_token_ns == arrival(24) - ORIGIN
    assert rec.end_ns == arrival(27) - ORIGIN
    assert rec.e2e_s == pytest.approx(0.280)
    assert rec.ttft_s == pytest.approx(0.020)
    # TPOT = (e2e - ttft) / (completion_tokens - 1) = (0.280 - 0.020) / 23
    assert rec.tpot_s == pytest.approx(0.26 / 23)
    assert rec.schedule_lag_s == pytest.approx(0.002)
    assert rec.ttft_from_scheduled_s == pytest.approx(0.022)
    assert rec.e2e_from_scheduled_s == pytest.approx(0.282)
    assert rec.itl is not None
    assert rec.itl.count == 23
    assert rec.itl.mean_s == pytest.approx(0.010)
    assert rec.itl.p99_s == pytest.approx(0.010)
    assert rec.itl.max_s == pytest.approx(0.010)
    assert rec.itl_s is None


def test_save_itl_keeps_the_raw_gaps() -> None:
    rec = replay_file("llamacpp_chat_usage.sse", save_itl=True)
    assert rec.itl_s == pytest.approx([0.010] * 23)


@pytest.mark.parametrize(("name", "tokens"), [
    ("llamacpp_chat_usage.sse", 24),
    ("llamacpp_chat_unicode.sse", 32),
    ("llamacpp_chat_ignore_eos.sse", 16),
    ("llamacpp_completions.sse", 16),
    ("llamacpp_completions_timings_per_token.sse", 6),
])
def test_llamacpp_usage_equals_timings_predicted_n(name: str, tokens: int) -> None:
    endpoint = "completions" if "completions" in name else "chat"
    rec = replay_file(name, endpoint=endpoint)
    assert rec.ok
    assert rec.completion_tokens == tokens
    assert rec.completion_tokens_by_source["usage"] == tokens
    assert rec.completion_tokens_by_source["timings"] == tokens
    assert rec.server_timings is not None
    assert rec.server_timings["predicted_n"] == tokens
    # llama.cpp streams one token per chunk.
    assert rec.token_chunks == tokens
    assert not rec.token_count_mismatch


def test_llamacpp_completions_usage_on_the_finish_chunk() -> None:
    rec = replay_file("llamacpp_completions.sse", endpoint="completions")
    assert rec.finish_reason == "length"
    # The finish chunk carries text "" and must not count as a token.
    assert rec.token_chunks == 16
    assert rec.first_token_ns == arrival(0) - ORIGIN
    assert rec.last_token_ns == arrival(15) - ORIGIN
    assert rec.prompt_tokens == 6
    assert rec.cached_prompt_tokens == 1
    assert rec.output_chars == len(
        " the capital of the country of France. It is the largest city in France.")
    assert rec.tpot_s == pytest.approx((0.180 - 0.010) / 15)


def test_llamacpp_chat_without_usage_counts_from_timings() -> None:
    rec = replay_file("llamacpp_chat_no_usage.sse")
    assert rec.ok
    assert rec.completion_tokens == 8
    assert rec.completion_tokens_source == "timings"
    assert rec.completion_tokens_by_source == {"timings": 8, "chunks": 8}
    # timings.prompt_n counts only evaluated tokens; the cached one is added back.
    assert rec.prompt_tokens == 26 + 1
    assert rec.prompt_tokens_source == "timings"
    assert rec.cached_prompt_tokens == 1


def test_llamacpp_timings_per_token_keeps_the_last_timings() -> None:
    rec = replay_file("llamacpp_completions_timings_per_token.sse", endpoint="completions")
    assert rec.server_timings is not None
    assert rec.server_timings["predicted_n"] == 6
    assert rec.completion_tokens_by_source["timings"] == 6


def test_llamacpp_ignore_eos_gives_exactly_max_tokens() -> None:
    ex = Exchange(SCHEDULED)
    ex.requested_max_tokens = 16
    ex.exact_output_requested = True
    rec = record(replay(payloads_of("llamacpp_chat_ignore_eos.sse"), ex))
    assert rec.completion_tokens == 16
    assert rec.exact_output_requested
    assert rec.exact_output_honoured is True
    assert rec.requested_max_tokens == 16
    assert rec.prompt_tokens == 26
    assert rec.cached_prompt_tokens == 1


def test_exact_output_not_honoured_when_fewer_tokens_came() -> None:
    ex = Exchange(SCHEDULED)
    ex.requested_max_tokens = 32
    ex.exact_output_requested = True
    rec = record(replay(payloads_of("llamacpp_chat_ignore_eos.sse"), ex))
    assert rec.exact_output_honoured is False


def test_llamacpp_unicode_stream_in_random_reads() -> None:
    expected_text = ("日本語で「こんにちは」と挨拶して、絵文字🎉を使ってください。"
                     "<|im_end|>\n<|im_start|>user\n日本語で「")
    whole = replay_file("llamacpp_chat_unicode.sse")
    assert whole.output_chars == len(expected_text) == 63
    assert whole.token_chunks == 32
    for seed in range(5):
        rec = record(replay(payloads_of("llamacpp_chat_unicode.sse", seed=seed)))
        assert rec.output_chars == whole.output_chars
        assert rec.token_chunks == 32
        assert rec.completion_tokens == 32
        assert rec.prompt_tokens == 38


# -- other servers, from their documented formats -----------------------------------------------


def test_vllm_reasoning_counts_for_ttft_not_for_first_content() -> None:
    rec = replay_file("vllm_chat_reasoning_usage.sse")
    assert rec.ok
    assert rec.finish_reason == "stop"
    # role chunk with content "" (payload 0), 6 reasoning (1-6), 5 content (7-11).
    assert rec.token_chunks == 11
    assert rec.first_token_ns == arrival(1) - ORIGIN
    assert rec.first_content_ns == arrival(7) - ORIGIN
    assert rec.ttft_s == pytest.approx(0.020)
    assert rec.ttfc_s == pytest.approx(0.080)
    assert rec.reasoning_chars == len("Okay, 9.8 > 9.11.")
    assert rec.output_chars == len("\n\n9.8 is greater.")
    assert rec.completion_tokens == 13
    assert rec.completion_tokens_source == "usage"
    # Fewer chunks than tokens (the end-of-thinking token streams no text): no mismatch.
    assert not rec.token_count_mismatch
    assert rec.prompt_tokens == 17
    assert rec.cached_prompt_tokens == 16
    assert rec.reasoning_tokens is None
    assert rec.server_timings is None


def test_sglang_nulls_everywhere_and_top_level_reasoning_tokens() -> None:
    rec = replay_file("sglang_chat_reasoning_usage.sse")
    assert rec.ok
    assert rec.finish_reason == "stop"
    assert rec.token_chunks == 7
    assert rec.first_token_ns == arrival(1) - ORIGIN
    assert rec.first_content_ns == arrival(5) - ORIGIN
    assert rec.output_chars == len("Hello! 👋")
    assert rec.completion_tokens == 9
    assert rec.prompt_tokens == 12
    assert rec.reasoning_tokens == 5
    assert rec.cached_prompt_tokens is None


def test_ollama_without_usage_falls_back_to_chunks() -> None:
    rec = replay_file("ollama_chat.sse")
    assert rec.ok
    assert rec.finish_reason == "stop"
    # Every chunk repeats role "assistant"; the first one also carries text and counts.
    assert rec.first_token_ns == arrival(0) - ORIGIN
    assert rec.token_chunks == 5
    assert rec.completion_tokens == 5
    assert rec.completion_tokens_source == "chunks"
    assert rec.completion_tokens_by_source == {"chunks": 5}
    assert rec.prompt_tokens is None
    assert rec.prompt_tokens_source is None
    assert not rec.token_count_mismatch
    assert rec.output_chars == len("Bonjour ! Ça va ?")


def test_ollama_thinking_uses_the_reasoning_field() -> None:
    rec = replay_file("ollama_chat_thinking_usage.sse")
    assert rec.token_chunks == 6
    assert rec.first_token_ns == arrival(0) - ORIGIN
    assert rec.first_content_ns == arrival(3) - ORIGIN
    assert rec.reasoning_chars == len("Simple greeting.")
    assert rec.output_chars == len("Hi there!")
    assert rec.completion_tokens == 8
    assert rec.completion_tokens_source == "usage"
    assert rec.prompt_tokens == 11


def test_ollama_completions_zero_usage_on_every_chunk_is_replaced_by_the_last() -> None:
    rec = replay_file("ollama_completions_usage.sse", endpoint="completions")
    assert rec.ok
    assert rec.finish_reason == "length"
    assert rec.token_chunks == 4
    assert rec.completion_tokens == 4
    assert rec.prompt_tokens == 6
    assert not rec.token_count_mismatch


def test_lmstudio_reasoning_field_then_content() -> None:
    rec = replay_file("lmstudio_chat_reasoning_usage.sse")
    assert rec.ok
    assert rec.token_chunks == 11
    # The first chunk carries the role and the first reasoning text: it is the first token.
    assert rec.first_token_ns == arrival(0) - ORIGIN
    assert rec.first_content_ns == arrival(5) - ORIGIN
    assert rec.reasoning_chars == len("We need to answer.")
    assert rec.output_chars == len("Two plus two is four.")
    assert rec.completion_tokens == 14
    assert rec.prompt_tokens == 68
    # TPOT divides by the server's token count, not by the chunk count.
    assert rec.tpot_s == pytest.approx((rec.e2e_s - rec.ttft_s) / 13)


# -- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "edge_crlf.sse", "edge_data_no_space.sse", "edge_keepalive_comments.sse",
    "edge_no_blank_lines.sse",
])
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


@pytest.mark.parametrize(("error", "kind", "status"), [
    ({"message": "rate limited", "type": "rate_limit", "code": 429}, ErrorKind.HTTP_4XX, 429),
    ({"message": "bad input", "code": 400}, ErrorKind.HTTP_4XX, 400),
    ({"message": "overloaded", "code": 503}, ErrorKind.HTTP_5XX, 503),
    ({"message": "no code at all"}, ErrorKind.HTTP_5XX, None),
    ({"message": "OpenAI-style string code", "code": "server_error"}, ErrorKind.HTTP_5XX, None),
    ("Input validation error: TGI sends a plain string", ErrorKind.HTTP_5XX, None),
])
def test_in_stream_error_kind_follows_its_code(error: Any, kind: ErrorKind,
                                               status: int | None) -> None:
    ex = Exchange(SCHEDULED)
    with pytest.raises(StreamError) as caught:
        ex.on_payload(orjson.dumps({"error": error}), SENT)
    assert caught.value.kind == kind
    assert caught.value.status == status
    assert str(caught.value).startswith("error in stream: ")


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


def test_json_that_is_not_an_object_is_a_protocol_error() -> None:
    with pytest.raises(StreamError) as caught:
        Exchange(SCHEDULED).on_payload(b"[1, 2]", SENT)
    assert caught.value.kind == ErrorKind.PROTOCOL


def test_role_only_and_empty_chunks_do_not_count_as_tokens() -> None:
    ex = replay([
        chunk({"role": "assistant"}),
        chunk({"role": "assistant", "content": ""}),
        chunk({"role": "assistant", "content": None, "reasoning_content": None}),
        chunk({"content": "x"}),
        chunk({}, "stop"),
    ])
    rec = record(ex)
    assert rec.first_chunk_ns == arrival(0) - ORIGIN
    assert rec.first_token_ns == arrival(3) - ORIGIN
    assert rec.token_chunks == 1
    # One token: no TPOT, no ITL.
    assert rec.tpot_s is None
    assert rec.itl is None


def test_completions_text_field() -> None:
    ex = replay([
        orjson.dumps({"choices": [{"index": 0, "text": "Hel", "finish_reason": None}]}),
        orjson.dumps({"choices": [{"index": 0, "text": "", "finish_reason": None}]}),
        orjson.dumps({"choices": [{"index": 0, "text": "lo", "finish_reason": "stop"}]}),
    ])
    rec = record(ex, endpoint="completions")
    assert rec.token_chunks == 2
    assert rec.output_chars == 5
    assert rec.finish_reason == "stop"
    assert rec.ok


def test_usage_and_timings_disagreeing_is_a_mismatch() -> None:
    rec = record(replay([
        chunk({"content": "a"}), chunk({"content": "b"}),
        chunk({}, "stop", usage={"prompt_tokens": 4, "completion_tokens": 10},
              timings={"prompt_n": 4, "predicted_n": 12, "predicted_ms": 50.0}),
    ]))
    assert rec.token_count_mismatch
    assert rec.completion_tokens == 10
    assert rec.completion_tokens_source == "usage"
    assert rec.completion_tokens_by_source == {"usage": 10, "timings": 12, "chunks": 2}


def test_more_text_chunks_than_reported_tokens_is_a_mismatch() -> None:
    rec = record(replay([chunk({"content": c}) for c in "abcd"]
                        + [chunk({}, "stop", usage={"completion_tokens": 3})]))
    assert rec.token_count_mismatch
    assert rec.completion_tokens == 3


def test_usage_beats_timings_beats_chunks() -> None:
    both = {"usage": {"completion_tokens": 5, "prompt_tokens": 9},
            "timings": {"predicted_n": 5, "prompt_n": 2, "cache_n": 6}}
    rec = record(replay([chunk({"content": "a"}), chunk({}, "stop", **both)]))
    assert (rec.completion_tokens_source, rec.prompt_tokens_source) == ("usage", "usage")
    assert rec.prompt_tokens == 9
    rec = record(replay([chunk({"content": "a"}),
                         chunk({}, "stop", timings=both["timings"])]))
    assert (rec.completion_tokens_source, rec.prompt_tokens_source) == ("timings", "timings")
    assert rec.prompt_tokens == 8
    rec = record(replay([chunk({"content": "a"}), chunk({}, "stop")]))
    assert (rec.completion_tokens_source, rec.prompt_tokens_source) == ("chunks", None)
    assert rec.completion_tokens == 1


def test_openai_reasoning_and_cached_token_details() -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 30,
             "prompt_tokens_details": {"cached_tokens": 32},
             "completion_tokens_details": {"reasoning_tokens": 20}}
    rec = record(replay([chunk({"reasoning_content": "hm"}), chunk({"content": "ok"}),
                         chunk({}, "stop"), orjson.dumps({"choices": [], "usage": usage})]))
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
