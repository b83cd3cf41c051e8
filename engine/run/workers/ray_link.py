"""Workers as Ray actors across a cluster's nodes (``--ray``, the optional ``llmtop[ray]``).

Each worker is an async actor holding one CPU (``num_cpus=1``: a core of its own), spread
over the nodes (``SPREAD``). It runs the same ``WorkerRuntime`` as a worker process; only the
carrier differs:

* commands: ``command(seq, command)`` calls, applied in ``seq`` order (Ray starts an async
  actor's calls in any order it likes);
* reports: the driver long-polls ``reports()``, which returns everything collected since the
  last call as one object: with batches flushed every ~100 ms that is one object per worker
  per ~100 ms, never one per request or token;
* a dead actor (its process killed, its node gone) raises on the pending poll: reported as
  the worker's loss.

Clocks differ between hosts: the pool measures each actor's offset with pings over this same
path (quickest round trip of several), and the actor stamps its records on the driver's
clock. Ray kills actors whose driver exits, so none outlives the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import ray

from engine.run.config import RunConfig
from engine.run.workers.messages import Bye, Command, Hello, Report, clock_pair
from engine.run.workers.runtime import WorkerRuntime
from engine.telemetry.gpu import GpuSample, GpuSampler

POLL_WAIT_S = 1.0
"""Longest a ``reports()`` call waits for something to return (the flush is every 0.1 s)."""


class RayWorker:
    """The actor: a ``WorkerRuntime`` on the actor's event loop (wrapped by ``ray.remote``)."""

    def __init__(self, worker: int, config: RunConfig, run_id: str) -> None:
        self._host = socket.gethostname()
        self._worker = worker
        self._outbox: list[Report] = []
        self._ready = asyncio.Event()
        self._runtime = WorkerRuntime(worker, config, run_id, self._host, self._emit)
        self._next_seq = 0
        self._held: dict[int, Command] = {}
        self._serving: asyncio.Task[None] | None = None

    def _emit(self, report: Report) -> None:
        self._outbox.append(report)
        self._ready.set()

    async def start(self) -> None:
        """Serve until ``Shutdown``; says ``Hello`` first."""
        import os

        node = ray.get_runtime_context().get_node_id()
        self._emit(Hello(self._worker, os.getpid(), self._host, node, *clock_pair()))
        self._serving = asyncio.create_task(self._runtime.serve())

    async def command(self, seq: int, command: Command) -> None:
        """Apply commands in the order the driver sent them."""
        self._held[seq] = command
        while self._next_seq in self._held:
            self._runtime.handle(self._held.pop(self._next_seq))
            self._next_seq += 1

    async def reports(self) -> list[Report]:
        """Everything reported since the last call (waits up to ``POLL_WAIT_S`` for some)."""
        if not self._outbox:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), POLL_WAIT_S)
        self._ready.clear()
        out, self._outbox = self._outbox, []
        return out


class RayCluster:
    """The Ray connection of a run: starts or joins a cluster, places the actors."""

    def __init__(self, owned: bool) -> None:
        self._owned = owned
        """True when llmtop started Ray here (then it shuts it down at the end)."""
        self._actor_class: Any = ray.remote(num_cpus=1)(RayWorker)

    @classmethod
    def connect(cls, address: str) -> RayCluster:
        """``auto``: a running cluster (``$RAY_ADDRESS``, ``ray start``), else a local one;
        ``local``: a new local one; else the address (``ray://head:10001``). Ray already
        initialised in this process (a notebook, the tests) is used as it is.
        """
        if ray.is_initialized():
            return cls(owned=False)
        given = None if address == "auto" else address
        ray.init(address=given, log_to_driver=False, configure_logging=False)
        return cls(owned=True)

    def cores(self) -> int:
        """CPUs of the cluster's alive nodes."""
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        return int(resources.get("CPU", 1))

    def place(self, worker: int, config: RunConfig, run_id: str) -> Any:
        """Start worker ``worker``'s actor on a core of its own, spread across nodes."""
        return self._actor_class.options(
            name=None, scheduling_strategy="SPREAD", max_restarts=0
        ).remote(worker, config, run_id)

    def gpu_sampler(self, url: str) -> GpuSampler | None:
        """A sampler of the GPUs of the node that runs the server at ``url``, when that is
        another node of the cluster; ``None``: sample here, as without Ray.
        """
        driver = ray.get_runtime_context().get_node_id()
        node = server_node(url, ray.nodes(), driver)  # type: ignore[no-untyped-call]
        return RemoteGpuSampler(node) if node is not None else None

    def close(self) -> None:
        """Shut Ray down if llmtop started it."""
        if self._owned and ray.is_initialized():
            ray.shutdown()


