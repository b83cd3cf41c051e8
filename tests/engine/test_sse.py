"""The SSE decoder on recorded byte streams, whole and cut at every possible read boundary.

Fixtures live in ``tests/data/streams`` (README.md there says where each came from). A stream
must decode to the same payloads however the network splits it: whole, one byte per read, at
every single cut point, and in random small reads.
"""

from __future__ import annotations

import time

import orjson
import pytest

from engine.http.sse import DONE, LineTooLong, SseDecoder
from tests.support.streams import STREAMS, content_text, decode, load, random_reads

ALL_STREAMS = sorted(p.name for p in STREAMS.glob("*.sse"))
LLAMACPP_STREAMS = [n for n in ALL_STREAMS if n.startswith("llamacpp_")]


# -- the same payloads however the stream is cut --------------------------------------------


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_one_byte_reads_give_the_same_payloads(name: str) -> None:
    data = load(name)
    assert decode([data[i : i + 1] for i in range(len(data))]) == decode([data])


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_random_small_reads_give_the_same_payloads(name: str) -> None:
    data = load(name)
    whole = decode([data])
    for seed in range(20):
        assert decode(random_reads(data, seed)) == whole, f"seed {seed}"


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_a_cut_at_every_byte_boundary_gives_the_same_payloads(name: str) -> None:
    data = load(name)
    whole = decode([data])
    for cut in range(1, len(data)):
        assert decode([data[:cut], data[cut:]]) == whole, f"cut at byte {cut}"


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_every_payload_is_json_or_done(name: str) -> None:
    payloads = decode([load(name)])
    assert payloads
    for payload in payloads:
        if payload != DONE:
            assert isinstance(orjson.loads(payload), dict)


def test_multibyte_characters_cut_mid_character_decode_intact() -> None:
    data = load("llamacpp_chat_unicode.sse")
    # Cut points that fall inside a UTF-8 character (before a continuation byte).
    inside = [i for i in range(1, len(data)) if 0x80 <= data[i] <= 0xBF]
    assert len(inside) > 50
    expected = content_text(decode([data]))
    assert "こんにちは" in expected
    assert "🎉" in expected
    for cut in inside:
        assert content_text(decode([data[:cut], data[cut:]])) == expected
    # Cutting between every byte at once splits every character of the stream.
    assert content_text(decode([bytes([b]) for b in data])) == expected


# -- what the llama.cpp captures contain -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "events"),
    [
        ("llamacpp_chat_usage.sse", 28),
        ("llamacpp_chat_unicode.sse", 36),
        ("llamacpp_chat_ignore_eos.sse", 20),
        ("llamacpp_chat_no_usage.sse", 11),
        ("llamacpp_completions.sse", 18),
        ("llamacpp_completions_timings_per_token.sse", 8),
    ],
)
def test_llamacpp_captures_decode_to_their_events_ending_in_done(name: str, events: int) -> None:
    payloads = decode([load(name)])
    assert len(payloads) == events
    assert payloads[-1] == DONE
    assert DONE not in payloads[:-1]


def test_llamacpp_chat_capture_ends_with_a_usage_chunk_with_no_choices() -> None:
    payloads = decode([load("llamacpp_chat_usage.sse")])
    last = orjson.loads(payloads[-2])
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == last["timings"]["predicted_n"] == 24


def test_llamacpp_completions_capture_text() -> None:
    text = content_text(decode([load("llamacpp_completions.sse")]))
    assert text == " the capital of the country of France. It is the largest city in France."


# -- tolerated framing ---------------------------------------------------------------------


def test_framing_variants_of_one_stream_decode_identically() -> None:
    """``data:`` without space, CRLF, comments with ``id:``/``event:``/``retry:`` fields, and
    no blank lines between events: the same six events and ``[DONE]`` each time."""
    reference = decode([load("edge_crlf.sse")])
    assert len(reference) == 7
    assert reference[-1] == DONE
    assert content_text(reference) == "naïve café ✓"
    for name in (
        "edge_data_no_space.sse",
        "edge_keepalive_comments.sse",
        "edge_no_blank_lines.sse",
    ):
        assert decode([load(name)]) == reference, name


def test_crlf_cut_between_cr_and_lf() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\r') == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [b'{"a":1}']


def test_comments_and_other_fields_carry_nothing() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b": ping\n\nid: 7\nretry: 10\n\n:\n\n") == []
    assert decoder.close() == []


def test_an_error_event_is_kept_apart_and_ends_what_is_handed_out() -> None:
    decoder = SseDecoder()
    out = decoder.feed(
        b'data: {"a":1}\n\nevent: error\ndata: {"message":"overloaded"}\n\ndata: {"b":2}\n\n'
    )
    assert out == [b'{"a":1}']
    assert decoder.error == b'{"message":"overloaded"}'
    assert decoder.feed(b'data: {"c":3}\n\n') == []


