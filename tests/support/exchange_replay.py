"""Replaying recorded or hand-made stream payloads into an ``Exchange`` on a synthetic clock.

The request is sent at ``SENT`` and the i-th payload (0-based, ``[DONE]`` included) arrives at
``SENT + (i+1) * STEP``, so every latency has a hand-computable value. Shared by
test_exchange.py (captured streams) and test_exchange_edges.py (protocol edge cases).
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.http.exchange import Exchange
from engine.records import Endpoint, RequestRecord
from tests.support.streams import STREAMS, decode, random_reads

MS = 1_000_000
ORIGIN = 5_000 * MS  # the run's clock origin
SCHEDULED = ORIGIN + 100 * MS
SENT = SCHEDULED + 2 * MS  # 2 ms of schedule lag
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


def record(ex: Exchange, *, endpoint: Endpoint = "chat", save_itl: bool = False) -> RequestRecord:
    return ex.to_record(
        run_id="run_test",
        request_id="req_000001",
        profile="p",
        concurrency=1,
        rate_rps=None,
        warmup=False,
        endpoint=endpoint,
        origin_ns=ORIGIN,
        save_itl=save_itl,
    )


def replay_file(name: str, *, endpoint: Endpoint = "chat", save_itl: bool = False) -> RequestRecord:
    return record(replay(payloads_of(name)), endpoint=endpoint, save_itl=save_itl)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    }
    body.update(extra)
    return orjson.dumps(body)
