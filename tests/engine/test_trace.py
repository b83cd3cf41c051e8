"""Run traces (engine/analysis/trace.py): valid trace-event JSON whose slices are the records.

``assert_valid_trace`` checks a file against the JSON Object Format of Google's "Trace Event
Format" document as ui.perfetto.dev reads it: the event fields each phase type needs, times in
microseconds, and complete slices on one track that nest (a viewer draws a partial overlap
wrongly, or drops it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import accumulate
from pathlib import Path
from typing import Any

import pytest

from engine.analysis import trace
from engine.analysis.trace import ALL_TOKENS, ENDS_ONLY, build_trace, write_trace
from engine.records import ErrorKind, RequestRecord
from engine.results.folder import iter_records
from tests.support.exchange_replay import ORIGIN, payloads_of, record
from tests.support.paths import ROOT
from tests.support.run_fixtures import BASE, RUNS

PHASES = {"X", "i", "C", "M"}
METADATA = {"process_name": "name", "thread_name": "name"}
SORT = {"process_sort_index", "thread_sort_index"}
EPSILON_US = 2e-3
H200 = ROOT / "bench" / "gpu" / "h200-telemetry-20261121"


def assert_valid_trace(doc: Any) -> list[dict[str, Any]]:
    """Check the trace's structure; returns its events."""
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    assert isinstance(doc.get("otherData", {}), dict)
    events: list[dict[str, Any]] = doc["traceEvents"]
    for e in events:
        assert e["ph"] in PHASES, e
        assert isinstance(e["name"], str) and e["name"], e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "M":
            assert e["name"] in METADATA or e["name"] in SORT, e
            key = METADATA.get(e["name"], "sort_index")
            assert isinstance(e["args"][key], str if key == "name" else int), e
            continue
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert isinstance(e["dur"], int | float) and e["dur"] >= 0, e
        elif e["ph"] == "i":
            assert e["s"] in {"g", "p", "t"}, e
        else:
            assert e["args"] and all(isinstance(v, int | float) for v in e["args"].values()), e
    _assert_slices_nest(events)
    return events


def _assert_slices_nest(events: list[dict[str, Any]]) -> None:
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            tracks[(e["pid"], e["tid"])].append(e)
    for slices in tracks.values():
        stack: list[float] = []  # ends of the open slices
        for e in sorted(slices, key=lambda e: (e["ts"], -e["dur"])):
            # ts and dur are rounded to the nanosecond apart: allow that much.
            while stack and stack[-1] <= e["ts"] + EPSILON_US:
                stack.pop()
            end = e["ts"] + e["dur"]
            assert not stack or end <= stack[-1] + EPSILON_US, f"{e} overlaps its parent's end"
            stack.append(end)


def slices_of(events: list[dict[str, Any]], cat: str) -> list[dict[str, Any]]:
    return [e for e in events if e["ph"] == "X" and e["cat"].startswith(cat)]


def test_a_recorded_run_is_a_valid_trace_whose_requests_are_its_records(tmp_path: Path) -> None:
    written = write_trace(RUNS / BASE, tmp_path / "t.json", [])
    doc = json.loads(written.path.read_text())
    events = assert_valid_trace(doc)
    records = {r.request_id: r for r in iter_records(RUNS / BASE, [])}
    requests = {e["name"].split()[0]: e for e in slices_of(events, "request")}
    assert requests.keys() == records.keys() and written.requests == len(records) == 11
    for request_id, r in records.items():
        e = requests[request_id]
        assert e["ts"] == pytest.approx(r.scheduled_ns / 1000)
        assert e["dur"] == pytest.approx((r.end_ns - r.scheduled_ns) / 1000)
        assert e["args"]["ttft_ms"] == pytest.approx((r.ttft_s or 0) * 1000, abs=1e-3)
    # Phases tile each request back to back: their durations add up to its slice.
    phases = slices_of(events, "phase")
    assert sum(p["dur"] for p in phases) == pytest.approx(sum(e["dur"] for e in requests.values()))
    decode = [p for p in phases if p["name"] == "decode"]
    assert sorted(p["dur"] for p in decode) == pytest.approx(
        sorted((r.last_token_ns - r.first_token_ns) / 1000 for r in records.values())  # type: ignore[operator]
    )
    assert doc["otherData"]["token_instants"] == ENDS_ONLY
    assert doc["otherData"]["origin_unix_ns"] == 1795248515307084612


def test_a_closed_loop_at_concurrency_4_has_4_tracks_that_never_overlap(tmp_path: Path) -> None:
    events = assert_valid_trace(
        json.loads(write_trace(RUNS / BASE, tmp_path / "t.json", []).path.read_text())
    )
    names = [e["args"]["name"] for e in events if e["name"] == "thread_name"]
    assert names == ["slot 1", "slot 2", "slot 3", "slot 4"]
    by_track: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in slices_of(events, "request"):
        by_track[e["tid"]].append(e)
    for track in by_track.values():
        track.sort(key=lambda e: e["ts"])
        assert all(a["ts"] + a["dur"] <= b["ts"] for a, b in zip(track, track[1:]))
    in_flight = [e["args"]["requests"] for e in events if e["name"] == "requests in flight"]
    assert max(in_flight) == 4 and in_flight[-1] == 0


