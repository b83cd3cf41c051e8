"""Recorded streams replayed through the decoder into an ``Exchange``, then frozen into records.

Timestamps are synthetic (tests/exchange_replay.py) so every latency has a hand-computable
value. Protocol edge cases (framing, endings, errors, token counting) are in
test_exchange_edges.py.
The error-body and transport-exception helpers (engine/http/failures.py) are tested in
test_client_errors.py.
"""

from __future__ import annotations

import pytest

from engine.http.exchange import Exchange
from tests.support.exchange_replay import (
    ORIGIN,
    SCHEDULED,
    SENT,
    arrival,
    payloads_of,
    record,
    replay,
    replay_file,
)

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


def test_events_with_choices_are_timed_and_counted_for_peers_definitions() -> None:
    rec = replay_file("llamacpp_chat_usage.sse")
    # role (payload 0), 24 tokens, finish (25) carry choices; the usage chunk (26) has
    # ``choices: []`` and [DONE] (27) none.
    assert rec.first_choice_ns == arrival(0) - ORIGIN
    assert rec.last_choice_ns == arrival(25) - ORIGIN
    assert rec.choice_chunks == 26


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


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("llamacpp_chat_usage.sse", 24),
        ("llamacpp_chat_unicode.sse", 32),
        ("llamacpp_chat_ignore_eos.sse", 16),
        ("llamacpp_completions.sse", 16),
        ("llamacpp_completions_timings_per_token.sse", 6),
    ],
)
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
        " the capital of the country of France. It is the largest city in France."
    )
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
    expected_text = (
        "日本語で「こんにちは」と挨拶して、絵文字🎉を使ってください。"
        "<|im_end|>\n<|im_start|>user\n日本語で「"
    )
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
