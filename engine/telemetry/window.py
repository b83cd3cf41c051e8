"""Running figures over one time window of telemetry (a profile's measured phase, or the run).

Nothing is kept per sample: sums, peaks and the first and last GPU readings (for the energy
counter) are enough. Energy comes from NVML's total-energy counter (exact joules) and falls back
to integrating power over time where a GPU has no counter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.telemetry.gpu import GpuSample
from engine.telemetry.host import HostSample
from engine.telemetry.ollama import LoadedModels
from engine.telemetry.server_metrics import ServerMetricsTracker

if TYPE_CHECKING:
    from engine.metrics.summary import Distribution, ProfileSummary

HOST_FIELDS = (
    "system_cpu_pct",
    "ram_used_mib",
    "client_cpu_pct",
    "client_rss_mib",
    "server_cpu_pct",
    "server_rss_mib",
)
"""Host figures summarised as mean and peak (``HostSample.summarised``)."""


@dataclass
class _Series:
    """Mean and peak of one quantity."""

    total: float = 0.0
    count: int = 0
    peak: float | None = None

    def add(self, value: float | None) -> None:
        if value is None:
            return
        self.total += value
        self.count += 1
        self.peak = value if self.peak is None else max(self.peak, value)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class _Gpu:
    """One GPU over the window."""

    name: str | None = None
    memory_total_mib: float | None = None
    utilization: _Series = field(default_factory=_Series)
    memory: _Series = field(default_factory=_Series)
    power: _Series = field(default_factory=_Series)
    temperature: _Series = field(default_factory=_Series)
    first: GpuSample | None = None
    last: GpuSample | None = None
    power_joules: float = 0.0
    last_t_ns: int | None = None

    def add(self, t_ns: int, sample: GpuSample) -> None:
        self.name, self.memory_total_mib = sample.name, sample.memory_total_mib
        self.utilization.add(sample.utilization_pct)
        self.memory.add(sample.memory_used_mib)
        self.power.add(sample.power_w)
        self.temperature.add(sample.temperature_c)
        if (
            self.last is not None
            and self.last_t_ns is not None
            and sample.power_w is not None
            and self.last.power_w is not None
        ):
            self.power_joules += (
                (sample.power_w + self.last.power_w) / 2 * (t_ns - self.last_t_ns) / 1e9
            )
        self.first = self.first or sample
        self.last, self.last_t_ns = sample, t_ns

    def energy_j(self, energy_between: Callable[[GpuSample, GpuSample], float | None]) -> float:
        counted = energy_between(self.first, self.last) if self.first and self.last else None
        return counted if counted is not None else self.power_joules


class Window:
    """Accumulates GPU, host and server-metrics readings between two instants."""

    def __init__(self) -> None:
        self.gpus: dict[int, _Gpu] = {}
        self.host = {name: _Series() for name in HOST_FIELDS}
        self.tracker = ServerMetricsTracker()
        self.server_vram = _Series()
        self.loaded_models: set[str] = set()
        self.start_ns: int | None = None
        self.end_ns: int | None = None

    def add_resources(
        self, t_ns: int, gpus: tuple[GpuSample, ...], host: HostSample | None
    ) -> None:
        """Take one round of GPU readings and (optionally) host readings."""
        self.start_ns = t_ns if self.start_ns is None else self.start_ns
        self.end_ns = t_ns
        for sample in gpus:
            self.gpus.setdefault(sample.index, _Gpu()).add(t_ns, sample)
        figures = host.summarised() if host else {}
        for name, series in self.host.items():
            series.add(figures.get(name))

    def add_loaded_models(self, data: LoadedModels) -> None:
        """Take one reading of Ollama's /api/ps (models loaded and the VRAM they hold)."""
        self.server_vram.add(data.vram_mib_total)
        self.loaded_models.update(m.name for m in data.models if m.name)

    def add_metrics(self, t_ns: int, text: str) -> None:
        """Take one scrape of the server's /metrics."""
        self.tracker.feed(t_ns / 1e9, text)

    def figures(
        self,
        profile: ProfileSummary | None,
        energy_between: Callable[[GpuSample, GpuSample], float | None],
    ) -> dict[str, Any]:
        """Everything summary.json reports for this window; ``profile`` (a ProfileSummary, or
        None for the whole run) supplies tokens for per-token energy and client latencies.
        """
        gpus = [
            self._gpu_figures(index, gpu, energy_between)
            for index, gpu in sorted(self.gpus.items())
        ]
        energy = sum(g["energy_j"] for g in gpus) if gpus else None
        power = sum(g["power_w_mean"] or 0.0 for g in gpus) if gpus else None
        out: dict[str, Any] = {
            "window_s": (self.end_ns - self.start_ns) / 1e9
            if self.start_ns is not None and self.end_ns is not None
            else None,
            "gpus": gpus,
            "gpu_memory_peak_mib_sum": sum(g["memory_used_mib_peak"] or 0.0 for g in gpus)
            if gpus
            else None,
            "energy_j": energy,
            "power_w_mean_sum": power,
            "host": {
                f"{name}_{stat}": getattr(series, stat)
                for name, series in self.host.items()
                for stat in ("mean", "peak")
            },
            "server_metrics": self.tracker.window_summary(),
        }
        if self.server_vram.count:
            out["server_loaded_models"] = sorted(self.loaded_models)
            out["server_vram_mib_peak"] = self.server_vram.peak
        if profile is not None:
            tokens = profile.output_tokens_total
            out["joules_per_output_token"] = energy / tokens if energy and tokens else None
            out["output_tokens_per_s_per_w"] = (
                profile.output_tokens_per_s / power if power else None
            )
            out["server_vs_client"] = _compare(out["server_metrics"], profile)
        return out

    @staticmethod
    def _gpu_figures(
        index: int, gpu: _Gpu, energy_between: Callable[[GpuSample, GpuSample], float | None]
    ) -> dict[str, Any]:
        return {
            "index": index,
            "name": gpu.name,
            "samples": gpu.utilization.count,
            "utilization_pct_mean": gpu.utilization.mean,
            "utilization_pct_peak": gpu.utilization.peak,
            "memory_used_mib_peak": gpu.memory.peak,
            "memory_total_mib": gpu.memory_total_mib,
            "power_w_mean": gpu.power.mean,
            "power_w_peak": gpu.power.peak,
            "temperature_c_peak": gpu.temperature.peak,
            "energy_j": gpu.energy_j(energy_between),
        }


def _compare(server: dict[str, Any], profile: ProfileSummary) -> dict[str, Any]:
    """Server-side p50s next to the client's, with client minus server; and the tokens the
    server counted in the window next to the client's (scraped at both window edges).
    """
    out: dict[str, Any] = {}
    if server.get("generation_tokens") is not None:
        out["output_tokens"] = {
            "server": server["generation_tokens"],
            "client": profile.output_tokens_total,
            "client_minus_server": profile.output_tokens_total - server["generation_tokens"],
        }
    # Server histogram name and the client distribution it is compared with.
    client_vs_server: tuple[tuple[str, Distribution | None], ...] = (
        ("ttft", profile.ttft_s),
        ("itl", profile.itl_s),
        ("e2e", profile.e2e_s),
    )
    for name, client in client_vs_server:
        server_p50 = server.get(f"{name}_p50_s")
        client_p50 = client.p50 if client is not None else None
        if server_p50 is None or client_p50 is None:
            continue
        out[f"{name}_p50_s"] = {
            "server": server_p50,
            "client": client_p50,
            "client_minus_server": client_p50 - server_p50,
        }
    return out