def test_gpu_and_server_counters_share_the_requests_clock(tmp_path: Path) -> None:
    events = assert_valid_trace(
        json.loads(write_trace(H200, tmp_path / "t.json", []).path.read_text())
    )
    counters = defaultdict(list)
    for e in events:
        if e["ph"] == "C":
            counters[e["name"]].append(e)
    assert {"GPU 0 utilization (%)", "GPU 0 power (W)", "server requests"} <= counters.keys()
    assert set(counters["server requests"][0]["args"]) == {"running", "waiting"}
    requests = slices_of(events, "request")
    first, last = min(e["ts"] for e in requests), max(e["ts"] + e["dur"] for e in requests)
    power = [e["ts"] for e in counters["GPU 0 power (W)"]]
    assert min(power) < first + 2e6 and max(power) > last - 2e6  # samples span the requests
    # Three profiles (c=1, 8, 32): their processes and 1 + 8 + 32 tracks.
    assert sum(e["name"] == "thread_name" for e in events) == 41


def _replayed(save_itl: bool) -> list[RequestRecord]:
    from engine.http.exchange import Exchange

    out = []
    for k, name in enumerate(("llamacpp_chat_usage.sse", "sglang_chat_reasoning_usage.sse")):
        sent = ORIGIN + k * 1_000_000_000
        ex = Exchange(sent)
        ex.sent_ns = ex.connection_ready_ns = ex.headers_ns = sent
        payloads = payloads_of(name)
        for i, payload in enumerate(payloads):
            ex.on_payload(payload, sent + (i + 1) * 10_000_000)
        ex.end_ns = sent + len(payloads) * 10_000_000
        out.append(record(ex, save_itl=save_itl))
    return out


def test_every_token_is_an_instant_when_the_gaps_were_saved() -> None:
    records = _replayed(save_itl=True)
    events, facts = build_trace(records, [])
    assert_valid_trace({"traceEvents": events})
    tokens = [e["ts"] for e in events if e["ph"] == "i"]
    assert facts["token_instants"] == ALL_TOKENS
    assert len(tokens) == sum(r.token_chunks for r in records) == 24 + 7
    first = records[0]
    expected = [
        (first.first_token_ns + round(t * 1e9)) / 1000  # type: ignore[operator]
        for t in accumulate(first.itl_s or [], initial=0.0)
    ]
    assert tokens[:24] == pytest.approx(expected)
    assert tokens[23] == pytest.approx(first.last_token_ns / 1000)  # type: ignore[operator]


def test_without_saved_gaps_only_the_first_and_last_token_and_the_trace_says_so() -> None:
    events, facts = build_trace(_replayed(save_itl=False), [])
    assert sum(e["ph"] == "i" for e in events) == 4
    assert facts["token_instants"] == ENDS_ONLY


def test_token_instants_are_capped_and_the_cap_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "MAX_TOKEN_INSTANTS", 30)
    events, facts = build_trace(_replayed(save_itl=True), [])
    assert sum(e["ph"] == "i" for e in events) == 24  # the second request's 7 would pass 30
    assert "capped at 30" in facts["token_instants"]


def test_a_failed_request_ends_in_its_failure() -> None:
    ok = _replayed(save_itl=False)[0]
    failed = ok.model_copy(
        update={
            "ok": False,
            "error_kind": ErrorKind.HTTP_5XX,
            "first_token_ns": None,
            "last_token_ns": None,
            "headers_ns": ok.sent_ns + 5_000_000,  # type: ignore[operator]
            "connection_ready_ns": ok.sent_ns + 1_000_000,  # type: ignore[operator]
        }
    )
    names = [(n, (f - b) / 1e6) for n, b, f in trace.phases(failed)]
    assert names == [
        ("queued in client", 1.0),
        ("sent to first byte", 4.0),
        ("failed: http_5xx", (failed.end_ns - failed.headers_ns) / 1e6),  # type: ignore[operator]
    ]
    events, _ = build_trace([failed], [])
    assert slices_of(assert_valid_trace({"traceEvents": events}), "request")[0]["cat"] == (
        "request,failed"
    )


def test_instants_out_of_order_are_clamped_so_phases_still_nest() -> None:
    r = _replayed(save_itl=False)[0]
    odd = r.model_copy(update={"headers_ns": r.first_token_ns + 1})  # type: ignore[operator]
    spans = trace.phases(odd)
    assert all(a[2] <= b[1] for a, b in zip(spans, spans[1:]))


def test_the_validator_rejects_slices_that_overlap_without_nesting() -> None:
    def slice_(ts: float, dur: float) -> dict[str, Any]:
        return {"ph": "X", "name": "s", "cat": "c", "pid": 1, "tid": 1, "ts": ts, "dur": dur}

    assert_valid_trace({"traceEvents": [slice_(0, 10), slice_(0, 4), slice_(4, 6)]})
    with pytest.raises(AssertionError, match="overlaps"):
        assert_valid_trace({"traceEvents": [slice_(0, 10), slice_(5, 10)]})
