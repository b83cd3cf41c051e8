"""Sink adapters that keep slow consumers off the engine's event loop."""

from __future__ import annotations

import threading
from collections import deque

from engine.events import Event, EventSink, SnapshotTaken

MAX_PENDING_EVENTS = 10_000
"""Events a ``ThreadedSink`` holds for its consumer before it starts dropping."""


class ThreadedSink:
    """Delivers events to ``inner`` on a thread of its own, so a slow consumer (a terminal
    that scrolls slowly, a UI) cannot delay the engine: ``handle`` only appends to a deque.

    Snapshots coalesce (only the newest pending one is kept); when more than
    ``MAX_PENDING_EVENTS`` wait, the oldest are dropped and counted in ``dropped``. Records are
    never at risk: the results writer is a synchronous sink of its own.
    """

    def __init__(self, inner: EventSink, max_pending: int = MAX_PENDING_EVENTS) -> None:
        self.inner = inner
        self.dropped = 0
        self.errors: list[str] = []
        self._pending: deque[Event] = deque()
        self._max_pending = max_pending
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="llmtop-sink", daemon=True)
        self._thread.start()

    def handle(self, event: Event) -> None:
        """Queue ``event`` for the consumer thread; O(1), never blocks on the consumer."""
        with self._wake:
            if (
                isinstance(event, SnapshotTaken)
                and self._pending
                and isinstance(self._pending[-1], SnapshotTaken)
            ):
                self._pending[-1] = event
            else:
                if len(self._pending) >= self._max_pending:
                    self._pending.popleft()
                    self.dropped += 1
                self._pending.append(event)
            self._wake.notify()

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is pending, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout_s)

    def _drain(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                event = self._pending.popleft()
            try:
                self.inner.handle(event)
            except Exception as exc:  # noqa: BLE001 - a consumer must never kill its thread
                self.errors.append(f"{type(exc).__name__}: {exc}")
