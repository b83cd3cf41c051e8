"""Bootstrap confidence intervals for differences of latency percentiles between two runs.

Percentile bootstrap: resample each run's per-request values with replacement (the two runs
independently, each to its own size), take the percentile of each resample, and read the
confidence interval of ``percentile(B) - percentile(A)`` off the distribution of those
differences. Seeded, so the same records always give the same interval. Vectorised with NumPy
in chunks so memory stays bounded (``MAX_CHUNK_VALUES``) whatever the number of requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
"""Resamples per comparison: enough for stable 2.5/97.5 % bounds of a 95 % interval."""
DEFAULT_CONFIDENCE = 0.95
MIN_SAMPLES = 10
"""Fewest values per side for any interval."""
MIN_TAIL_SAMPLES = 3
"""Values each side must have beyond a percentile (n * (1 - q/100)) for its interval: the
bootstrap cannot vary a p99 of 20 requests, which is just their largest value, so an interval
from it would be falsely narrow. p50 needs 10 requests, p90 30, p99 300."""
MAX_CHUNK_VALUES = 2_000_000
"""Resampled values held at once (16 MB of float64): resamples are drawn in chunks this big."""


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a difference (candidate minus baseline)."""

    low: float
    """Lower bound."""
    high: float
    """Upper bound."""

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero."""
        return self.low > 0 or self.high < 0


def resampled_percentiles(
    values: np.ndarray, quantiles_pct: Sequence[float], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Percentiles of ``resamples`` bootstrap resamples of ``values``.

    Returns:
        Array of shape ``(len(quantiles_pct), resamples)``.

    """
    n = len(values)
    chunk = max(1, MAX_CHUNK_VALUES // n)
    parts = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = values[rng.integers(0, n, size=(size, n))]
        parts.append(np.percentile(draws, quantiles_pct, axis=1))
    return np.concatenate(parts, axis=1)


def percentile_diff_intervals(
    baseline: Sequence[float],
    candidate: Sequence[float],
    quantiles_pct: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> list[Interval | None]:
    """Confidence intervals of ``percentile(candidate, q) - percentile(baseline, q)`` per q.

    Args:
        baseline: Per-request values of the baseline run.
        candidate: Per-request values of the run compared with it.
        quantiles_pct: Percentiles to compare, 0-100.
        resamples: Bootstrap resamples per side.
        confidence: Coverage of the interval (0.95: the 2.5th to 97.5th percentile).
        seed: Random seed; the same inputs and seed give the same intervals.

    Returns:
        One interval per percentile; ``None`` where a side has fewer values than
        ``min_samples(q)``.

    """
    n = min(len(baseline), len(candidate))
    wanted = [q for q in quantiles_pct if n >= min_samples(q)]
    if not wanted:
        return [None] * len(quantiles_pct)
    rng = np.random.default_rng(seed)
    a = resampled_percentiles(np.asarray(baseline, dtype=float), wanted, resamples, rng)
    b = resampled_percentiles(np.asarray(candidate, dtype=float), wanted, resamples, rng)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(b - a, [tail, 100.0 - tail], axis=1)
    found = {q: Interval(float(lo), float(hi)) for q, lo, hi in zip(wanted, low, high)}
    return [found.get(q) for q in quantiles_pct]


def min_samples(q: float) -> int:
    """Values each side needs for an interval of the ``q``-th percentile (MIN_TAIL_SAMPLES)."""
    tail = 1.0 - q / 100.0
    return max(MIN_SAMPLES, math.ceil(MIN_TAIL_SAMPLES / tail - 1e-9) if tail > 0 else 10**9)
