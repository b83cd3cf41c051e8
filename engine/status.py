"""How a run and each of its profiles ended: the closed sets ``summary.json`` and ``run.json`` use.

Both are ``StrEnum``s, so a member is its string: it is written to JSON as that string, it
equals that string, and it hashes like it, so readers that compare with ``"completed"`` (or look
it up in a dict keyed by strings) keep working. Folders written before these types existed
hold the same strings and load unchanged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class RunStatus(StrEnum):
    """Where a run stands, as ``run.json``, ``summary.json`` and a run read back say it."""

    RUNNING = "running"
    """Still going: what ``run.json`` and the interim ``summary.json`` say until the end."""
    COMPLETED = "completed"
    """Neither interrupted nor failed: the queue ran out, or a person ended the run."""
    INTERRUPTED = "interrupted"
    """Stopped by Ctrl+C or a signal; in-flight requests were recorded as cancelled."""
    FAILED = "failed"
    """Ended by a failure: the server died or stopped answering, every request of a profile
    failed, the results folder could not be written, or the engine raised."""
    INCOMPLETE = "incomplete"
    """A folder read back without a final ``summary.json``: killed, or still running."""


FinalRunStatus = Literal[RunStatus.COMPLETED, RunStatus.INTERRUPTED, RunStatus.FAILED]
"""What a final ``summary.json`` can say: how the run ended."""
FINAL_RUN_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.INTERRUPTED, RunStatus.FAILED}
)
"""The members of ``FinalRunStatus``, for checks at run time."""


class ProfileStatus(StrEnum):
    """How one profile (scenario) of a run ended, as its ``ProfileSummary`` says."""

    COMPLETED = "completed"
    """Ran to its own stop rule (request count or duration)."""
    STOPPED = "stopped"
    """Sending stopped early (next, switch, end of the run); finished requests count."""
    INTERRUPTED = "interrupted"
    """The run was interrupted (Ctrl+C, a signal) while this profile ran."""
    FAILED = "failed"
    """Every measured request failed, or the run failed (the server died or stopped
    answering, the results folder could not be written, the engine raised) while it ran."""
    INCOMPLETE = "incomplete"
    """Rebuilt from ``requests.jsonl`` of a run that has no final summary (killed)."""
