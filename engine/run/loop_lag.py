"""Event-loop lag: how late a short timer fires. A validity signal for every latency llmtop
reports: when the loop lags, chunk arrival times are stamped late by about that much.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable
from time import perf_counter_ns

from engine.metrics.sketch import StreamingDistribution
from engine.stats import percentile

INTERVAL_S = 0.010


class LoopLagMonitor:
    """Samples lag every ``INTERVAL_S`` while ``run`` is awaited, in bounded memory: the first
    ``EXACT_SAMPLES`` readings (about 17 minutes) exactly, the rest in a sketch
    (engine/metrics/sketch.py), so a run of any length reports its whole lag.
    """

    def __init__(self, on_sample: Callable[[float], None] | None = None) -> None:
        """``on_sample`` gets every reading as it is taken (the validity rules' windows)."""
        self.samples = StreamingDistribution()
        self._on_sample = on_sample

    @property
    def samples_ms(self) -> array[float]:
        """The readings kept exactly (all of them until the sketch takes over)."""
        return self.samples.values if self.samples.values is not None else array("d")

    async def run(self) -> None:
        """Sample until cancelled."""
        interval_ns = int(INTERVAL_S * 1e9)
        while True:
            before = perf_counter_ns()
            await asyncio.sleep(INTERVAL_S)
            lag_ms = max(0, perf_counter_ns() - before - interval_ns) / 1e6
            self.samples.add(lag_ms)
            if self._on_sample is not None:
                self._on_sample(lag_ms)

    def percentiles_ms(self) -> tuple[float | None, float | None, float | None]:
        """(p50, p99, max) lag in milliseconds, or Nones before any sample."""
        if not self.samples.count:
            return None, None, None
        if self.samples.values is None:
            p50, p99 = self.samples.percentiles((50, 99))
            return p50, p99, self.samples.high
        ordered = sorted(self.samples.values)
        return percentile(ordered, 50), percentile(ordered, 99), ordered[-1]
