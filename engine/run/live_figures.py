"""The running figures a ``SnapshotTaken`` carries: rates over a sliding window and the
recent TTFT/TPOT medians. Shared by a profile sent in this process (``ProfileRun``) and one
sent by worker processes (``engine.run.workers``), so both report the same way.
"""

from __future__ import annotations

from collections import deque

from engine.events import SNAPSHOT_WINDOW_S
from engine.records import RequestRecord
from engine.stats import NS

RECENT_TTFT_SAMPLES = 256
"""Recent TTFT/TPOT values kept for the live medians in snapshots."""
RATE_WINDOW_S = SNAPSHOT_WINDOW_S
"""Window of the live rates in snapshots."""


class RateWindow:
    """Counters sampled at each snapshot; rates are their growth over the last
    ``RATE_WINDOW_S`` seconds (at least two samples kept, so the first rates are defined).
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[int, int, int, int]] = deque()

    def rates(self, now_ns: int, out: int, inp: int, done: int) -> tuple[float, ...]:
        """``(span_s, output tok/s, input tok/s, requests/s)`` given the counters now."""
        self._samples.append((now_ns, out, inp, done))
        while len(self._samples) > 2 and now_ns - self._samples[0][0] > RATE_WINDOW_S * NS:
            self._samples.popleft()
        t0, out0, in0, done0 = self._samples[0]
        span = (now_ns - t0) / NS
        if span <= 0:
            return span, 0.0, 0.0, 0.0
        return span, (out - out0) / span, (inp - in0) / span, (done - done0) / span


class RecentLatencies:
    """The latest ``RECENT_TTFT_SAMPLES`` TTFT and TPOT values of successful requests."""

    def __init__(self) -> None:
        self.ttft: deque[float] = deque(maxlen=RECENT_TTFT_SAMPLES)
        self.tpot: deque[float] = deque(maxlen=RECENT_TTFT_SAMPLES)

    def add(self, record: RequestRecord) -> None:
        """Keep a successful record's TTFT and TPOT."""
        if record.ttft_s is not None:
            self.ttft.append(record.ttft_s)
        if record.tpot_s is not None:
            self.tpot.append(record.tpot_s)

    def medians(self) -> tuple[float | None, float | None]:
        """``(TTFT p50, TPOT p50)`` of the recent values (upper median), None without any."""
        return _median(self.ttft), _median(self.tpot)


def _median(values: deque[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
