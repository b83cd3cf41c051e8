"""The figures the live screen charts over time, and the rates it shows now.

``History`` keeps one ``TimeSeries`` per charted figure (``tui.live.series``), named by the
``*_SERIES`` keys below, fed from the same events as the rest of the state. ``RateWindow``
turns the engine's snapshots into rates over ``RATE_WINDOW_S``: the engine's own window is
2 s (``engine.run.profile_run.RATE_WINDOW_S``), which reads 0 between waves of requests and
jumps otherwise; ten seconds of its snapshots, on its own clock, are steady and still recent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from engine.events import SnapshotTaken
from engine.metrics.summary import Slo
from engine.records import RequestRecord
from engine.telemetry.gpu import GpuSample
from engine.telemetry.host import HostSample
from engine.telemetry.server_metrics import ServerMetricsSample
from tui.live.series import SeriesView, TimeSeries

RATE_WINDOW_S = 10.0
"""Rates shown as "now" are over this many seconds of the engine's snapshots."""
MAX_RATE_SNAPSHOTS = 100
"""Snapshots kept for the rate window (4 Hz for 10 s, with room)."""
THROUGHPUT_SERIES = ("out_tok_s", "in_tok_s", "req_s", "in_flight")
"""Engine snapshots: output and input tokens/s and requests/s (each over the engine's 2 s
window), requests in flight."""
LATENCY_SERIES = ("ttft_s", "tpot_s")
"""Finished requests, each at its end; flagged when it broke that metric's own SLO."""
HOST_SERIES = ("host_cpu_pct", "client_cpu_pct", "server_cpu_pct", "server_rss_mib")
"""The machine's CPU (% of all cores), llmtop's engine and the server process tree (% of one
core), the server's resident memory."""
SERVER_SERIES = ("running", "waiting", "kv_pct")
"""The server's own /metrics: requests running, waiting, KV-cache use."""
GPU_FIELDS = ("util_pct", "power_w", "vram_mib")
"""Per-GPU series, named ``gpu{index}.{field}``."""


def gpu_key(index: int, field: str) -> str:
    """The series name of one GPU's figure."""
    return f"gpu{index}.{field}"


@dataclass(frozen=True, slots=True)
class Rates:
    """The running scenario's rates over the last ``window_s`` seconds of snapshots."""

    profile: str
    window_s: float
    """Seconds the rates cover: ``RATE_WINDOW_S`` once the scenario has run that long."""
    output_tokens_per_s: float
    input_tokens_per_s: float
    requests_per_s: float
    """Successful requests per second."""
    in_flight: int
    """Requests in flight at the latest snapshot."""


class RateWindow:
    """The running scenario's snapshots over the last ``RATE_WINDOW_S``."""

    def __init__(self) -> None:
        self._snapshots: deque[SnapshotTaken] = deque(maxlen=MAX_RATE_SNAPSHOTS)

    def clear(self) -> None:
        """A scenario started or ended: its rates go with it."""
        self._snapshots.clear()

    def add(self, s: SnapshotTaken) -> None:
        if self._snapshots and self._snapshots[-1].profile != s.profile:
            self._snapshots.clear()
        self._snapshots.append(s)
        while s.t_ns - self._snapshots[0].t_ns > RATE_WINDOW_S * 1e9:
            self._snapshots.popleft()

    def rates(self) -> Rates | None:
        """Token rates: the mean of the snapshots' own (equal-weight readings 4 times a
        second); requests/s: finished successes between the first and last snapshot, exact."""
        snaps = [s for s in self._snapshots if not s.warmup]
        if not snaps:
            return None
        first, last = snaps[0], snaps[-1]
        span_s = (last.t_ns - first.t_ns) / 1e9
        window_s = span_s + last.window_s
        if span_s > 0:
            done = (last.finished_total - last.failed_total) - (
                first.finished_total - first.failed_total
            )
            req_s = max(0.0, done / span_s)
        else:
            req_s = last.requests_per_s
        return Rates(
            profile=last.profile,
            window_s=min(window_s, RATE_WINDOW_S),
            output_tokens_per_s=sum(s.output_tokens_per_s for s in snaps) / len(snaps),
            input_tokens_per_s=sum(s.input_tokens_per_s for s in snaps) / len(snaps),
            requests_per_s=req_s,
            in_flight=last.in_flight,
        )


class History:
    """Every charted figure over the run, and the latest engine time seen."""

    def __init__(self) -> None:
        self._series: dict[str, TimeSeries] = {}
        self.now_s = 0.0
        """The latest engine time seen (seconds from the run's clock origin)."""

    def _add(self, name: str, t_s: float, value: float | None, flagged: bool = False) -> None:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = TimeSeries()
        series.add(t_s, value, flagged=flagged)
        self.now_s = max(self.now_s, t_s)

    def snapshot(self, s: SnapshotTaken) -> None:
        t_s = s.t_ns / 1e9
        for name, value in zip(
            THROUGHPUT_SERIES,
            (s.output_tokens_per_s, s.input_tokens_per_s, s.requests_per_s, s.in_flight),
        ):
            self._add(name, t_s, float(value))

    def record(self, r: RequestRecord, slo: Slo) -> None:
        t_s = r.end_ns / 1e9
        if r.ttft_s is not None:
            self._add("ttft_s", t_s, r.ttft_s, slo.ttft_s is not None and r.ttft_s > slo.ttft_s)
        if r.tpot_s is not None:
            self._add("tpot_s", t_s, r.tpot_s, slo.tpot_s is not None and r.tpot_s > slo.tpot_s)

    def gpu(self, t_s: float, g: GpuSample) -> None:
        for name, value in zip(GPU_FIELDS, (g.utilization_pct, g.power_w, g.memory_used_mib)):
            self._add(gpu_key(g.index, name), t_s, value)

    def host(self, t_s: float, h: HostSample) -> None:
        figures = (h.system_cpu_pct, h.client_cpu_pct, h.server_cpu_pct, h.server_rss_mib)
        for name, value in zip(HOST_SERIES, figures):
            self._add(name, t_s, value)

    def server(self, t_s: float, m: ServerMetricsSample) -> None:
        for name, value in zip(SERVER_SERIES, (m.running, m.waiting, m.kv_cache_usage_pct)):
            self._add(name, t_s, value)

    def views(self) -> dict[str, SeriesView]:
        """An immutable copy of every series."""
        return {name: series.snapshot() for name, series in self._series.items()}