def test_an_error_event_is_found_however_the_stream_is_cut() -> None:
    data = load("edge_error_event.sse")
    for cut in range(1, len(data)):
        decoder = SseDecoder()
        out = decoder.feed(data[:cut])
        out += [] if decoder.error else decoder.feed(data[cut:])
        assert len(out) == 3, f"cut at byte {cut}"
        assert decoder.error == (
            b'{"message":"The server is overloaded, retry later","type":"server_error"}'
        )


def test_an_event_type_lasts_one_event() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"event: error\n\nevent: message\ndata: {}\n\ndata: {}\n\n") == [
        b"{}",
        b"{}",
    ]
    assert decoder.error is None


def test_an_error_event_without_blank_lines_is_its_own_event() -> None:
    decoder = SseDecoder()
    out = decoder.feed(b'data: {"a":1}\nevent: error\ndata: {"message":"x"}\ndata: {"b":2}\n')
    assert out == [b'{"a":1}']
    assert decoder.error == b'{"message":"x"}'


def test_last_event_without_trailing_newline_is_flushed_by_close() -> None:
    data = load("edge_no_done.sse")
    assert not data.endswith(b"\n")
    decoder = SseDecoder()
    fed = decoder.feed(data)
    closed = decoder.close()
    assert len(fed) == 5
    assert len(closed) == 1
    assert orjson.loads(closed[0])["usage"]["completion_tokens"] == 3
    assert DONE not in fed + closed


def test_event_without_blank_line_before_close_is_flushed() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n') == []
    assert decoder.close() == [b'{"a":1}']
    assert decoder.close() == []


def test_spec_multiline_data_is_joined_with_newlines() -> None:
    payloads = decode([load("edge_multiline_data.sse")])
    assert len(payloads) == 3
    first, second = (orjson.loads(p) for p in payloads[:2])
    assert first["choices"][0]["delta"]["content"] == "multi"
    assert second["usage"]["completion_tokens"] == 1
    assert payloads[0].count(b"\n") == 2


def test_consecutive_data_lines_split_only_between_whole_objects() -> None:
    decoder = SseDecoder()
    out = decoder.feed(b'data: {"a":1}\ndata: {"b":2}\ndata: [DONE]\n')
    assert out + decoder.close() == [b'{"a":1}', b'{"b":2}', DONE]
    decoder = SseDecoder()
    out = decoder.feed(b'data: {"a":\ndata: {"b":1}\ndata: }\n\n')
    assert out == [b'{"a":\n{"b":1}\n}']
    assert orjson.loads(out[0]) == {"a": {"b": 1}}


def test_no_input_gives_no_payload() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"") == []
    assert decoder.close() == []


# -- bounds ----------------------------------------------------------------------------------


def test_a_line_past_the_cap_fails_before_its_end_arrives() -> None:
    decoder = SseDecoder(max_line_bytes=1000)
    assert decoder.feed(b'data: {"a":1}\n\ndata: ' + b"x" * 600) == [b'{"a":1}']
    with pytest.raises(LineTooLong) as caught:
        decoder.feed(b"x" * 600)
    assert "1000 bytes" in str(caught.value)


def test_an_event_of_many_lines_past_the_cap_fails() -> None:
    decoder = SseDecoder(max_line_bytes=1000)
    with pytest.raises(LineTooLong):
        decoder.feed(b"data: " + b"x" * 400 + b"\n" + (b"data: " + b"y" * 400 + b"\n") * 2)


def test_a_line_under_the_cap_is_kept_whole_however_it_is_cut() -> None:
    line = b"data: " + b"z" * 5000
    decoder = SseDecoder(max_line_bytes=6000)
    out = [p for i in range(0, len(line), 7) for p in decoder.feed(line[i : i + 7])]
    assert out + decoder.feed(b"\n\n") == [b"z" * 5000]


def test_a_long_line_in_small_reads_costs_linear_time() -> None:
    # Joining the held part to every new read copied the line once per read: a 7 MiB line in
    # 4 KiB reads was ~6 GB of copying (seconds of CPU); held as parts it is copied once.
    line = b"data: " + b"x" * (7 * 2**20)
    reads = [line[i : i + 1024] for i in range(0, len(line), 1024)]
    decoder = SseDecoder()
    started = time.process_time()
    for read in reads:
        decoder.feed(read)
    assert decoder.feed(b"\n\n") == [line[6:]]
    assert time.process_time() - started < 0.2
