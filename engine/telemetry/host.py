"""Host figures from psutil: the machine, llmtop itself, and a local server process tree.

llmtop's own CPU is a validity signal: a saturated client stamps chunks late. A local server's
process is found by PID (started by llmtop, or ``--server-pid``) or by the port it listens on;
vLLM and SGLang spawn workers, so its children are counted too. ``sample`` reads /proc and
blocks for a fraction of a millisecond: call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HostSample:
    """The host at one instant; a figure that could not be read is ``None``.

    Attributes:
        system_cpu_pct: CPU use of the whole machine, percent of all cores.
        ram_used_mib: Memory in use (total minus available).
        ram_total_mib: Memory installed.
        client_cpu_pct: llmtop's own CPU use, percent of one core.
        client_rss_mib: llmtop's resident memory.
        server_pid: PID of the local server process tree being watched, if any.
        server_cpu_pct: The server tree's CPU use, percent of one core.
        server_rss_mib: The server tree's resident memory.

    """

    system_cpu_pct: float
    ram_used_mib: float
    ram_total_mib: float
    client_cpu_pct: float | None
    client_rss_mib: float | None
    server_pid: int | None
    server_cpu_pct: float | None
    server_rss_mib: float | None

    def summarised(self) -> dict[str, float | None]:
        """The figures a telemetry window summarises as mean and peak, by name."""
        return {
            "system_cpu_pct": self.system_cpu_pct,
            "ram_used_mib": self.ram_used_mib,
            "client_cpu_pct": self.client_cpu_pct,
            "client_rss_mib": self.client_rss_mib,
            "server_cpu_pct": self.server_cpu_pct,
            "server_rss_mib": self.server_rss_mib,
        }

    def as_dict(self) -> dict[str, Any]:
        """The sample as plain JSON-ready types, fields in declaration order."""
        return dataclasses.asdict(self)


class ProcessTree:
    """CPU % (of one core) and resident memory of a process and its children."""

    def __init__(self, pid: int, children: bool = True) -> None:
        self.pid = pid
        self.children = children
        self._root = psutil.Process(pid)
        self._known: dict[int, psutil.Process] = {}

    def sample(self) -> tuple[float | None, float | None]:
        """``(cpu_pct, rss_mib)``; Nones once the process is gone. The first CPU reading of
        each process is 0 by definition (it starts psutil's interval).
        """
        try:
            processes = [self._root]
            if self.children:
                processes.extend(self._root.children(recursive=True))
        except psutil.Error:
            return None, None
        cpu = rss = 0.0
        for process in processes:
            known = self._known.setdefault(process.pid, process)
            try:
                with known.oneshot():
                    cpu += known.cpu_percent(None)
                    rss += known.memory_info().rss / MIB
            except psutil.Error:
                self._known.pop(process.pid, None)
        return cpu, rss


def pid_listening_on(port: int) -> int | None:
    """The PID of the local process listening on TCP ``port``, if it can be seen."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


class HostSampler:
    """One ``HostSample`` per call; a field that cannot be read is ``None``."""

    def __init__(self, server_pid: int | None = None) -> None:
        # llmtop alone: a server it started is its child and is counted separately.
        self._client = ProcessTree(psutil.Process().pid, children=False)
        self._server: ProcessTree | None = None
        if server_pid is not None:
            try:
                self._server = ProcessTree(server_pid)
            except psutil.Error:
                self._server = None
        psutil.cpu_percent(None)  # start the system-wide interval

    def sample(self) -> HostSample:
        """System CPU (% of all cores) and RAM, llmtop's CPU/RSS, the server's CPU/RSS."""
        memory = psutil.virtual_memory()
        client_cpu, client_rss = self._client.sample()
        server_cpu, server_rss = self._server.sample() if self._server else (None, None)
        return HostSample(
            system_cpu_pct=psutil.cpu_percent(None),
            ram_used_mib=(memory.total - memory.available) / MIB,
            ram_total_mib=memory.total / MIB,
            client_cpu_pct=client_cpu,
            client_rss_mib=client_rss,
            server_pid=self._server.pid if self._server else None,
            server_cpu_pct=server_cpu,
            server_rss_mib=server_rss,
        )
