"""The clock's unit and small, dependency-free statistics used by records, aggregates and
benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

NS = 1_000_000_000
"""Nanoseconds per second: timestamps are ``perf_counter_ns()`` values in ``*_ns`` fields."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of already sorted values.

    Linear interpolation between closest ranks (NumPy's default, ``method="linear"``), so
    figures match what pandas or NumPy would report for the same samples.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    weight = rank - low
    return sorted_values[low] * (1.0 - weight) + sorted_values[high] * weight


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean of a non-empty sequence."""
    return math.fsum(values) / len(values)
