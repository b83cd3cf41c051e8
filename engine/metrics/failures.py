"""Failures as a person reads them: a failed request's cause, a profile none of whose
requests succeeded, and the spans during which the server did not answer (``Outage``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from engine.records import RequestRecord

if TYPE_CHECKING:
    from engine.metrics.summary import ProfileSummary

FAILURE_TEXT_CHARS = 160
"""Longest server message kept in a failure's description."""


def describe_failure(record: RequestRecord) -> str:
    """A failed request's cause as a person reads it: ``HTTP 401 invalid api key``."""
    message = " ".join((record.error_message or "").split())[:FAILURE_TEXT_CHARS]
    if record.http_status is not None and record.http_status >= 300:
        head = f"HTTP {record.http_status}"
        message = message.removeprefix(f"{head}:").strip()  # the client's own prefix
    else:
        head = str(record.error_kind)
    if not message:
        return head
    return f"{head} {message}" if head.startswith("HTTP") else f"{head}: {message}"


def all_failed_line(summary: ProfileSummary) -> str | None:
    """``all 24 requests failed: HTTP 401 invalid api key`` when no measured request succeeded
    and at least one failed for a reason other than being cancelled; else ``None``.
    """
    if summary.successes or summary.top_failure is None:
        return None
    n = summary.requests
    if summary.top_failure_count == n:
        return f"all {n} requests failed: {summary.top_failure}"
    return f"all {n} requests failed; {summary.top_failure_count} of them: {summary.top_failure}"


class Outage(BaseModel):
    """A span during which the server did not answer and llmtop sent nothing."""

    model_config = ConfigDict(frozen=True)

    started_s: float
    """Run time (seconds from the run's clock origin) of the failure that started the probe."""
    ended_s: float | None
    """Run time the server answered again; ``None`` when it never did (the run failed)."""
    reason: str
    """What the probes got: ``connection refused``, ``HTTP 503``, ``no answer in 2 s``."""
    failures: int
    """Connection failures in a row that started the probe."""

    @property
    def gap_s(self) -> float | None:
        """Seconds without an answering server."""
        return None if self.ended_s is None else self.ended_s - self.started_s
