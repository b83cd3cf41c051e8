"""The scenario queue: which profiles a run has done, is running and will run next.

A headless run goes through its profiles in order. An interactive session changes the queue
while it runs: a person jumps to another scenario, adds one, removes a queued one, or runs one
again. Every change is published as a ``QueueChanged`` event holding an immutable view, so a UI
repaints from the event and never reads the engine's state across threads.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import assert_never

from engine.status import ProfileStatus
from engine.workload.profile import Profile


class EntryStatus(StrEnum):
    """Where a queued scenario stands."""

    QUEUED = "queued"
    """Waiting its turn."""
    RUNNING = "running"
    """Sending now (one entry at a time)."""
    DONE = "done"
    """Finished by its own stop rule (request count or duration)."""
    STOPPED = "stopped"
    """Ended early by a person (switch, next, stop); its finished requests are kept."""
    FAILED = "failed"
    """Ended by a failure (the server died, the engine raised)."""
    SKIPPED = "skipped"
    """Never ran: the run ended (stopped, interrupted or failed) before its turn, or an
    earlier step of its ladder found the server over-saturated."""


def final_status(profile_status: ProfileStatus) -> EntryStatus:
    """Entry status for each ``ProfileSummary.status``."""
    match profile_status:
        case ProfileStatus.COMPLETED | ProfileStatus.INCOMPLETE:
            return EntryStatus.DONE
        case ProfileStatus.STOPPED | ProfileStatus.INTERRUPTED:
            return EntryStatus.STOPPED
        case ProfileStatus.FAILED:
            return EntryStatus.FAILED
        case _:
            assert_never(profile_status)


RERUN_SUFFIX = re.compile(r"\.r\d+$")
"""How a re-run's name ends: ``short-qa.r2`` is the second run of ``short-qa``."""


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One scenario in the queue (immutable: changes replace the entry)."""

    entry_id: int
    """Stable identifier within the run; a UI selects entries by it."""
    profile: Profile
    status: EntryStatus = EntryStatus.QUEUED
    finished: int = 0
    """Measured requests finished so far (updated when the entry ends)."""
    failed: int = 0
    """Measured requests that failed."""

    @property
    def name(self) -> str:
        """The profile's name (re-runs get a ``.rN`` suffix so their records stay apart)."""
        return self.profile.name


class ScenarioQueue:
    """Ordered entries; the engine takes the first queued one each time a profile ends."""

    def __init__(self, profiles: list[Profile]) -> None:
        self._ids = itertools.count(1)
        self._entries: list[QueueEntry] = [QueueEntry(next(self._ids), p) for p in profiles]

    @property
    def entries(self) -> tuple[QueueEntry, ...]:
        """Every entry in order (done ones first, then the running one, then queued ones)."""
        return tuple(self._entries)

    def _index(self, entry_id: int) -> int | None:
        return next((i for i, e in enumerate(self._entries) if e.entry_id == entry_id), None)

    def get(self, entry_id: int) -> QueueEntry | None:
        """The entry with this id, if any."""
        index = self._index(entry_id)
        return None if index is None else self._entries[index]

    def running(self) -> QueueEntry | None:
        """The entry sending now, if any."""
        return next((e for e in self._entries if e.status is EntryStatus.RUNNING), None)

    def pending(self) -> list[QueueEntry]:
        """Queued entries, in the order they will run."""
        return [e for e in self._entries if e.status is EntryStatus.QUEUED]

    def start_next(self) -> QueueEntry | None:
        """Mark the first queued entry running and return it (``None`` when none is left)."""
        pending = self.pending()
        if not pending:
            return None
        return self._set(pending[0].entry_id, status=EntryStatus.RUNNING)

    def finish(
        self, entry_id: int, profile_status: ProfileStatus, finished: int, failed: int
    ) -> None:
        """Record how the running entry ended (``profile_status`` of its summary)."""
        self._set(
            entry_id,
            status=final_status(profile_status),
            finished=finished,
            failed=failed,
        )

    def skip(self, entry_id: int) -> bool:
        """Mark one queued entry skipped (it will not run); others are left as they are."""
        entry = self.get(entry_id)
        if entry is None or entry.status is not EntryStatus.QUEUED:
            return False
        self._set(entry_id, status=EntryStatus.SKIPPED)
        return True

    def skip_pending(self) -> None:
        """The run is ending: every queued entry is marked skipped."""
        for entry in self.pending():
            self._set(entry.entry_id, status=EntryStatus.SKIPPED)

    def add(self, profile: Profile, *, next_in_line: bool = False) -> QueueEntry:
        """Queue ``profile`` at the end, or right after the running entry."""
        entry = QueueEntry(next(self._ids), self._unique(profile))
        self._entries.insert(self._next_slot() if next_in_line else len(self._entries), entry)
        return entry

    def remove(self, entry_id: int) -> bool:
        """Drop a queued entry; entries that ran or are running stay (they hold results)."""
        index = self._index(entry_id)
        if index is None or self._entries[index].status is not EntryStatus.QUEUED:
            return False
        del self._entries[index]
        return True

    def move_next(self, entry_id: int) -> bool:
        """Move a queued entry to the front of the pending ones."""
        index = self._index(entry_id)
        if index is None or self._entries[index].status is not EntryStatus.QUEUED:
            return False
        entry = self._entries.pop(index)
        self._entries.insert(self._next_slot(), entry)
        return True

    def requeue(self, entry_id: int) -> QueueEntry | None:
        """Run an entry's profile again, next in line, under a ``.rN`` name if it ran before."""
        entry = self.get(entry_id)
        if entry is None:
            return None
        if entry.status is EntryStatus.QUEUED:
            self.move_next(entry_id)
            return entry
        return self.add(entry.profile, next_in_line=True)

    def _next_slot(self) -> int:
        """Index just after the last entry that is not queued (done or running)."""
        return max(
            (i + 1 for i, e in enumerate(self._entries) if e.status is not EntryStatus.QUEUED),
            default=0,
        )

    def _unique(self, profile: Profile) -> Profile:
        """Profile names identify records and summaries, so a repeat gets a ``.rN`` suffix."""
        taken = {e.profile.name for e in self._entries}
        if profile.name not in taken:
            return profile
        base = RERUN_SUFFIX.sub("", profile.name)
        number = next(n for n in itertools.count(2) if f"{base}.r{n}" not in taken)
        return profile.model_copy(update={"name": f"{base}.r{number}"})

    def _set(
        self,
        entry_id: int,
        *,
        status: EntryStatus,
        finished: int | None = None,
        failed: int | None = None,
    ) -> QueueEntry:
        index = self._index(entry_id)
        assert index is not None, f"no queue entry {entry_id}"
        entry = self._entries[index]
        self._entries[index] = replace(
            entry,
            status=status,
            finished=entry.finished if finished is None else finished,
            failed=entry.failed if failed is None else failed,
        )
        return self._entries[index]
