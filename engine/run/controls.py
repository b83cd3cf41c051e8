"""The engine's interactive controls: the scenario queue and sending, changed while a run goes.

``Engine`` takes these from ``QueueControls``; the live screen calls them on the engine's loop
(through ``call_soon_threadsafe`` in the engine's process). Each publishes what changed
(``QueueChanged``, ``SendingPaused``) and wakes a run waiting between profiles.
"""

from __future__ import annotations

import asyncio
from time import perf_counter_ns

from engine.events import EventBus, QueueChanged, SendingPaused
from engine.run.senders import ProfileSender
from engine.workload.profile import Profile
from engine.workload.queue import EntryStatus, ScenarioQueue


class QueueControls:
    """Controls over the queue and the profile being sent; the state lives in ``Engine``."""

    queue: ScenarioQueue
    bus: EventBus
    _current: ProfileSender | None
    _origin_ns: int
    _paused: bool
    _ending: bool
    _queue_changed: asyncio.Event

    def stop_sending(self) -> None:
        """End the current profile early: no new requests, in-flight ones finish and count."""
        if self._current is not None:
            self._current.stop_sending()

    def next_profile(self) -> None:
        """Stop sending the current profile; the next queued one starts when it drains."""
        self.stop_sending()
        self._wake()

    def switch_to(self, entry_id: int) -> bool:
        """Run this entry now: it moves to the front (a finished one is queued again) and the
        current profile stops sending, its in-flight requests finishing and counting.
        """
        entry = self.queue.get(entry_id)
        if entry is None or entry.status is EntryStatus.RUNNING:
            return False
        self.queue.requeue(entry_id)
        self.next_profile()
        return True

    def add_profile(self, profile: Profile) -> None:
        """Queue a profile at the end."""
        self.queue.add(profile)
        self._wake()

    def remove_entry(self, entry_id: int) -> bool:
        """Drop a queued entry (one that ran or runs stays: it holds results)."""
        removed = self.queue.remove(entry_id)
        self._wake()
        return removed

    def rerun(self, entry_id: int) -> bool:
        """Queue an entry's profile again, next in line."""
        entry = self.queue.requeue(entry_id)
        self._wake()
        return entry is not None

    def set_paused(self, paused: bool) -> None:
        """Pause or resume sending; a pause carries over to the next profile."""
        if paused == self._paused:
            return
        self._paused = paused
        if self._current is not None:
            if paused:
                self._current.pause_sending()
            else:
                self._current.resume_sending()
        self.bus.publish(SendingPaused(paused, perf_counter_ns() - self._origin_ns))

    def end_run(self) -> None:
        """Finish the run: the current profile stops sending, in-flight requests finish and
        count, queued profiles are skipped, and the summary is written.
        """
        self._ending = True
        if self._paused:
            self.set_paused(False)
        self.stop_sending()
        self._wake()

    def _wake(self) -> None:
        """Publish the queue and wake a run waiting between profiles or for more of them."""
        self.bus.publish(QueueChanged(self.queue.entries))
        self._queue_changed.set()
