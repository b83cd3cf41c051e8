"""Event-loop lag: how late a short timer fires. A validity signal for every latency llmtop
reports: when the loop lags, chunk arrival times are stamped late by about that much.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable
from time import perf_counter_ns

from engine.stats import percentile

INTERVAL_S = 0.010
MAX_SAMPLES = 360_000
"""One hour at 100 samples/s; later samples are not kept (the run's first hour is enough)."""


class LoopLagMonitor:
    """Samples lag every ``INTERVAL_S`` while ``run`` is awaited; keeps at most ``MAX_SAMPLES``."""

    def __init__(self, on_sample: Callable[[float], None] | None = None) -> None:
        """``on_sample`` gets every reading as it is taken (the validity rules' windows)."""
        self.samples_ms = array("d")
        self._on_sample = on_sample

    async def run(self) -> None:
        """Sample until cancelled."""
        interval_ns = int(INTERVAL_S * 1e9)
        while True:
            before = perf_counter_ns()
            await asyncio.sleep(INTERVAL_S)
            lag_ms = max(0, perf_counter_ns() - before - interval_ns) / 1e6
            if len(self.samples_ms) < MAX_SAMPLES:
                self.samples_ms.append(lag_ms)
            if self._on_sample is not None:
                self._on_sample(lag_ms)

    def percentiles_ms(self) -> tuple[float | None, float | None, float | None]:
        """(p50, p99, max) lag in milliseconds, or Nones before any sample."""
        if not self.samples_ms:
            return None, None, None
        ordered = sorted(self.samples_ms)
        return percentile(ordered, 50), percentile(ordered, 99), ordered[-1]
