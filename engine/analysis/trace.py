"""A run as a Chrome/Perfetto trace: JSON trace events, opened in ui.perfetto.dev.

One process per profile, one thread (track) per concurrency slot: requests are laid on the
lowest-numbered slot free at their start, so a closed-loop profile at concurrency N has N
tracks, each a sequence of requests that never overlap. A request is a slice from its
scheduled time (or its send, if later) to its end, with its phases nested inside:
``scheduled to sent`` (llmtop's lateness, and any failed attempts before a retry),
``queued in client`` (sent to connection ready), ``sent to first byte`` (to the response
headers), ``first byte to first token``, ``decode`` (first to last token) and ``after last
token`` (the finish chunk, usage and ``[DONE]``); a failed request ends in ``failed: <kind>``
from the last instant it reached. Tokens are instants on the request's track: every one when
the run saved raw gaps (``--save-itl``), otherwise only the first and the last (the trace's
``otherData.token_instants`` says which). A counter track per profile counts requests in
flight; a ``telemetry`` process holds GPU utilization and power, the server's running and
waiting requests and the host's CPU as counter tracks. Every timestamp is the run's own
clock (nanoseconds since its origin, written as microseconds), so all tracks line up.

Format: the JSON Object Format of Google's "Trace Event Format" document (``traceEvents``,
``ph`` ``X`` complete slices, ``i`` instants, ``C`` counters, ``M`` metadata, ``ts``/``dur`` in
microseconds; ``otherData`` for the run's facts).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson

from engine.errors import WriteFailed
from engine.records import RequestRecord
from engine.results.folder import iter_records, iter_samples, read_json
from engine.results.layout import RUN_FILE
from engine.stats import NS
from engine.telemetry.gpu import GpuSample
from engine.telemetry.host import HostSample
from engine.telemetry.samples import parse_sample
from engine.telemetry.server_metrics import ServerMetricsSample

TRACE_FILE = "trace.json"
"""The trace's file name in a run folder."""
MAX_TOKEN_INSTANTS = 200_000
"""Token instants per trace at most: past it, requests keep their slices but lose their
token marks (a trace viewer loads a few hundred thousand events comfortably, not millions)."""
TELEMETRY_PID = 1
"""The process holding the telemetry counters; profiles follow from 2."""
ALL_TOKENS = "every token (raw gaps saved with --save-itl)"
ENDS_ONLY = "first and last token only: the run did not save raw gaps (--save-itl)"


@dataclass(frozen=True)
class TraceWritten:
    """What ``write_trace`` wrote."""

    path: Path
    """The trace file."""
    requests: int
    """Request slices."""
    token_instants: int
    """Token instants."""
    counters: int
    """Counter events (telemetry and requests in flight)."""


def write_trace(run_dir: Path, path: Path, notes: list[str]) -> TraceWritten:
    """Write the trace of the run in ``run_dir`` to ``path``.

    Raises:
        WriteFailed: the file could not be written.

    """
    meta = read_json(run_dir / RUN_FILE, notes) or {}
    events, facts = build_trace(iter_records(run_dir, notes), iter_samples(run_dir, notes))
    facts.update(
        run_id=meta.get("run_id", run_dir.name),
        model=meta.get("model"),
        server_kind=meta.get("server_kind"),
        clock="ts = microseconds since the run's origin (run.json clock.origin_unix_ns)",
        origin_unix_ns=(meta.get("clock") or {}).get("origin_unix_ns"),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps({"traceEvents": events, "otherData": facts}))
    except OSError as exc:
        raise WriteFailed(str(path), exc) from exc
    return TraceWritten(
        path=path,
        requests=facts["requests"],
        token_instants=facts["token_instants_written"],
        counters=sum(1 for e in events if e["ph"] == "C"),
    )


