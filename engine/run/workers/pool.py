"""The parent's side: the run's workers, started once, and each profile handed to them.

``WorkerPool`` is the ``Senders`` of a run with several workers (engine/run/senders.py). It
starts them (processes here, or Ray actors), measures each one's clock against its own, opens
a ``PooledProfileRun`` per profile, routes their reports, notices a worker that dies, and at
the end tells them to exit and makes sure they did.

Clocks: ``perf_counter_ns`` is per host and, in principle, per process (on Linux all
processes share CLOCK_MONOTONIC, and the offset measures as 0). A worker on the parent's host
says ``(perf_counter_ns, time_ns)`` read together, and so does the parent: one wall clock, so
the difference of the two pairs is the offset, to the time the reads took. A worker on another
host (Ray) is pinged a few times instead; with the parent's send and receive times ``t0``,
``t1`` and the worker's reading ``tw``, its offset is ``tw - (t0 + t1) / 2``, uncertain by half
the round trip (the quickest is kept), and no trust in the hosts' wall clocks is needed.
Workers then stamp their records from the parent's origin shifted by that offset, so every
``*_ns`` in the run folder is on the parent's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import perf_counter_ns
from typing import Any

from engine.errors import RunError
from engine.events import EventBus, NoticeRaised
from engine.http.client import ServerQuirks
from engine.metrics.client_health import WorkerHealth
from engine.run.calibration import calibrate
from engine.run.config import RunConfig
from engine.run.ids import RequestIds
from engine.run.profile_run import RunContext
from engine.run.setup import make_client
from engine.run.workers.messages import (
    Bye,
    Crashed,
    Hello,
    Ping,
    Pong,
    Report,
    Shutdown,
    clock_pair,
)
from engine.run.workers.pooled_run import PooledProfileRun
from engine.run.workers.state import Link, WorkerState
from engine.telemetry.gpu import GpuSampler
from engine.workload.profile import Profile
from engine.workload.prompts import PromptFactory
from engine.workload.split import auto_workers

PINGS = 5
"""Round trips per worker to measure its clock offset (the quickest one counts)."""
START_TIMEOUT_S = 120.0
"""How long workers may take to start (a spawned interpreter imports the engine; a Ray
cluster may have to place actors)."""
EXIT_TIMEOUT_S = 10.0
"""How long workers get to exit after ``Shutdown`` before they are killed."""


def usable_cores() -> int:
    """Cores this process may run on."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class WorkerPool:
    """The run's workers; ``Engine`` uses it through the ``Senders`` interface."""

    def __init__(
        self, config: RunConfig, run_id: str, quirks: ServerQuirks, bus: EventBus, ids: RequestIds
    ) -> None:
        self.config, self.run_id, self.quirks, self.bus, self.ids = config, run_id, quirks, bus, ids
        self.workers: list[WorkerState] = []
        self._ray: Any = None
        """The Ray placement (``engine.run.workers.ray_link.RayCluster``), with ``--ray``."""
        self._current: PooledProfileRun | None = None
        self._tokens = itertools.count(1)
        self._waiting: dict[tuple[int, int], asyncio.Future[Any]] = {}
        self._notices_seen: set[str] = set()
        self._closing = False
        self._host = socket.gethostname()

    # -- Senders --

    async def start(self) -> None:
        """Start the workers and measure their clocks; a worker that cannot start fails the
        run before anything is sent.
        """
        count = self._count()
        for n in range(count):
            self.workers.append(WorkerState(self._link(n)))
        await self._start_all(self.workers)
        kind = "Ray actors" if self._ray is not None else "processes"
        hosts = sorted({w.link.host for w in self.workers})
        self.bus.publish(
            NoticeRaised(
                "info",
                f"{count} worker {kind} send the load on {', '.join(hosts)}; clock offsets "
                + ", ".join(
                    f"{w.offset_ns / 1e3:+.0f}±{w.error_ns / 1e3:.0f} us" for w in self.workers
                ),
            )
        )

    def _count(self) -> int:
        if self.config.workers != "auto":
            return self.config.workers
        if self.config.ray_address is not None:
            return auto_workers(self.config.profiles, self._ray_cores() + 1)
        return auto_workers(self.config.profiles, usable_cores())

    def _ray_cores(self) -> int:
        from engine.run.workers.ray_link import RayCluster

        self._ray = self._ray or RayCluster.connect(self.config.ray_address or "auto")
        return int(self._ray.cores())

    def _link(self, worker: int) -> Link:
        run_id = self.run_id
        if self.config.ray_address is not None:
            from engine.run.workers.ray_link import RayCluster, RayLink

            self._ray = self._ray or RayCluster.connect(self.config.ray_address)
            return RayLink(worker, self.config, run_id, self._ray, self._report, self._exit)
        from engine.run.workers.process import ProcessLink

        return ProcessLink(worker, self.config, run_id, self._report, self._exit)

    async def _start_all(self, workers: list[WorkerState]) -> None:
        hellos = [self._expect(w.number, 0) for w in workers]
        for state in workers:
            state.link.start()
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await asyncio.gather(*hellos)
        except TimeoutError:
            raise RunError(f"worker processes did not start within {START_TIMEOUT_S:g} s") from None
        await asyncio.gather(*(self._sync_clock(w) for w in workers))

    def _expect(self, worker: int, key: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[(worker, key)] = future
        return future

    async def _sync_clock(self, state: WorkerState) -> None:
        hello = state.hello
        if hello is not None and hello.host == self._host:
            # One machine, one wall clock: the two pairs give the offset without a round trip.
            before = perf_counter_ns()
            perf, wall = clock_pair()
            state.offset_ns = (hello.perf_ns - hello.wall_ns) - (perf - wall)
            state.error_ns = perf_counter_ns() - before
            return
        best: tuple[int, int] | None = None
        for _ in range(PINGS):
            t0 = perf_counter_ns()
            answer = self._expect(state.number, t0)
            state.link.send(Ping(t0))
            pong: Pong = await answer
            t1 = perf_counter_ns()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, pong.worker_ns - (t0 + t1) // 2)
        assert best is not None
        state.error_ns, state.offset_ns = best[0] // 2, best[1]

    @asynccontextmanager
    async def open(self, profile: Profile, ctx: RunContext) -> AsyncIterator[PooledProfileRun]:
        """The profile sent by the workers still alive."""
        alive = [w for w in self.workers if w.alive]
        if not alive:
            raise RunError("no worker is left to send the load: every one of them ended")
        run = PooledProfileRun(
            ctx,
            profile,
            alive,
            token=next(self._tokens),
            ids=self.ids,
            calibrate=self._calibration(profile, ctx),
            notices_seen=self._notices_seen,
        )
        self._current = run
        try:
            yield run
        finally:
            self._current = None
        if run.saturated and self.config.workers == "auto":
            await self._grow(run.saturated)

    def _calibration(self, profile: Profile, ctx: RunContext) -> Any:
        """Measure prompt tokens per word once, here, for every worker (two tiny requests)."""
        if not ctx.calibrate_prompts or profile.prompt_rep is not None or profile.prompt_file:
            return None

        async def measure() -> dict[str, Any] | None:
            factory = PromptFactory(profile, ctx.words)
            async with make_client(self.config, 1, self.quirks, self.bus) as client:
                return await calibrate(factory, client, profile, ctx.model)

        return measure

    async def _grow(self, saturated: list[int]) -> None:
        """``--workers auto``: a worker was saturated, so later profiles get one more worker
        (up to one per core but one).
        """
        cores = self._ray_cores() + 1 if self._ray is not None else usable_cores()
        if len([w for w in self.workers if w.alive]) >= max(1, cores - 1):
            return
        state = WorkerState(self._link(len(self.workers)))
        self.workers.append(state)
        await self._start_all([state])
        self.bus.publish(
            NoticeRaised(
                "info",
                f"worker {', '.join(map(str, saturated))} was saturated: --workers auto added "
                f"worker {state.number} for the profiles to come",
            )
        )

    async def aclose(self) -> None:
        """Tell every worker to exit; kill the ones that do not within ``EXIT_TIMEOUT_S``."""
        if self._closing:
            return
        self._closing = True
        for state in self.workers:
            state.link.send(Shutdown())
        for state in self.workers:
            if not await state.link.join(EXIT_TIMEOUT_S):
                state.link.kill()
                await state.link.join(EXIT_TIMEOUT_S)
            state.link.close()
        for future in self._waiting.values():
            future.cancel()
        if self._ray is not None:
            self._ray.close()

    def gpu_sampler(self) -> GpuSampler | None:
        """With Ray, the GPUs of the node that runs the server, read there; else ``None``
        (the parent samples its own machine's, as one process does).
        """
        if self.config.ray_address is None or self.config.telemetry is None:
            return None
        self._ray_cores()  # connects
        sampler: GpuSampler | None = self._ray.gpu_sampler(self.config.url)
        return sampler

    def health(self) -> list[WorkerHealth]:
        """Every worker's figures, for ``summary.json``."""
        return [w.health() for w in self.workers]

    # -- what the workers say --

    def _report(self, link: Link, report: Report) -> None:
        state = self.workers[link.worker]
        if isinstance(report, Hello):
            link.pid, link.host = report.pid, report.host
            state.hello = report
            self._resolve((link.worker, 0), report)
        elif isinstance(report, Pong):
            self._resolve((link.worker, report.sent_ns), report)
        elif isinstance(report, Bye):
            state.life = report.health
        elif isinstance(report, Crashed):
            self._exit(link, f"crashed ({report.error})")
        elif self._current is not None and getattr(report, "token", None) == self._current.token:
            self._current.on_report(state, report)

    def _resolve(self, key: tuple[int, int], value: Any) -> None:
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    def _exit(self, link: Link, reason: str) -> None:
        """A worker ended: expected after ``Shutdown``, a loss otherwise."""
        state = self.workers[link.worker]
        if self._closing or state.lost is not None:
            return
        state.lost = reason
        for key, future in list(self._waiting.items()):
            if key[0] == link.worker and not future.done():
                future.set_exception(RunError(f"worker {link.worker} {reason} while starting"))
        if self._current is None or not self._current.worker_lost(state, reason):
            self.bus.publish(
                NoticeRaised("warning", f"worker {link.worker} ({link.host}) {reason}")
            )
