"""A run over time, for plots: output tokens/s, requests in flight, GPU readings.

All times are seconds since the run's clock origin (``t_ns / 1e9``), so requests and telemetry
samples share one axis. Output throughput spreads each request's completion tokens evenly
between its first and last token, then bins them (``bin_s``): the curve shows when tokens
were generated, not when requests happened to end.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.records import RequestRecord
from engine.results.folder import iter_records, iter_samples
from engine.stats import NS

DEFAULT_BIN_S = 1.0
MAX_BINS = 2000
"""Bins per run at most (a long run gets wider bins), so the arrays stay small."""


@dataclass
class GpuSeries:
    """One GPU's readings over time."""

    name: str
    """``GPU 0 NVIDIA H200``."""
    t_s: list[float] = field(default_factory=list)
    """Sample times."""
    utilization_pct: list[float | None] = field(default_factory=list)
    """Utilization at each sample (``None`` where NVML could not read it)."""
    power_w: list[float | None] = field(default_factory=list)
    """Power draw at each sample."""


@dataclass
class Timeline:
    """What the over-time plots of one run need."""

    bin_s: float
    """Width of a throughput bin."""
    bin_start_s: np.ndarray
    """Start of each throughput bin."""
    output_tokens_per_s: np.ndarray
    """Output tokens generated per second in each bin."""
    in_flight_t_s: np.ndarray
    """Times at which the number of requests in flight changed."""
    in_flight: np.ndarray
    """Requests in flight from each of those times on (a step function)."""
    gpus: list[GpuSeries]
    """Per-GPU readings from samples.jsonl (empty without NVML)."""
    profile_starts_s: list[tuple[str, float]] = field(default_factory=list)
    """Each profile's name and when its first request was scheduled, in run order."""


def run_timeline(run_dir: Path, notes: list[str], bin_s: float = DEFAULT_BIN_S) -> Timeline:
    """Read a run folder's records and samples into a ``Timeline``."""
    return build_timeline(iter_records(run_dir, notes), iter_samples(run_dir, notes), bin_s)


def build_timeline(
    records: Iterable[RequestRecord],
    samples: Iterable[dict[str, Any]],
    bin_s: float = DEFAULT_BIN_S,
) -> Timeline:
    """A ``Timeline`` from records (warm-up included: it is load too) and telemetry samples.

    Keeps five floats per request, never the records.
    """
    sent, ended = array("d"), array("d")
    ramps: tuple[array[float], array[float], array[float]] = (array("d"), array("d"), array("d"))
    starts: dict[str, float] = {}
    for r in records:
        if r.sent_ns is None:
            continue
        sent.append(r.sent_ns / NS)
        ended.append(r.end_ns / NS)
        starts[r.profile] = min(starts.get(r.profile, np.inf), r.scheduled_ns / NS)
        if r.ok and r.completion_tokens and r.first_token_ns and r.last_token_ns:
            start, stop = r.first_token_ns / NS, r.last_token_ns / NS
            stop = max(stop, start + 1e-9)  # one chunk: all tokens at once
            for column, value in zip(ramps, (start, stop, r.completion_tokens / (stop - start))):
                column.append(value)
    end_s = max(ended, default=0.0)
    bin_s = max(bin_s, end_s / MAX_BINS)
    edges = np.arange(0.0, end_s + bin_s, bin_s)
    first, last, rate = (np.asarray(c) for c in ramps)
    cumulative = cumulative_tokens(first, last, rate, edges)
    t_events = np.concatenate([np.asarray(sent), np.asarray(ended)])
    steps = np.concatenate([np.ones(len(sent), dtype=int), -np.ones(len(ended), dtype=int)])
    order = np.argsort(t_events, kind="stable")
    return Timeline(
        bin_s=bin_s,
        bin_start_s=edges[:-1],
        output_tokens_per_s=np.diff(cumulative) / bin_s,
        in_flight_t_s=t_events[order],
        in_flight=np.cumsum(steps[order]),
        gpus=_gpu_series(samples),
        profile_starts_s=list(starts.items()),
    )


def cumulative_tokens(
    starts: npt.NDArray[np.float64],
    stops: npt.NDArray[np.float64],
    rates: npt.NDArray[np.float64],
    edges: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Tokens generated up to each edge, each request's spread evenly over its token span.

    The sum of ramps is piecewise linear: its slope rises by a request's token rate where the
    request's first token arrives and falls back at its last, so sorting those changes and
    integrating the slope gives it exactly in O((requests + bins) log requests).
    """
    if not len(rates):
        return np.zeros(len(edges))
    times: npt.NDArray[np.float64] = np.concatenate([starts, stops])
    changes = np.concatenate([rates, -rates])
    order = np.argsort(times, kind="stable")
    times, slope = times[order], np.cumsum(changes[order])
    at_times: npt.NDArray[np.float64] = np.concatenate(
        [[0.0], np.cumsum(slope[:-1] * np.diff(times))]
    )
    return np.interp(edges, times, at_times, left=0.0, right=float(at_times[-1]))


def _gpu_series(samples: Iterable[dict[str, Any]]) -> list[GpuSeries]:
    gpus: dict[int, GpuSeries] = {}
    for s in samples:
        if s.get("kind") != "gpu" or not isinstance(s.get("t_ns"), int):
            continue
        index = s.get("index", 0)
        series = gpus.setdefault(index, GpuSeries(f"GPU {index} {s.get('name') or ''}".strip()))
        series.t_s.append(s["t_ns"] / NS)
        series.utilization_pct.append(s.get("utilization_pct"))
        series.power_w.append(s.get("power_w"))
    return [gpus[i] for i in sorted(gpus)]