class RayLink:
    """The driver's handle on one actor (a ``Link``)."""

    kind = "ray actor"

    def __init__(
        self,
        worker: int,
        config: RunConfig,
        run_id: str,
        cluster: RayCluster,
        on_report: Any,
        on_exit: Any,
    ) -> None:
        self.worker = worker
        self.host = "?"
        self.pid: int | None = None
        self._on_report, self._on_exit = on_report, on_exit
        self._actor = cluster.place(worker, config, run_id)
        self._seq = 0
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start serving and polling."""
        self._actor.start.remote()
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    def send(self, command: Command) -> None:
        """A numbered call; the actor applies them in order."""
        self._actor.command.remote(self._seq, command)
        self._seq += 1

    async def _poll(self) -> None:
        while True:
            try:
                reports = await self._actor.reports.remote()
            except ray.exceptions.RayError as exc:
                self._on_exit(self, f"died ({type(exc).__name__})")
                return
            for report in reports:
                self._on_report(self, report)
                if isinstance(report, Bye):
                    return

    def kill(self) -> None:
        """``ray.kill`` the actor."""
        with contextlib.suppress(Exception):
            ray.kill(self._actor)

    async def join(self, timeout_s: float) -> bool:
        """Wait for its ``Bye`` (or its death); True when it came."""
        if self._poller is None:
            return True
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._poller), timeout_s)
        return self._poller.done()

    def close(self) -> None:
        """Stop polling and end the actor (it exited its loop after ``Bye`` already)."""
        if self._poller is not None:
            self._poller.cancel()
        self.kill()


# -- GPU telemetry from the server's node ------------------------------------------------


class GpuReader:
    """An actor on the server's node that reads its GPUs (wrapped by ``ray.remote``)."""

    def __init__(self) -> None:
        self._gpu = GpuSampler()

    def open(self) -> str | None:
        """``GpuSampler.open`` there."""
        return self._gpu.open()

    def sample(self) -> tuple[GpuSample, ...]:
        """``GpuSampler.sample`` there."""
        return self._gpu.sample()

    def close(self) -> None:
        """``GpuSampler.close`` there."""
        self._gpu.close()


class RemoteGpuSampler(GpuSampler):
    """The run's ``GpuSampler`` when the server runs on another node of the cluster: NVML is
    read there, by a ``GpuReader`` actor pinned to that node (no CPU reserved: it reads a few
    times a second), and the samples come back to the driver's telemetry, which stamps and
    writes them as its own.
    """

    def __init__(self, node_id: str) -> None:  # noqa: D107 - NVML is the actor's, not ours
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        reader: Any = ray.remote(num_cpus=0)(GpuReader)
        self.node_id = node_id
        self._actor = reader.options(scheduling_strategy=strategy).remote()
        self._count = 0

    @property
    def available(self) -> bool:  # noqa: D102 - as GpuSampler's
        return self._count > 0

    @property
    def count(self) -> int:  # noqa: D102 - as GpuSampler's
        return self._count

    def open(self) -> str | None:
        """Start NVML on the server's node; the notice says where when there is no GPU."""
        notice: str | None = ray.get(self._actor.open.remote())
        if notice is not None:
            return f"on the server's node {self.node_id[:8]}: {notice}"
        self._count = len(self.sample())
        return None

    def sample(self) -> tuple[GpuSample, ...]:
        """One snapshot of that node's GPUs (blocks: the telemetry calls it from a thread)."""
        samples: tuple[GpuSample, ...] = ray.get(self._actor.sample.remote())
        return samples

    def close(self) -> None:
        """Shut NVML there and end the actor."""
        with contextlib.suppress(Exception):
            ray.get(self._actor.close.remote(), timeout=5)
            ray.kill(self._actor)


def server_node(url: str, nodes: list[dict[str, Any]], driver_node: str) -> str | None:
    """The Ray node that runs the server at ``url``, when it is another node than the
    driver's (``ray.nodes()`` entries); ``None`` when the server is on the driver's node, a
    loopback address (the driver's), or on no node of the cluster.
    """
    host = urlsplit(url).hostname or ""
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return None
    if ipaddress.ip_address(address).is_loopback:
        return None
    for node in nodes:
        if not node.get("Alive", True):
            continue
        names = {node.get("NodeManagerAddress"), node.get("NodeManagerHostname")}
        if address in names or host in names:
            node_id = str(node["NodeID"])
            return None if node_id == driver_node else node_id
    return None
