"""Distributions in bounded memory: exact while small, a mergeable log-bucket sketch beyond.

A profile of a million requests kept every latency and every token gap in memory (8 bytes each:
~220 MB per million 16-token requests); ``StreamingDistribution`` keeps the first
``EXACT_SAMPLES`` values exactly, so every figure of a profile that size is what it was, and
folds the rest into a ``LogSketch`` of at most a few thousand buckets. Count, mean, minimum and
maximum stay exact; percentiles from the sketch are within ``RELATIVE_ACCURACY`` of a value
of the right rank. The exact percentiles of any run can still be computed from its
``requests.jsonl`` (``engine.results.runs.exact_distributions``).

``LogSketch`` is DDSketch's scheme (Masson, Rim, Lee, VLDB 2019): bucket ``k`` holds the values
in (gamma^(k-1), gamma^k] with gamma = (1 + a) / (1 - a), and reports each as
2 gamma^k / (gamma + 1), which is within a relative ``a`` of every value in the bucket; two
sketches with the same ``a`` merge by adding their bucket counts.
"""

from __future__ import annotations

import math
import os
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence

RELATIVE_ACCURACY = 0.005
"""Relative error bound of a sketched percentile (0.5 %)."""
EXACT_SAMPLES = 100_000
"""Values a distribution keeps exactly before it starts sketching (800 KB)."""
FOLD_BATCH = 16_384
"""Sketched values are buffered and folded this many at a time (NumPy, ~1 ms), so the
per-value cost on the engine's loop stays an append."""
MIN_MAGNITUDE = 1e-12
"""Values closer to zero than this are counted as zero (a zero-length gap)."""


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What NumPy's BLAS reads, once, when it loads, to size its thread pool."""


def preload() -> None:
    """Import NumPy now, before a run's clock matters: the first fold would otherwise stall
    the engine's loop for the import (~150 ms on 2 cores) in the middle of a measurement.

    With one BLAS thread: llmtop's NumPy work is element-wise (no BLAS), while OpenBLAS starts
    a thread per core at load and they spin for a while (0.1 s of CPU each here: ~1.5 s of
    CPU on a 16-core box, in the load generator's own process). The variables are set only
    for the import (a value the user set wins) and then put back, so a server llmtop starts
    later keeps its own threading.
    """
    if "numpy" in sys.modules:
        return
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        import numpy  # noqa: F401
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LogSketch:
    """Counts of values by logarithmic bucket; positive, negative and zero kept apart."""

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY) -> None:
        self.relative_accuracy = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._log_gamma = math.log(self.gamma)
        self.positive: Counter[int] = Counter()
        self.negative: Counter[int] = Counter()
        self.zero = 0
        self.count = 0

    def add_many(self, values: Sequence[float]) -> None:
        """Fold a batch of values in (vectorised: one pass of NumPy per batch)."""
        import numpy as np  # imported by ``preload`` before a run; not by ``import engine``

        data = np.asarray(values, dtype=float)
        self.count += len(data)
        magnitude = np.abs(data)
        small = magnitude < MIN_MAGNITUDE
        self.zero += int(small.sum())
        keys = np.ceil(np.log(np.where(small, 1.0, magnitude)) / self._log_gamma).astype(np.int64)
        for store, mask in ((self.positive, data > 0), (self.negative, data < 0)):
            found, counts = np.unique(keys[mask & ~small], return_counts=True)
            store.update(dict(zip(found.tolist(), counts.tolist(), strict=True)))

    def merge(self, other: LogSketch) -> None:
        """Add another sketch's counts (same relative accuracy) to this one."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("sketches of different accuracy do not merge")
        self.positive.update(other.positive)
        self.negative.update(other.negative)
        self.zero += other.zero
        self.count += other.count

    def _value(self, key: int) -> float:
        return 2 * self.gamma**key / (self.gamma + 1)

    def percentiles(self, qs: Iterable[float]) -> list[float]:
        """The ``q``-th percentiles (0-100), interpolated between closest ranks as
        ``engine.stats.percentile`` does, each rank's value read from its bucket.
        """
        if not self.count:
            raise ValueError("percentile of no values")
        ordered = [(-self._value(k), n) for k, n in sorted(self.negative.items(), reverse=True)]
        ordered += [(0.0, self.zero)] if self.zero else []
        ordered += [(self._value(k), n) for k, n in sorted(self.positive.items())]
        values, ends = [v for v, _ in ordered], []
        total = 0
        for _, n in ordered:
            total += n
            ends.append(total)

        def at(rank: int) -> float:
            low, high = 0, len(ends) - 1
            while low < high:  # first bucket whose cumulative count passes the rank
                middle = (low + high) // 2
                low, high = (middle + 1, high) if ends[middle] <= rank else (low, middle)
            return values[low]

        result = []
        for q in qs:
            rank = (self.count - 1) * q / 100.0
            low = math.floor(rank)
            weight = rank - low
            result.append(at(low) * (1 - weight) + at(min(low + 1, self.count - 1)) * weight)
        return result


class StreamingDistribution:
    """The values of one figure: exact up to ``exact_limit`` values, then sketched.

    ``exact_limit`` ``None`` keeps every value (reading a run back from disk for exact figures).
    """

    def __init__(self, exact_limit: int | None = EXACT_SAMPLES) -> None:
        self.exact_limit = exact_limit
        self.values: array[float] | None = array("d")
        """Every value so far, while the distribution is exact; ``None`` once it sketches."""
        self.sketch: LogSketch | None = None
        self._pending = array("d")
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    @property
    def exact(self) -> bool:
        """True while every value is kept."""
        return self.values is not None

    def add(self, value: float) -> None:
        """Take one value."""
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        self._store(value)

    def extend(self, values: Sequence[float]) -> None:
        """Take many values at once (a request's token gaps)."""
        if not values:
            return
        self.count += len(values)
        self.total += math.fsum(values)
        self.low = min(self.low, min(values))
        self.high = max(self.high, max(values))
        if self.values is not None:
            self.values.extend(values)
            self._check_limit()
        else:
            self._pending.extend(values)
            self._fold_if_full()

    def _store(self, value: float) -> None:
        if self.values is not None:
            self.values.append(value)
            self._check_limit()
        else:
            self._pending.append(value)
            self._fold_if_full()

    def _check_limit(self) -> None:
        assert self.values is not None
        if self.exact_limit is not None and len(self.values) > self.exact_limit:
            self.sketch = LogSketch()
            self._pending, self.values = self.values, None
            self._fold()

    def _fold_if_full(self) -> None:
        if len(self._pending) >= FOLD_BATCH:
            self._fold()

    def _fold(self) -> None:
        assert self.sketch is not None
        if self._pending:
            self.sketch.add_many(self._pending)
            self._pending = array("d")

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """Percentiles of every value so far (sketched ones kept within [min, max])."""
        if self.sketch is None:
            raise ValueError("exact distributions are summarised from their values")
        self._fold()
        return [min(max(v, self.low), self.high) for v in self.sketch.percentiles(qs)]