def build_trace(
    records: Iterable[RequestRecord], samples: Iterable[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The trace events of a run's records (warm-up included: it is load too) and telemetry
    samples, and the facts for ``otherData``.
    """
    by_profile: dict[str, list[RequestRecord]] = {}
    for record in records:
        by_profile.setdefault(record.profile, []).append(record)
    everyone = [r for rs in by_profile.values() for r in rs]
    saved = bool(everyone) and all(r.itl_s is not None for r in everyone)
    budget = [MAX_TOKEN_INSTANTS]
    events = _process(TELEMETRY_PID, "telemetry", 0)
    events += _counters(samples)
    for index, (profile, rs) in enumerate(by_profile.items()):
        pid = TELEMETRY_PID + 1 + index
        events += _process(pid, f"profile {profile}", index + 1)
        events += _profile_events(pid, rs, budget)
    written = MAX_TOKEN_INSTANTS - budget[0]
    facts: dict[str, Any] = {
        "requests": len(everyone),
        "token_instants": ALL_TOKENS if saved else ENDS_ONLY,
        "token_instants_written": written,
    }
    if budget[0] <= 0:
        facts["token_instants"] += f"; capped at {MAX_TOKEN_INSTANTS} (MAX_TOKEN_INSTANTS)"
    return events, facts


def _process(pid: int, name: str, order: int) -> list[dict[str, Any]]:
    return [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}},
        {
            "ph": "M",
            "name": "process_sort_index",
            "pid": pid,
            "tid": 0,
            "args": {"sort_index": order},
        },
    ]


def _us(ns: int) -> float:
    """Trace time (microseconds) of an instant on the run's clock (nanoseconds)."""
    return round(ns / 1000, 3)


def request_start_ns(r: RequestRecord) -> int:
    """Where a request's slice starts: when it was due, or when it was sent if that is
    earlier (never, but a slice must not start after its first phase).
    """
    return r.scheduled_ns if r.sent_ns is None else min(r.scheduled_ns, r.sent_ns)


def assign_slots(records: Sequence[RequestRecord]) -> list[int]:
    """A track per record (0-based): the lowest slot free at the record's start, so no two
    requests on a track overlap and a closed loop at concurrency N uses N tracks.
    """
    order = sorted(range(len(records)), key=lambda i: (request_start_ns(records[i]), i))
    slots = [0] * len(records)
    busy: list[tuple[int, int]] = []  # (end_ns, slot)
    free: list[int] = []
    opened = 0
    for i in order:
        start = request_start_ns(records[i])
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            slot = heapq.heappop(free)
        else:
            slot, opened = opened, opened + 1
        slots[i] = slot
        heapq.heappush(busy, (max(records[i].end_ns, start), slot))
    return slots


def _profile_events(
    pid: int, rs: Sequence[RequestRecord], budget: list[int]
) -> list[dict[str, Any]]:
    slots = assign_slots(rs)
    events: list[dict[str, Any]] = []
    for slot in sorted(set(slots)):
        events.append(
            {
                "ph": "M",
                "name": "thread_name",
                "pid": pid,
                "tid": slot + 1,
                "args": {"name": f"slot {slot + 1}"},
            }
        )
        events.append(
            {
                "ph": "M",
                "name": "thread_sort_index",
                "pid": pid,
                "tid": slot + 1,
                "args": {"sort_index": slot + 1},
            }
        )
    for record, slot in zip(rs, slots, strict=True):
        events += request_slices(record, pid, slot + 1)
        events += _token_instants(record, pid, slot + 1, budget)
    events += _in_flight(pid, rs)
    return events


def request_slices(r: RequestRecord, pid: int, tid: int) -> list[dict[str, Any]]:
    """The request's slice and its phases, outermost first."""
    start, end = request_start_ns(r), max(r.end_ns, request_start_ns(r))
    name = r.request_id + (" (warm-up)" if r.warmup else "")
    category = "request" if r.ok else "request,failed"
    slices = [_slice(name, category, start, end, pid, tid, _request_args(r))]
    slices += [_slice(n, "phase", b, f, pid, tid, {}) for n, b, f in phases(r)]
    return slices


def phases(r: RequestRecord) -> list[tuple[str, int, int]]:
    """``(name, start_ns, end_ns)`` of the request's phases, in order, back to back inside
    its slice: as far as its instants go, then (a failed request) ``failed: <kind>`` to its
    end. Instants out of order are clamped, so phases never overlap (a trace viewer would
    mis-nest them).
    """
    start, end = request_start_ns(r), max(r.end_ns, request_start_ns(r))
    marks: list[tuple[str, int | None]] = [
        ("scheduled to sent", r.scheduled_ns),
        ("queued in client", r.sent_ns),
        ("sent to first byte", r.connection_ready_ns or r.sent_ns),
        ("first byte to first token", r.headers_ns),
        ("decode", r.first_token_ns),
        ("after last token", r.last_token_ns),
        ("", r.end_ns),
    ]
    out: list[tuple[str, int, int]] = []
    reached = start
    for (name, begin), (_, finish) in zip(marks, marks[1:]):
        if begin is None or finish is None or (name == "after last token" and not r.ok):
            break
        begin, finish = max(begin, reached), min(finish, end)
        if finish > begin:
            out.append((name, begin, finish))
            reached = finish
    if not r.ok and end > reached:
        out.append((f"failed: {r.error_kind or 'unknown'}", reached, end))
    return out


def _slice(
    name: str, cat: str, start: int, end: int, pid: int, tid: int, args: dict[str, Any]
) -> dict[str, Any]:
    event = {"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid}
    event.update(ts=_us(start), dur=round((end - start) / 1000, 3))
    if args:
        event["args"] = args
    return event


def _request_args(r: RequestRecord) -> dict[str, Any]:
    def ms(s: float | None) -> float | None:
        return None if s is None else round(s * 1000, 3)

    return {
        "outcome": "ok" if r.ok else f"failed: {r.error_kind or 'unknown'}",
        "ttft_ms": ms(r.ttft_s),
        "tpot_ms": ms(r.tpot_s),
        "e2e_ms": ms(r.e2e_s),
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "token_chunks": r.token_chunks,
        "finish_reason": r.finish_reason,
        "http_status": r.http_status,
        "retries": r.retries,
        "error": r.error_message,
    }


def token_times_ns(r: RequestRecord) -> list[int]:
    """When each token-bearing chunk arrived: every one from the saved gaps, else the first
    and the last.
    """
    if r.first_token_ns is None:
        return []
    if r.itl_s is not None:
        return [r.first_token_ns + round(t * NS) for t in accumulate(r.itl_s, initial=0.0)]
    ends = [r.first_token_ns, r.last_token_ns]
    return sorted({t for t in ends if t is not None})


def _token_instants(
    r: RequestRecord, pid: int, tid: int, budget: list[int]
) -> Iterator[dict[str, Any]]:
    times = token_times_ns(r)
    if len(times) > budget[0]:
        budget[0] = 0
        return
    budget[0] -= len(times)
    for t in times:
        yield {
            "ph": "i",
            "name": "token",
            "cat": "token",
            "s": "t",
            "pid": pid,
            "tid": tid,
            "ts": _us(t),
        }


def _in_flight(pid: int, rs: Sequence[RequestRecord]) -> list[dict[str, Any]]:
    steps = sorted(
        [(r.sent_ns, 1) for r in rs if r.sent_ns is not None]
        + [(r.end_ns, -1) for r in rs if r.sent_ns is not None]
    )
    events, level = [], 0
    for t, step in steps:
        level += step
        events.append(_counter(pid, "requests in flight", t, {"requests": level}))
    return events


def _counter(pid: int, name: str, t_ns: int, values: dict[str, float]) -> dict[str, Any]:
    return {"ph": "C", "name": name, "pid": pid, "tid": 0, "ts": _us(t_ns), "args": values}


def _counters(samples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Telemetry samples as counter events (a reading NVML or the server could not give is
    left out, not drawn as 0).
    """
    events: list[dict[str, Any]] = []
    for line in samples:
        t = line.get("t_ns")
        sample = parse_sample(line.get("kind"), line)
        if not isinstance(t, int) or sample is None:
            continue
        for name, values in _readings(sample):
            kept = {k: v for k, v in values.items() if isinstance(v, int | float)}
            if kept:
                events.append(_counter(TELEMETRY_PID, name, t, kept))
    return events


def _readings(sample: object) -> list[tuple[str, dict[str, float | None]]]:
    if isinstance(sample, GpuSample):
        gpu = f"GPU {sample.index}"
        return [
            (f"{gpu} utilization (%)", {"utilization": sample.utilization_pct}),
            (f"{gpu} power (W)", {"power": sample.power_w}),
        ]
    if isinstance(sample, ServerMetricsSample):
        counts = {"running": sample.running, "waiting": sample.waiting}
        return [("server requests", counts)]
    if isinstance(sample, HostSample):
        cpu = {"system": sample.system_cpu_pct, "server": sample.server_cpu_pct}
        return [("host CPU (%)", {**cpu, "llmtop": sample.client_cpu_pct})]
    return []
