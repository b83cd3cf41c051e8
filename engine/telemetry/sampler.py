"""Telemetry on the engine's clock: GPUs (NVML), the host and a local server (psutil), and the
server's own Prometheus metrics, sampled while a run goes on.

Every sample is a line in ``samples.jsonl`` beside ``requests.jsonl`` (``kind`` = ``gpu``,
``host`` or ``server_metrics``; ``t_ns`` on the run's clock) and a ``TelemetrySampled`` event.
Blocking reads (NVML, /proc) run in a worker thread, never on the event loop; the server's
``/metrics`` is fetched asynchronously at most once a second. Figures over each profile's
measured window (``open_window``/``close_window``) go into its summary.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

import httpx

from engine.errors import WriteFailed
from engine.events import EventBus, NoticeRaised, TelemetrySampled
from engine.lines import LineFile
from engine.telemetry.config import TelemetryConfig
from engine.telemetry.gpu import GpuSample, GpuSampler, energy_between
from engine.telemetry.host import HostSample, HostSampler
from engine.telemetry.ollama import loaded_models
from engine.telemetry.samples import Sample, SampleKind
from engine.telemetry.server_metrics import ServerMetricsSample, ServerMetricsTracker, fetch
from engine.telemetry.window import Window

if TYPE_CHECKING:
    from engine.metrics.summary import ProfileSummary
METRICS_INTERVAL_S = 1.0


class Telemetry:
    """Samples until cancelled; owns ``samples.jsonl``."""

    def __init__(
        self,
        bus: EventBus,
        origin_ns: int,
        samples_path: Path,
        config: TelemetryConfig,
        *,
        gpu: GpuSampler | None = None,
    ) -> None:
        self.bus = bus
        self.origin_ns = origin_ns
        self.interval_s = 1.0 / config.rate_hz
        self.server_url = config.server_url
        self.ollama = config.ollama
        self.gpu = gpu or GpuSampler()
        self.host = HostSampler(config.server_pid)
        self.tracker = ServerMetricsTracker()
        self._path = samples_path
        self._file: LineFile | None = None
        self._run = Window()
        self._window: Window | None = None
        self._last_metrics_text: str | None = None
        self._last_gpu: tuple[GpuSample, ...] = ()
        self._http: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        """Windows are fed from a worker thread and opened/closed on the loop."""

    def start(self) -> None:
        """Open NVML and the samples file; say once when there is no GPU to sample."""
        notice = self.gpu.open()
        if notice:
            self.bus.publish(NoticeRaised("info", notice))
        try:
            self._file = LineFile(self._path)
        except OSError as exc:
            self.bus.write_failed(WriteFailed(str(self._path), exc))
        self._http = httpx.AsyncClient(timeout=2.0)

    async def aclose(self) -> None:
        """Release NVML, the HTTP client and the samples file (after ``run`` was cancelled)."""
        self.gpu.close()
        if self._http is not None:
            await self._http.aclose()
        if self._file is not None:
            self._file.close()

    async def run(self) -> None:
        """Sample every ``interval_s`` (and the server's metrics every second) until cancelled."""
        next_metrics = 0.0
        while True:
            started = time.monotonic()
            await self._sample_resources()
            if started >= next_metrics:
                next_metrics = started + METRICS_INTERVAL_S
                await self.scrape()
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _sample_resources(self) -> None:
        gpus, host = await asyncio.to_thread(self._read_blocking)
        t_ns = perf_counter_ns() - self.origin_ns
        with self._lock:
            self._last_gpu = gpus
            for window in self._windows():
                window.add_resources(t_ns, gpus, host)
        for sample in gpus:
            self._emit(SampleKind.GPU, t_ns, sample)
        self._emit(SampleKind.HOST, t_ns, host)

    def _read_blocking(self) -> tuple[tuple[GpuSample, ...], HostSample]:
        return self.gpu.sample(), self.host.sample()

    async def scrape(self) -> None:
        """Read the server's /metrics now (no-op without a URL or after it proved unreadable),
        and Ollama's /api/ps (loaded models and their VRAM) when the server is Ollama.
        """
        if not self.server_url or self._http is None:
            return
        if self.ollama:
            await self._scrape_ollama()
        text = await fetch(self._http, self.server_url)
        if text is None:
            return
        t_ns = perf_counter_ns() - self.origin_ns
        try:
            # Parsing a large /metrics page takes milliseconds: off the loop.
            sample = await asyncio.to_thread(self._feed_metrics, t_ns, text)
        except ValueError as exc:
            self.server_url = None
            self.bus.publish(
                NoticeRaised("warning", f"server /metrics unreadable, no longer scraped: {exc}")
            )
            return
        self._emit(SampleKind.SERVER_METRICS, t_ns, sample)

    async def _scrape_ollama(self) -> None:
        assert self._http is not None
        try:
            response = await self._http.get(f"{self.server_url}/api/ps")
            models = response.json().get("models") or [] if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            models = None
        if not isinstance(models, list):
            return
        data = loaded_models(models)
        t_ns = perf_counter_ns() - self.origin_ns
        with self._lock:
            for window in self._windows():
                window.add_loaded_models(data)
        self._emit(SampleKind.SERVER_PS, t_ns, data)

    def _feed_metrics(self, t_ns: int, text: str) -> ServerMetricsSample:
        sample = self.tracker.feed(t_ns / 1e9, text)
        with self._lock:
            self._last_metrics_text = text
            for window in self._windows():
                window.add_metrics(t_ns, text)
        return sample

    def _windows(self) -> list[Window]:
        return [self._run] if self._window is None else [self._run, self._window]

    def _emit(self, kind: SampleKind, t_ns: int, sample: Sample) -> None:
        if self._file is not None:
            line = {"kind": kind, "t_ns": t_ns, **sample.as_dict()}
            try:
                self._file.write(json.dumps(line))
            except WriteFailed as exc:
                self._file = None
                self.bus.write_failed(exc)
        self.bus.publish(TelemetrySampled(kind, t_ns, sample))

    # -- windows --

    async def open_window(self) -> None:
        """Start a profile's measured window: scrape now, so the server's counters at the start
        are exact; the last GPU readings are its baseline.
        """
        await self.scrape()
        window = Window()
        t_ns = perf_counter_ns() - self.origin_ns
        with self._lock:
            if self._last_gpu:
                window.add_resources(t_ns, self._last_gpu, None)
            if self._last_metrics_text is not None:
                window.add_metrics(t_ns, self._last_metrics_text)
            self._window = window

    async def close_window(self, profile: ProfileSummary) -> dict[str, Any] | None:
        """Figures over the window just ended (scraped once more at its end), with per-token
        energy and the server's view next to the client's; ``None`` if no window was open.
        """
        await self.scrape()
        with self._lock:
            window, self._window = self._window, None
        return window.figures(profile, energy_between) if window else None

    def run_figures(self) -> dict[str, Any]:
        """Figures over the whole run (warm-up and pauses included)."""
        return self._run.figures(None, energy_between)
