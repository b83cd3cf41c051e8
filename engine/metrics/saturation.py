"""Over-saturation, detected while a step runs: the server has fallen over and more load only
queues. Beside ``knee.py``, which finds the same point after the fact.

A step is over-saturated when, over the last ``window_s`` of its measured phase (no verdict
before ``min_duration_s``, nor with fewer than ``min_requests`` requests finished in the
window; the flat-step check counts the step's requests instead), any of these holds
(thresholds: ``SaturationThresholds``):

* **errors**: failed / finished requests in the window (``cancelled`` excluded from both) >
  ``error_rate_pct``;
* **unbounded growth** (open loop, or a server whose queue grows): a least-squares line
  through TTFT (or requests in flight, or the server's waiting requests) against time has a
  significant positive slope (t = slope / its standard error > the one-sided 95 % Student-t
  quantile) and grows by ``ttft_growth`` x or more across the window, while throughput stays
  flat: output tokens/s in the window's second half gain less than ``throughput_gain_pct`` %
  over its first half;
* **flat step** (a ladder's step after the first): output tokens/s over the step so far
  (the mean of its live snapshots) gain less than ``throughput_gain_pct`` % over the previous
  step's while the step's mean TTFT or mean E2E so far is ``latency_growth`` x the previous
  step's or more: the added concurrency only queued. Whole steps on both sides, so like is
  compared with like, and slow requests (a few per window) still add up to a verdict.

Read from GuideLLM's over-saturation detection (a t-tested slope of concurrency and TTFT over
a sliding window), changed where it did not fit: its condition needs the number of requests in
flight to grow, which never happens in a closed loop, so a concurrency ladder never stopped; it
waits for TTFT above an absolute 2.5 s, which a small model never reaches and a long prompt
always does, where growth relative to the window's start fits every model; it ignores
throughput and errors, both named here. Samples are means over ``BUCKET_S`` buckets, so a
window holds at most ``window_s / BUCKET_S`` points at any request rate and requests finishing
together (one server state) count once; the Student-t quantile uses the Cornish-Fisher terms
in full.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from statistics import NormalDist

from engine.workload.saturation import SaturationThresholds

BUCKET_S = 0.5
"""Width of the time buckets the detector averages samples into."""
MIN_TREND_POINTS = 6
"""Buckets with data a trend needs (3 s) before its slope is tested."""
CONFIDENCE = 0.95
"""One-sided confidence that a growing trend is not noise."""


@dataclass(frozen=True)
class StepFigures:
    """What the previous step of a ladder achieved (from its summary)."""

    label: str
    """``c=64`` or ``5 rps``."""
    output_tokens_per_s: float
    ttft_mean_s: float | None
    e2e_mean_s: float | None


@dataclass
class _Bucket:
    """Sums of the samples of one ``BUCKET_S`` slice of time."""

    start_s: float
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + value
        self.counts[name] = self.counts.get(name, 0) + 1

    def mean(self, name: str) -> float | None:
        n = self.counts.get(name, 0)
        return self.sums[name] / n if n else None


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile from the normal one, Cornish-Fisher expansion to 1 / df^2.

    t = z + (z^3 + z) / (4 df) + (5 z^5 + 16 z^3 + 3 z) / (96 df^2); within 2 % of the exact
    value from 3 degrees of freedom up.
    """
    z = NormalDist().inv_cdf(p)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Trend:
    """A least-squares line y = a + b t through the points, and whether b > 0 is significant."""

    slope: float
    start: float
    """The line's value at the first point's time."""
    end: float
    """The line's value at the last point's time."""
    significant: bool

    @classmethod
    def fit(cls, points: list[tuple[float, float]]) -> Trend | None:
        """``None`` with fewer than 3 points or no spread in time."""
        n = len(points)
        if n < 3:
            return None
        mean_t = sum(t for t, _ in points) / n
        mean_y = sum(y for _, y in points) / n
        sxx = sum((t - mean_t) ** 2 for t, _ in points)
        if sxx <= 0:
            return None
        slope = sum((t - mean_t) * (y - mean_y) for t, y in points) / sxx
        residual = sum((y - mean_y - slope * (t - mean_t)) ** 2 for t, y in points)
        error = math.sqrt(residual / (n - 2) / sxx)
        significant = slope > 0 and (error == 0 or slope / error > t_quantile(CONFIDENCE, n - 2))
        first, last = points[0][0], points[-1][0]
        return cls(
            slope,
            mean_y + slope * (first - mean_t),
            mean_y + slope * (last - mean_t),
            significant,
        )


SERIES = {"ttft_s": "TTFT", "in_flight": "requests in flight", "waiting": "waiting requests"}
"""The quantities whose unbounded growth means over-saturation, and their names in reasons."""


