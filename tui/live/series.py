"""Bounded time series for the live screen's charts, on the engine's clock.

Every reading lands in a one-second bucket (``BUCKET_S``) keyed by the engine's own time
(``t_ns`` of snapshots and samples, ``end_ns`` of records: all offsets from the run's clock
origin), so a chart's time axis is the run's and a replay draws what the live screen drew.
The last ``RECENT_BUCKETS`` seconds are kept at that resolution; the whole run is kept as
well, in at most ``WHOLE_POINTS`` buckets that double in width as the run grows. Memory is
fixed whatever the run's length.

A chart asks for ``columns(span_s, width, now_s)``: one value per screen column, the mean of
the readings in it (``mean``) or the largest (``peak``: the worst request of a latency column).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

BUCKET_S = 1.0
"""Resolution of the recent history, seconds."""
RECENT_BUCKETS = 900
"""Seconds kept at ``BUCKET_S`` (15 minutes: the 10-minute span with room to spare)."""
WHOLE_POINTS = 480
"""Buckets kept for the whole run; two neighbours merge when the run outgrows them."""
LOOK_BACK = 8
"""Buckets searched back for a late reading (a record written a moment after a newer one)."""

Aggregate = Literal["mean", "peak"]
"""How readings in one screen column become its value."""


class _Bucket(NamedTuple):
    """The readings of one stretch of time (immutable: a view shares it, never copies it)."""

    start: int
    """Index of the bucket: ``floor(t / width)``."""
    total: float
    n: int
    """Readings in it."""
    peak: float
    flagged: bool
    """A reading in it was flagged (a latency above its SLO)."""

    def plus(self, value: float, flagged: bool) -> _Bucket:
        return _Bucket(
            self.start,
            self.total + value,
            self.n + 1,
            max(self.peak, value),
            self.flagged or flagged,
        )


@dataclass(frozen=True, slots=True)
class Column:
    """One screen column of a chart: its value (``None``: no reading) and its flag."""

    value: float | None
    flagged: bool = False


class TimeSeries:
    """One figure over the run: recent seconds exact, the whole run coarser."""

    def __init__(self) -> None:
        self._recent: deque[_Bucket] = deque(maxlen=RECENT_BUCKETS)
        self._whole: list[_Bucket] = []
        self._whole_width_s = BUCKET_S
        self.last: float | None = None
        """The latest reading."""
        self.last_t_s: float | None = None
        """When the latest reading was taken (engine clock, seconds)."""

    def add(self, t_s: float, value: float | None, *, flagged: bool = False) -> None:
        """Take a reading at ``t_s``; ``None`` (a figure that could not be read) is a gap."""
        if value is None:
            return
        if self.last_t_s is None or t_s >= self.last_t_s:
            self.last, self.last_t_s = value, t_s
        _into(self._recent, int(t_s // BUCKET_S), value, flagged)
        _into(self._whole, int(t_s // self._whole_width_s), value, flagged)
        if len(self._whole) > WHOLE_POINTS:
            self._whole = _halve(self._whole)
            self._whole_width_s *= 2

    def snapshot(self) -> SeriesView:
        """An immutable copy for a ``LiveView``."""
        return SeriesView(
            tuple(self._recent),
            tuple(self._whole),
            self._whole_width_s,
            self.last,
        )


@dataclass(frozen=True, slots=True)
class SeriesView:
    """A ``TimeSeries`` as it stood when the view was taken."""

    recent: tuple[_Bucket, ...] = ()
    whole: tuple[_Bucket, ...] = ()
    whole_width_s: float = BUCKET_S
    last: float | None = None

    def columns(
        self, span_s: float, width: int, now_s: float, how: Aggregate = "mean"
    ) -> list[Column]:
        """``width`` columns covering ``(now_s - span_s, now_s]``, oldest first."""
        fine = span_s <= RECENT_BUCKETS * BUCKET_S
        buckets, bucket_s = (self.recent, BUCKET_S) if fine else (self.whole, self.whole_width_s)
        per_column = span_s / max(1, width)
        start_s = now_s - span_s
        cells: list[list[_Bucket]] = [[] for _ in range(width)]
        for bucket in buckets:
            mid_s = (bucket.start + 0.5) * bucket_s
            if start_s < mid_s <= now_s + bucket_s:
                cells[min(width - 1, max(0, int((mid_s - start_s) / per_column)))].append(bucket)
        if per_column < bucket_s:  # a bucket wider than a column: repeat it, no gaps between
            cells = _spread(cells, math.ceil(bucket_s / per_column))
        return [_column(cell, how) for cell in cells]

    def peak(self, columns: Sequence[Column]) -> float | None:
        """The largest value among ``columns`` (the chart's top)."""
        return max((c.value for c in columns if c.value is not None), default=None)


def _into(buckets: deque[_Bucket] | list[_Bucket], start: int, value: float, flag: bool) -> None:
    """Add to the bucket ``start``; readings come almost in order, so look back a little."""
    for back in range(1, min(LOOK_BACK, len(buckets)) + 1):
        bucket = buckets[-back]
        if bucket.start == start:
            buckets[-back] = bucket.plus(value, flag)
            return
        if bucket.start < start:
            break
    if buckets and buckets[-1].start > start:
        return  # older than the buckets kept near the end: too late to draw
    buckets.append(_Bucket(start, value, 1, value, flag))


def _halve(buckets: list[_Bucket]) -> list[_Bucket]:
    merged: dict[int, _Bucket] = {}
    for b in buckets:
        into = merged.get(b.start // 2)
        merged[b.start // 2] = (
            b._replace(start=b.start // 2)
            if into is None
            else _Bucket(
                into.start,
                into.total + b.total,
                into.n + b.n,
                max(into.peak, b.peak),
                into.flagged or b.flagged,
            )
        )
    return list(merged.values())


def _spread(cells: list[list[_Bucket]], reach: int) -> list[list[_Bucket]]:
    """Fill empty columns from the nearest filled one on their left, at most ``reach`` back."""
    out: list[list[_Bucket]] = []
    since = reach
    for cell in cells:
        if cell:
            since = 0
            out.append(cell)
        else:
            since += 1
            out.append(out[-1] if out and since < reach else [])
    return out


def _column(cell: list[_Bucket], how: Aggregate) -> Column:
    if not cell:
        return Column(None)
    flagged = any(b.flagged for b in cell)
    if how == "peak":
        return Column(max(b.peak for b in cell), flagged)
    return Column(sum(b.total for b in cell) / sum(b.n for b in cell), flagged)
