"""The engine's live figures (``SnapshotTaken``) rebuilt from a profile's records, for replay.

The screen shows what a snapshot says, so a replay must say what the engine would have said
at that moment, by the engine's own definitions (``engine.run.profile_run``):

* one snapshot every ``SNAPSHOT_INTERVAL_S`` from the profile's start, and none after its last
  request ended (the engine stops publishing when the profile ends);
* rates over a window that starts at the profile's first snapshot and trails by at most
  ``SNAPSHOT_WINDOW_S``; output tokens as generated (each request's tokens spread evenly
  between its first and last token, where the engine counts streamed chunks), input tokens
  and requests when a request succeeds;
* counters of the measured phase of this profile only; in flight counts warm-up too.

Rebuilt on half-second bins instead, a closed-loop batch ending together put all its prompt
tokens in one bin: the end of an H200 replay showed 14.3k input tok/s with nothing in flight,
and a profile's first seconds showed the previous profile's counters.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.analysis.timeline import cumulative_tokens
from engine.events import SNAPSHOT_INTERVAL_S, SNAPSHOT_WINDOW_S, SnapshotTaken
from engine.records import RequestRecord
from engine.stats import NS
from engine.workload.profile import Profile

MAX_SNAPSHOTS = 5000
"""Rebuilt snapshots per run at most: a long run gets them further apart than the engine's
interval, so folding a replay up to the cursor stays quick."""

Floats = npt.NDArray[np.float64]


def snapshot_step_s(run_length_s: float) -> float:
    """Time between rebuilt snapshots: the engine's interval, wider for long runs."""
    return max(SNAPSHOT_INTERVAL_S, run_length_s / MAX_SNAPSHOTS)


def profile_snapshots(
    profile: Profile, records: list[RequestRecord], step_s: float
) -> list[tuple[float, SnapshotTaken]]:
    """The snapshots one profile's run would have published, with their times (seconds)."""
    if not records:
        return []
    start = min(r.scheduled_ns for r in records) / NS
    end = max(r.end_ns for r in records) / NS
    figures = _Figures(records)
    first = start + step_s
    out = []
    for k in range(1, int((end - start) / step_s) + 1):
        t = start + k * step_s
        out.append((t, figures.at(profile, t, max(first, t - SNAPSHOT_WINDOW_S), start)))
    return out


def _sent_s(record: RequestRecord) -> float:
    """When the engine counted the request as sent: at its send, or, for an arrival never
    sent (``max_in_flight`` reached) or cancelled before it was, when it was due.
    """
    return (record.sent_ns if record.sent_ns is not None else record.scheduled_ns) / NS


class _Figures:
    """One profile's records as sorted arrays, so each snapshot is a few binary searches."""

    def __init__(self, records: list[RequestRecord]) -> None:
        measured = [r for r in records if not r.warmup]
        ok = sorted((r for r in measured if r.ok), key=lambda r: r.end_ns)
        self.sent = np.sort(np.array([_sent_s(r) for r in measured], dtype=float))
        self.ended = np.sort(np.array([r.end_ns / NS for r in measured], dtype=float))
        self.failed = np.sort(np.array([r.end_ns / NS for r in measured if not r.ok], dtype=float))
        self.ok_ended = np.array([r.end_ns / NS for r in ok], dtype=float)
        self.ok_prompt = np.concatenate([[0.0], np.cumsum([r.prompt_tokens or 0 for r in ok])])
        self.load_sent = np.sort(np.array([_sent_s(r) for r in records], dtype=float))
        self.load_ended = np.sort(np.array([r.end_ns / NS for r in records], dtype=float))
        self.measured_from = min((r.scheduled_ns / NS for r in measured), default=np.inf)
        self.ramps = _ramps(measured)

    def at(self, profile: Profile, t: float, since: float, start: float) -> SnapshotTaken:
        span = t - since

        def rate(amount: float) -> float:
            return amount / span if span > 0 else 0.0

        window = np.array([since, t])
        tokens = cumulative_tokens(*self.ramps, window)
        done_ok = np.searchsorted(self.ok_ended, window, side="right")
        return SnapshotTaken(
            profile=profile.name,
            t_ns=round(t * NS),
            elapsed_s=t - start,
            window_s=span,
            in_flight=_count(self.load_sent, t) - _count(self.load_ended, t),
            sent_total=_count(self.sent, t),
            finished_total=_count(self.ended, t),
            failed_total=_count(self.failed, t),
            planned_total=profile.requests,
            output_tokens_per_s=rate(float(tokens[1] - tokens[0])),
            input_tokens_per_s=rate(float(self.ok_prompt[done_ok[1]] - self.ok_prompt[done_ok[0]])),
            requests_per_s=rate(float(done_ok[1] - done_ok[0])),
            ttft_p50_s=None,
            tpot_p50_s=None,
            warmup=t < self.measured_from,
        )


def _count(sorted_times: Floats, t: float) -> int:
    """How many of the times are at or before ``t``."""
    return int(np.searchsorted(sorted_times, t, side="right"))


def _ramps(records: list[RequestRecord]) -> tuple[Floats, Floats, Floats]:
    """First token, last token and tokens per second of each request that streamed tokens."""
    streamed = [r for r in records if r.completion_tokens and r.first_token_ns and r.last_token_ns]
    first = np.array([r.first_token_ns or 0 for r in streamed], dtype=float) / NS
    last = np.array([r.last_token_ns or 0 for r in streamed], dtype=float) / NS
    last = np.maximum(last, first + 1e-9)  # one chunk: all its tokens at once
    tokens = np.array([r.completion_tokens or 0 for r in streamed], dtype=float)
    return first, last, tokens / (last - first)