class SaturationDetector:
    """Fed one step's samples in its measured phase; ``check`` says whether it fell over."""

    def __init__(
        self,
        thresholds: SaturationThresholds,
        load_label: str,
        previous: StepFigures | None = None,
    ) -> None:
        self.t = thresholds
        self.load_label = load_label
        """``concurrency 128`` or ``5 rps``, for the reason."""
        self.previous = previous
        self._buckets: deque[_Bucket] = deque(maxlen=int(thresholds.window_s / BUCKET_S) + 2)
        self._step = _Bucket(0.0)
        """The whole step so far, for the flat-step check."""
        self._started_s: float | None = None

    def _bucket(self, t_s: float) -> _Bucket:
        if self._started_s is None:
            self._started_s = t_s
        start = math.floor(t_s / BUCKET_S) * BUCKET_S
        if not self._buckets or self._buckets[-1].start_s < start:
            self._buckets.append(_Bucket(start))
        return self._buckets[-1]

    def _add(self, t_s: float, name: str, value: float) -> None:
        self._bucket(t_s).add(name, value)
        self._step.add(name, value)

    def add_request(
        self, t_s: float, *, ok: bool, ttft_s: float | None, e2e_s: float | None
    ) -> None:
        """A measured request that finished at ``t_s`` (cancelled ones are not given)."""
        self._add(t_s, "finished", 1.0)
        if not ok:
            self._add(t_s, "failed", 1.0)
            return
        if ttft_s is not None:
            self._add(t_s, "ttft_s", ttft_s)
        if e2e_s is not None:
            self._add(t_s, "e2e_s", e2e_s)

    def add_snapshot(self, t_s: float, output_tokens_per_s: float, in_flight: int) -> None:
        """Live throughput and requests in flight (a measured-phase ``SnapshotTaken``)."""
        self._add(t_s, "tok_s", output_tokens_per_s)
        self._add(t_s, "in_flight", float(in_flight))

    def add_waiting(self, t_s: float, waiting: float) -> None:
        """The server's own waiting requests (its ``/metrics``)."""
        self._add(t_s, "waiting", waiting)

    def check(self, now_s: float) -> str | None:
        """The reason the step is over-saturated (``stopped at concurrency 128: ...``), or
        ``None`` while it is not, or it is too early to tell.
        """
        if self._started_s is None or now_s - self._started_s < self.t.min_duration_s:
            return None
        window = [b for b in self._buckets if b.start_s >= now_s - self.t.window_s]
        finished = sum(b.counts.get("finished", 0) for b in window)
        why = None
        if finished >= self.t.min_requests:
            why = self._errors(window, finished) or self._growth(window)
        if why is None and self._step.counts.get("finished", 0) >= self.t.min_requests:
            why = self._flat_step()
        return f"stopped at {self.load_label}: {why}" if why else None

    def _errors(self, window: list[_Bucket], finished: int) -> str | None:
        failed = sum(b.counts.get("failed", 0) for b in window)
        rate = 100.0 * failed / finished
        if rate <= self.t.error_rate_pct:
            return None
        return (
            f"{rate:.0f} % of the {finished} requests that finished in the last "
            f"{self._span(window):.0f} s failed (> {self.t.error_rate_pct:g} %)"
        )

    def _growth(self, window: list[_Bucket]) -> str | None:
        gain, throughput = self._throughput_halves(window)
        if gain is None or gain >= self.t.throughput_gain_pct:
            return None
        for name, words in SERIES.items():
            points = [(b.start_s, m) for b in window if (m := b.mean(name)) is not None]
            if len(points) < MIN_TREND_POINTS:
                continue
            trend = Trend.fit(points)
            if trend is None or not trend.significant:
                continue
            start = max(trend.start, min(y for _, y in points), 1e-9)
            growth = trend.end / start
            if growth >= self.t.ttft_growth:
                span = points[-1][0] - points[0][0]
                return (
                    f"{words} grew {growth:.1f}x in {span:.0f} s ({_fmt(name, start)} -> "
                    f"{_fmt(name, trend.end)}) while throughput stayed at "
                    f"{throughput:,.0f} tok/s"
                )
        return None

    def _flat_step(self) -> str | None:
        before = self.previous
        throughput = self._step.mean("tok_s")
        if before is None or throughput is None or before.output_tokens_per_s <= 0:
            return None
        gain = 100.0 * (throughput - before.output_tokens_per_s) / before.output_tokens_per_s
        if gain >= self.t.throughput_gain_pct:
            return None
        for name, words, earlier in (
            ("ttft_s", "TTFT", before.ttft_mean_s),
            ("e2e_s", "E2E", before.e2e_mean_s),
        ):
            now = self._step.mean(name)
            if now is None or not earlier:
                continue
            if now / earlier >= self.t.latency_growth:
                return (
                    f"throughput stayed at {throughput:,.0f} tok/s ({gain:+.1f} % over "
                    f"{before.label}'s {before.output_tokens_per_s:,.0f}) while mean {words} "
                    f"grew {now / earlier:.1f}x ({_fmt(name, earlier)} -> {_fmt(name, now)})"
                )
        return None

    def _throughput_halves(self, window: list[_Bucket]) -> tuple[float | None, float]:
        """Gain in percent of the window's second half over its first, and the window's mean."""
        points = [m for b in window if (m := b.mean("tok_s")) is not None]
        if len(points) < MIN_TREND_POINTS:
            return None, 0.0
        half = len(points) // 2
        first, second = sum(points[:half]) / half, sum(points[half:]) / (len(points) - half)
        mean = sum(points) / len(points)
        if first <= 0:
            return None, mean
        return 100.0 * (second - first) / first, mean

    @staticmethod
    def _span(window: list[_Bucket]) -> float:
        return window[-1].start_s + BUCKET_S - window[0].start_s if window else 0.0


def _fmt(name: str, value: float) -> str:
    if name.endswith("_s"):
        return f"{value * 1000:,.0f} ms"
    return f"{value:,.0f}"
