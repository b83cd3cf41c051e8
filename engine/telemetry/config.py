"""``TelemetryConfig``: what a run samples beside its requests, and how often."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SAMPLE_HZ = 4.0


class TelemetryConfig(BaseModel):
    """What to sample beside the requests: GPUs (NVML), the host, a local server process
    (psutil) and the server's Prometheus ``/metrics``.
    """

    model_config = ConfigDict(frozen=True)

    rate_hz: float = Field(default=DEFAULT_SAMPLE_HZ, gt=0)
    """GPU and host samples per second (server ``/metrics``: at most once a second)."""
    server_url: str | None = None
    """Where ``/metrics`` is read; ``None``: not read."""
    server_pid: int | None = None
    """The local server process whose CPU and memory are sampled; ``None``: none."""
    ollama: bool = False
    """The server is Ollama: its loaded models and their VRAM are read from ``/api/ps``."""
