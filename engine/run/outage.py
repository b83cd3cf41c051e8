"""Telling a dead server from a failed request: consecutive connection failures, then a probe.

The rule (README "When the server dies"): ``FAILURES_IN_A_ROW`` requests in a row that could not
connect or lost their connection, with no request in between that the server answered, mean the
server may be gone. The run then stops sending and probes the server (a TCP connect and
``GET /v1/models``) every ``PROBE_INTERVAL_S`` for up to ``grace_s`` seconds:

* it answers (any HTTP status below 500): sending resumes and the gap is recorded as an
  ``Outage`` (engine/metrics/failures.py) in the summary;
* it does not: the run fails with "server at URL stopped answering at 12.3 s: connection
  refused", keeping every record written so far.

Without the rule, a killed server turns the rest of a profile into thousands of instant
``connect`` failures and a run that ends "completed".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from engine.events import EventBus, NoticeRaised
from engine.metrics.failures import Outage
from engine.records import ErrorKind, RequestRecord
from engine.stats import NS

FAILURES_IN_A_ROW = 5
"""Connection failures in a row (no answered request between them) that start a probe."""
PROBE_INTERVAL_S = 0.5
"""Time between probes while the server is not answering."""
PROBE_TIMEOUT_S = 2.0
"""How long one probe waits for the connection and the answer."""
DEFAULT_GRACE_S = 15.0
"""How long the server may stay silent before the run fails (``RunConfig.outage_grace_s``,
``--outage-grace``)."""
CONNECTION_FAILURES = (ErrorKind.CONNECT, ErrorKind.STREAM_BROKEN)
"""Failures that say the connection, not the request, went wrong."""


class FailureStreak:
    """Counts connection failures in a row; any answered request resets the count."""

    def __init__(self, threshold: int = FAILURES_IN_A_ROW) -> None:
        self.threshold = threshold
        self.count = 0

    def add(self, record: RequestRecord) -> bool:
        """Count a finished request; True the moment the streak reaches the threshold."""
        if record.error_kind in CONNECTION_FAILURES:
            self.count += 1
            return self.count == self.threshold
        if record.ok or record.http_status is not None:
            self.count = 0
        return False

    def reset(self) -> None:
        """Start counting again (after a probe found the server answering)."""
        self.count = 0


@dataclass(frozen=True)
class ProbeResult:
    """One probe of the server."""

    answered: bool
    reason: str
    """Why it did not answer (empty when it did)."""


async def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Connect to the server and ask for ``/v1/models``, to see whether anything answers.

    A plain socket and HTTP/1.0, not the run's client: its pool may hold the dead
    connections, and the probe must not count as a request.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = parts.path.rstrip("/")
    path = (path if path.endswith("/v1") else path + "/v1") + "/models"
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls or None)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return ProbeResult(False, f"no answer in {timeout_s:g} s")
    except ConnectionRefusedError:
        return ProbeResult(False, "connection refused")
    except OSError as exc:
        return ProbeResult(False, exc.strerror or str(exc) or type(exc).__name__)
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        return ProbeResult(False, "connection closed without an HTTP answer")
    status = int(fields[1])
    if status >= 500:
        return ProbeResult(False, f"HTTP {status}")
    return ProbeResult(True, "")


async def wait_for_server(
    url: str, grace_s: float, interval_s: float = PROBE_INTERVAL_S
) -> tuple[bool, str]:
    """Probe until the server answers or ``grace_s`` passes.

    Returns ``(answered, reason)``: ``reason`` is what the first probe that failed got
    (empty when the very first probe was answered).
    """
    deadline = time.monotonic() + grace_s
    reason = ""
    while True:
        result = await probe(url, min(PROBE_TIMEOUT_S, max(0.1, grace_s)))
        if result.answered:
            return True, reason
        reason = reason or result.reason
        left = deadline - time.monotonic()
        if left <= 0:
            return False, reason
        await asyncio.sleep(min(interval_s, left))


class Sending(Protocol):
    """What the watch holds: the profile being sent (``ProfileRun``)."""

    def pause_sending(self, reason: str = "user") -> None:
        """Send nothing new until ``resume_sending(reason)``."""

    def resume_sending(self, reason: str = "user") -> None:
        """End the hold ``reason`` started."""


class ServerWatch:
    """Feeds finished requests to a ``FailureStreak``; when it trips, holds sending and probes.

    Sending is held on whatever ``sending()`` returns then and when the hold ends (the profile
    may change in between); ``fail`` ends the run with the reason. Each step is announced on
    the bus as a notice. Outages the server recovered from, and the one it did not, are kept
    in ``outages``.
    """

    def __init__(
        self,
        url: str,
        origin_ns: int,
        bus: EventBus,
        *,
        sending: Callable[[], Sending | None],
        fail: Callable[[str], None],
        grace_s: float = DEFAULT_GRACE_S,
        threshold: int = FAILURES_IN_A_ROW,
    ) -> None:
        self.url = url
        self.origin_ns = origin_ns
        """The run's clock origin (``perf_counter_ns``): outages are in seconds from it."""
        self.bus = bus
        self.grace_s = grace_s
        self.streak = FailureStreak(threshold)
        self.outages: list[Outage] = []
        self._sending, self._fail = sending, fail
        self._first_failure_s: float | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def probing(self) -> bool:
        """True while sending is held for a probe."""
        return self._probe is not None and not self._probe.done()

    def observe(self, record: RequestRecord) -> None:
        """Count a finished request (warm-up included); may start a probe."""
        if self.probing:
            return
        if self.streak.count == 0:
            self._first_failure_s = record.end_ns / NS
        if self.streak.add(record):
            self._hold()
            self._probe = asyncio.get_running_loop().create_task(self._wait(self.streak.count))

    def _hold(self) -> None:
        self.bus.publish(
            NoticeRaised(
                "warning",
                f"{self.streak.count} requests in a row could not reach {self.url}: sending "
                f"held while llmtop probes it (up to {self.grace_s:g} s)",
            )
        )
        sending = self._sending()
        if sending is not None:
            sending.pause_sending("outage")

    def _release(self) -> None:
        outage = self.outages[-1]
        self.bus.publish(
            NoticeRaised(
                "warning",
                f"{self.url} answers again after {outage.gap_s or 0:.1f} s "
                f"({outage.reason}): sending resumed; the gap is in the summary",
            )
        )
        sending = self._sending()
        if sending is not None:
            sending.resume_sending("outage")

    async def _wait(self, failures: int) -> None:
        started_s = self._first_failure_s or 0.0
        answered, reason = await wait_for_server(self.url, self.grace_s)
        if answered:
            self.outages.append(
                Outage(
                    started_s=started_s,
                    ended_s=self._now_s(),
                    reason=reason or "connections failed",
                    failures=failures,
                )
            )
            self.streak.reset()
            self._release()
            return
        self.outages.append(
            Outage(started_s=started_s, ended_s=None, reason=reason, failures=failures)
        )
        self._fail(f"server at {self.url} stopped answering at {started_s:.1f} s: {reason}")

    def _now_s(self) -> float:
        return (time.perf_counter_ns() - self.origin_ns) / NS

    async def aclose(self) -> None:
        """Stop a probe still running (the run is ending for another reason)."""
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
