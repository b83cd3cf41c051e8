"""What the parent knows of each worker: its link, its clock, what it sent, how it fared."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Protocol

from engine.metrics.client_health import WorkerHealth, is_saturated
from engine.run.workers.messages import Command, Health, Hello
from engine.stats import percentile


class Link(Protocol):
    """The parent's handle on one worker, whatever carries the messages (a pipe, Ray)."""

    worker: int
    host: str
    pid: int | None
    kind: str
    """``process`` or ``ray``: how the notices name it."""

    def start(self) -> None:
        """Start the worker; its ``Hello`` follows as a report."""

    def send(self, command: Command) -> None:
        """Hand it a command; never blocks the parent's loop for long."""

    def kill(self) -> None:
        """End it at once (it did not exit when told)."""

    async def join(self, timeout_s: float) -> bool:
        """Wait for it to end; True when it has."""

    def close(self) -> None:
        """Release the link after the worker ended."""


@dataclass
class WorkerState:
    """One worker as the parent sees it."""

    link: Link
    offset_ns: int = 0
    """Its ``perf_counter_ns`` minus the parent's (see ``engine.run.workers.pool``)."""
    error_ns: int = 0
    """Half the quickest round trip that measured ``offset_ns``: its uncertainty."""
    lost: str | None = None
    """Why it ended early (``killed by SIGKILL (9) at 12.3 s``); ``None`` while it serves."""
    hello: Hello | None = None
    """What it said when it started (pid, host, Ray node, clock pair)."""
    life: Health | None = None
    """Its health over its whole life, from its ``Bye``."""
    latest: Health | None = None
    """Its health over the latest profile share it finished."""
    records: int = 0
    """Records received from it."""
    schedule_lag_s: array[float] = field(default_factory=lambda: array("d"))
    """``schedule_lag_s`` of its measured requests (8 bytes each)."""

    @property
    def number(self) -> int:
        """Its worker number."""
        return self.link.worker

    @property
    def alive(self) -> bool:
        """True while it serves."""
        return self.lost is None

    def schedule_lag_p99_ms(self, start: int = 0) -> float | None:
        """p99 schedule lag of its measured requests from the ``start``-th on, in ms."""
        lags = sorted(self.schedule_lag_s[start:])
        return percentile(lags, 99) * 1e3 if lags else None

    def health(self) -> WorkerHealth:
        """Its figures for ``summary.json`` (the latest share's when it never said bye)."""
        health = self.life or self.latest
        cpu = health.cpu_pct if health else None
        lag = health.lag_ms if health else (None, None, None)
        sched = self.schedule_lag_p99_ms()
        return WorkerHealth(
            worker=self.number,
            host=self.link.host,
            node=self.hello.node if self.hello else None,
            pid=self.link.pid,
            cpu_pct=cpu,
            loop_lag_p50_ms=lag[0],
            loop_lag_p99_ms=lag[1],
            loop_lag_max_ms=lag[2],
            schedule_lag_p99_ms=sched,
            requests=self.records,
            clock_offset_ns=self.offset_ns,
            clock_error_ns=self.error_ns,
            saturated=is_saturated(cpu, lag[1], sched),
            lost=self.lost,
        )
