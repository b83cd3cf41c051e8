"""What a run is told: ``RunConfig`` (server, profiles, objectives, limits, telemetry).

Built once by a front end (the CLI turns its options into one), then handed whole to
``Engine``; nothing is added to an engine after it is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine import __version__
from engine.events import SNAPSHOT_INTERVAL_S
from engine.metrics.summary import Slo
from engine.stats import NS
from engine.telemetry.config import TelemetryConfig
from engine.workload.profile import Profile


class RunConfig(BaseModel):
    """Everything a run needs. ``api_key`` and ``basic_auth`` are never serialised."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    url: str
    """Server base URL without ``/v1`` (credentials are never stored)."""
    model: str
    """Model name sent in every request."""
    profiles: list[Profile]
    """Profiles to run, in order."""
    results_root: Path
    """Folder under which the run's own folder is created."""
    api_key: SecretStr | None = Field(default=None, exclude=True)
    """Bearer token; kept in memory only."""
    basic_auth: SecretStr | None = Field(default=None, exclude=True)
    """``user:password`` for HTTP Basic auth (a ``--url`` that carries them), sent instead of
    ``api_key``; kept in memory only."""
    slo: Slo = Slo()
    """Objectives for goodput."""
    connect_timeout_s: float = 10.0
    """Give up connecting after this long."""
    stall_timeout_s: float = 300.0
    """Fail a request after this long without a byte from the server."""
    outage_grace_s: float = 15.0
    """After connection failures in a row, how long the server may stay silent (probed every
    0.5 s, sending held) before the run fails; a server back within it lets the run go on."""
    save_itl: bool = False
    """Store every request's raw inter-token gaps in its record."""
    calibrate_prompts: bool = False
    """Calibrate synthetic prompt lengths against the server before each profile (2 tiny
    requests, not recorded)."""
    features: dict[str, Any] | None = None
    """What ``probe_features`` found the server honours; requests adapt to it."""
    pause_between_profiles_s: float = 0.0
    """Pause between two profiles (a suite's ``pause_between_s``); not part of any window."""
    snapshot_interval_s: float = SNAPSHOT_INTERVAL_S
    """How often live figures are published."""
    hold_open: bool = False
    """Interactive sessions: when the queue runs out, wait for more profiles until
    ``Engine.end_run`` instead of ending the run."""
    server_kind: str = "unknown"
    """Detected server implementation."""
    telemetry: TelemetryConfig | None = None
    """What to sample during the run; ``None``: no telemetry (no ``samples.jsonl``)."""
    server_process: dict[str, Any] | None = None
    """Facts about a server process llmtop started (command, pid, start-up time); copied
    into the summary, with its exit code and log tail added if it exits during the run."""
    workers: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = 1
    """Client processes that send the load together (engine/workload/split.py): 1 sends from
    the engine's own process; ``auto``: as many as the heaviest profile needs, at most one
    per core but one."""
    ray_address: str | None = None
    """Place the workers as Ray actors on this cluster (``auto``, ``local`` or
    ``ray://head:10001``) instead of processes on this machine; needs ``llmtop[ray]``."""
    run_meta: dict[str, Any] = Field(default_factory=dict)
    """Extra metadata for ``run.json`` (the options, detection, host)."""

    def credentials(self) -> tuple[str | None, str | None]:
        """``api_key`` and ``basic_auth`` in plain text, for the request headers."""
        return _plain(self.api_key), _plain(self.basic_auth)


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def run_meta(config: RunConfig, run_id: str, origin_ns: int, origin_unix_ns: int) -> dict[str, Any]:
    """What ``run.json`` says of a run at its start: the configuration (no API key), the
    version, and the clock every stored ``*_ns`` offset is measured from.
    """
    return {
        "run_id": run_id,
        "llmtop_version": __version__,
        "url": config.url,
        "model": config.model,
        "server_kind": config.server_kind,
        "profiles": [p.model_dump() for p in config.profiles],
        "slo": config.slo.model_dump(),
        "stall_timeout_s": config.stall_timeout_s,
        "connect_timeout_s": config.connect_timeout_s,
        "started_unix_s": origin_unix_ns / NS,
        "clock": {
            "origin_unix_ns": origin_unix_ns,
            "origin_perf_counter_ns": origin_ns,
            "note": "t_ns fields are perf_counter_ns offsets from origin",
        },
        **config.run_meta,
    }
