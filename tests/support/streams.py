"""Recorded SSE byte streams (tests/data/streams) and ways to cut them as a network would."""

from __future__ import annotations

import random

import orjson

from engine.http.sse import DONE, SseDecoder
from tests.support.paths import DATA

STREAMS = DATA / "streams"


def load(name: str) -> bytes:
    return (STREAMS / name).read_bytes()


def decode(reads: list[bytes]) -> list[bytes]:
    """Feed ``reads`` in order, then close; return every payload handed out."""
    decoder = SseDecoder()
    out: list[bytes] = []
    for read in reads:
        out.extend(decoder.feed(read))
    out.extend(decoder.close())
    return out


def random_reads(data: bytes, seed: int, largest: int = 48) -> list[bytes]:
    rng = random.Random(seed)
    reads, i = [], 0
    while i < len(data):
        n = rng.randint(1, largest)
        reads.append(data[i : i + n])
        i += n
    return reads


def content_text(payloads: list[bytes]) -> str:
    """Visible text of a chat (``delta.content``) or completions (``text``) stream."""
    parts = []
    for payload in payloads:
        if payload == DONE:
            continue
        for choice in orjson.loads(payload).get("choices") or []:
            delta = choice.get("delta")
            parts.append((delta.get("content") if delta else choice.get("text")) or "")
    return "".join(parts)
