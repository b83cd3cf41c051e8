"""The thresholds of the over-saturation stop, as a profile states them (``saturation = {...}``).

The detector that uses them is ``engine/metrics/saturation.py``; the stop itself happens in the
run (``engine/run/saturation_stop.py``). Pure data here, so a profile file can carry them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SaturationThresholds(BaseModel):
    """When a step counts as over-saturated (README "When the server falls over")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_s: float = Field(default=20.0, gt=0, le=3600)
    """Seconds of the step's most recent figures the verdict is drawn from."""
    min_duration_s: float = Field(default=10.0, ge=0, le=3600)
    """No verdict before the measured phase ran this long (the first requests of a step
    meet an empty server)."""
    min_requests: int = Field(default=10, ge=1, le=100_000)
    """Requests that must have finished in the window before any verdict."""
    ttft_growth: float = Field(default=2.0, gt=1, le=1000)
    """Within a step: TTFT, requests in flight or the server's waiting requests growing by
    this factor across the window (a significant upward trend) while throughput stays flat
    counts as growing without bound."""
    latency_growth: float = Field(default=1.5, gt=1, le=1000)
    """Between ladder steps: mean TTFT or E2E this many times the previous step's, with
    throughput flat, means the added load only queued."""
    throughput_gain_pct: float = Field(default=10.0, ge=0, le=1000)
    """Throughput gain, in percent, below which throughput counts as flat: over the previous
    step, or from the first half of the window to the second."""
    error_rate_pct: float = Field(default=20.0, gt=0, le=100)
    """Failed requests (``cancelled`` excluded) in the window, in percent of those that
    finished, above which the step stops."""
