"""Who sends a profile's requests: this process (``LocalSenders``, the default), or worker
processes (``engine.run.workers``, ``--workers N``, ``--ray``). ``Engine`` drives either
through the same small interface, so the results file, the console, the screen, the outage
rule and the write-failure stop work the same way for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from engine.events import EventBus, NoticeRaised
from engine.http.client import ServerQuirks
from engine.metrics.client_health import WorkerHealth
from engine.metrics.summary import ProfileAggregate
from engine.run.config import RunConfig
from engine.run.ids import RequestIds
from engine.run.profile_run import ProfileRun, RunContext
from engine.run.setup import ensure_open_files, make_client
from engine.telemetry.gpu import GpuSampler
from engine.workload.profile import Profile


class ProfileSender(Protocol):
    """One profile being sent: what ``Engine`` and its controls call (``ProfileRun`` is one)."""

    stopping: bool
    calibration: dict[str, Any] | None
    aggregate: ProfileAggregate

    async def execute(self) -> None:
        """Send the profile until its stop rule (or a control) says stop."""

    def stop_sending(self) -> None:
        """No new requests; in-flight ones finish and count."""

    def pause_sending(self, reason: str = "user") -> None:
        """Send nothing new until ``resume_sending(reason)``."""

    def resume_sending(self, reason: str = "user") -> None:
        """Undo ``pause_sending(reason)``."""

    def cancel_all(self) -> None:
        """Cancel everything in flight (Ctrl+C)."""

    async def publish_snapshots(self, interval_s: float) -> None:
        """Publish live figures every ``interval_s`` until cancelled."""

    def duration_s(self) -> float:
        """The measured window, pauses left out."""


class Senders(Protocol):
    """Makes the ``ProfileSender`` of each profile; lives as long as the run."""

    async def start(self) -> None:
        """Get ready before the first profile (start worker processes)."""

    def open(self, profile: Profile, ctx: RunContext) -> AbstractAsyncContextManager[ProfileSender]:
        """The sender of ``profile``, ready while the context is open."""

    async def aclose(self) -> None:
        """Release everything ``start`` took (stop worker processes); safe to call twice."""

    def health(self) -> list[WorkerHealth]:
        """Per worker process: its CPU, loop lag and schedule lag (empty in this process)."""

    def gpu_sampler(self) -> GpuSampler | None:
        """Where the run's GPUs are read, when not on this machine (Ray: the server's node)."""


class LocalSenders:
    """Profiles sent by this process's event loop: one ``StreamingClient`` and ``ProfileRun``
    per profile.
    """

    def __init__(self, config: RunConfig, quirks: ServerQuirks, bus: EventBus) -> None:
        self.config, self.quirks, self.bus = config, quirks, bus

    async def start(self) -> None:  # noqa: D102 - nothing to start
        return None

    async def aclose(self) -> None:  # noqa: D102 - nothing to release
        return None

    def health(self) -> list[WorkerHealth]:  # noqa: D102 - the run's own lag covers it
        return []

    def gpu_sampler(self) -> GpuSampler | None:  # noqa: D102 - this machine's GPUs
        return None

    @asynccontextmanager
    async def open(self, profile: Profile, ctx: RunContext) -> AsyncIterator[ProfileSender]:
        """A client sized for the profile (a connection per stream) and its ``ProfileRun``."""
        pool = profile.concurrency or profile.max_in_flight
        problem = ensure_open_files(pool)
        if problem:
            self.bus.publish(NoticeRaised("warning", problem))
        async with make_client(self.config, pool, self.quirks, self.bus) as client:
            yield ProfileRun(ctx, profile, client)


def senders_for(
    config: RunConfig, run_id: str, quirks: ServerQuirks, bus: EventBus, ids: RequestIds
) -> Senders:
    """The engine's own process for one worker (today's path, unchanged), else worker processes."""
    if config.workers == 1 and config.ray_address is None:
        return LocalSenders(config, quirks, bus)
    from engine.run.workers.pool import WorkerPool

    return WorkerPool(config, run_id, quirks, bus, ids)
