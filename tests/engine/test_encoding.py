"""Compressed answers. llmtop asks for none (``Accept-Encoding: identity``): a compressing
server or proxy may hold bytes back to fill its blocks, which would move every timestamp. One
that compresses anyway still works for gzip and deflate, with each token stamped when the read
that carried it arrived; any other encoding fails as ``protocol`` naming it.
"""

from __future__ import annotations

import zlib

import pytest

from engine.http.encoding import Inflater, inflater_for
from engine.http.failures import StreamError
from engine.records import ErrorKind
from tests.support.builders import make_profile


def test_requests_ask_for_uncompressed_answers(fake_server, run_engine):
    run_engine(fake_server.url, make_profile(concurrency=1, requests=2))
    assert [h.get("Accept-Encoding") for h in fake_server.behaviour.headers] == ["identity"] * 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_stream_is_read_and_timed_as_it_arrives(fake_server, run_engine, encoding):
    b = fake_server.behaviour
    b.content_encoding, b.ttft_s, b.itl_s = encoding, 0.02, 0.02
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=3, max_tokens=6))

    assert result.profile.successes == 3, [r["error_message"] for r in result.records]
    for r in result.records:
        assert r["token_chunks"] == 6 and r["completion_tokens"] == 6
        assert not r["token_count_mismatch"]
        # Stamped as each compressed write arrived, 20 ms apart, not all at the stream's end.
        assert r["itl"]["count"] == 5 and r["itl"]["p50_s"] >= 0.015
        assert r["e2e_s"] - r["ttft_s"] >= 5 * 0.015


def test_a_compressed_error_body_gives_its_message(fake_server, run_engine):
    b = fake_server.behaviour
    b.content_encoding, b.status = "gzip", 503
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=2))
    assert result.profile.failures_by_kind == {"http_5xx": 2}
    assert all(r["error_message"] == "HTTP 503: overloaded" for r in result.records)


def test_an_encoding_llmtop_cannot_read_fails_as_protocol_naming_it(fake_server, run_engine):
    fake_server.behaviour.content_encoding = "br"
    result = run_engine(fake_server.url, make_profile(concurrency=1, requests=2))
    assert result.profile.failures_by_kind == {"protocol": 2}
    assert all(
        r["error_message"]
        == "the server compressed its answer with 'br', which llmtop did not ask for and cannot "
        "read (only gzip and deflate)"
        for r in result.records
    )


# -- the inflater on its own -------------------------------------------------------------------


def test_identity_needs_no_inflater() -> None:
    assert inflater_for(None) is None
    assert inflater_for("identity") is None
    assert inflater_for("") is None


def test_raw_deflate_without_a_zlib_header_is_read_too() -> None:
    packer = zlib.compressobj(wbits=-15)
    data = packer.compress(b"data: [DONE]\n\n") + packer.flush()
    for cut in range(len(data)):
        inflater = Inflater("deflate")
        out = inflater.feed(data[:cut]) + inflater.feed(data[cut:])
        assert b"".join(out) == b"data: [DONE]\n\n", f"cut at byte {cut}"


def test_deflate_with_its_zlib_header_is_read_however_it_is_cut() -> None:
    data = zlib.compress(b"data: [DONE]\n\n")
    for cut in range(len(data)):
        inflater = Inflater("deflate")
        out = inflater.feed(data[:cut]) + inflater.feed(data[cut:])
        assert b"".join(out) == b"data: [DONE]\n\n", f"cut at byte {cut}"


def test_a_read_that_inflates_hugely_comes_out_in_bounded_pieces() -> None:
    packer = zlib.compressobj(wbits=31)
    data = packer.compress(b"x" * (5 * 2**20)) + packer.flush()
    pieces = Inflater("gzip").feed(data)
    assert len(data) < 2**16
    assert max(map(len, pieces)) <= 2**20
    assert sum(map(len, pieces)) == 5 * 2**20


def test_corrupt_compressed_data_is_a_protocol_error() -> None:
    with pytest.raises(StreamError) as caught:
        Inflater("gzip").feed(b"\x1f\x8b\x08\x00garbage-not-deflate")
    assert caught.value.kind == ErrorKind.PROTOCOL
    assert str(caught.value).startswith("could not read the gzip-compressed answer: ")
