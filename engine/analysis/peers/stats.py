"""The peers' ways of summarising values: NumPy's (vLLM, SGLang, AIPerf), GuideLLM's weighted
distribution, llama-benchy's mean and standard deviation.

Each helper returns the statistic fields of a ``PeerValue`` as keyword arguments, so a
definition writes ``PeerValue(key=..., **numpy_stats(values))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from engine.stats import mean, percentile


def numpy_stats(values: Sequence[float]) -> dict[str, Any]:
    """``np.mean``, ``np.std`` (population, ``ddof=0``) and ``np.percentile`` with linear
    interpolation: what vLLM (serve.py 753-770), SGLang (serving.py 1279-1304) and AIPerf
    (metrics/metric_dicts.py 78-84) compute over their per-request or per-gap values.
    """
    if not values:
        return {"count": 0, "mean": None}
    ordered = sorted(values)
    centre = mean(ordered)
    return {
        "count": len(ordered),
        "mean": centre,
        "std": math.sqrt(math.fsum((v - centre) ** 2 for v in ordered) / len(ordered)),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
    }


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """``np.mean`` and ``np.std`` only: llama-benchy reports no percentiles
    (llama_benchy/results.py 67-75).
    """
    stats = numpy_stats(values)
    return {k: stats[k] for k in ("count", "mean", "std") if k in stats}


def guidellm_stats(
    values: Sequence[float], weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """GuideLLM's ``DistributionSummary.from_values`` (schemas/statistics.py 252-310, then
    ``from_pdf`` 140-225 and ``Percentiles.from_pdf`` 54-112): values sorted, equal values
    merged by summing their weights, zero weights dropped, weights normalised to a pdf; the
    mean and variance are the pdf's, and a percentile is the first value whose cumulative
    probability reaches it (``np.searchsorted(cdf, q, side="left")``), not an interpolation.
    """
    pairs = sorted(zip(values, weights or [1.0] * len(values), strict=True))
    merged: dict[float, float] = {}
    for value, weight in pairs:
        merged[value] = merged.get(value, 0.0) + weight
    points = [(v, w) for v, w in merged.items() if w > 0]
    if not points:
        return {"count": 0, "mean": None}
    total = math.fsum(w for _, w in points)
    probabilities = [w / total for _, w in points]
    centre = math.fsum(v * p for (v, _), p in zip(points, probabilities, strict=True))
    variance = math.fsum(
        (v - centre) ** 2 * p for (v, _), p in zip(points, probabilities, strict=True)
    )
    cumulative: list[float] = []
    running = 0.0
    for p in probabilities:
        running += p
        cumulative.append(running)

    def at(q: float) -> float:
        index = next((i for i, c in enumerate(cumulative) if c >= q), len(points) - 1)
        return points[index][0]

    return {
        # GuideLLM's count is the summed weight (``round(np.sum(weights))``), 252-276.
        "count": round(math.fsum(weights)) if weights else len(values),
        "mean": centre,
        "std": math.sqrt(variance),
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
    }
