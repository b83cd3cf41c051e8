"""Records from several workers, released in the order the requests ended.

Each worker sends its records in batches, ~0.1 s apart and not in step with the others, so
the order batches arrive in is not the order requests ended. A worker's batch carries when
it was sent (``flushed_ns``, on the run's clock): every record it sends later ended after
that. So a record can be released once every worker still sending has flushed past its end:
a merge of the workers' streams whose delay is one batch interval.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from engine.run.workers.messages import Finished


class FinishOrder:
    """Holds records until no worker can still send one that ended earlier."""

    def __init__(self, workers: Iterable[int]) -> None:
        self._marks: dict[int, int] = {w: -1 for w in workers}
        """Per worker still sending: the run time of its latest batch."""
        self._heap: list[tuple[int, int, Finished]] = []
        self._seq = itertools.count()

    def add(self, finished: Finished) -> None:
        """Hold a record until it may go."""
        heapq.heappush(self._heap, (finished.record.end_ns, next(self._seq), finished))

    def advance(self, worker: int, flushed_ns: int) -> list[Finished]:
        """``worker`` flushed at ``flushed_ns``: the records that may go now, in end order."""
        if worker in self._marks:
            self._marks[worker] = max(self._marks[worker], flushed_ns)
        return self._release()

    def retire(self, worker: int) -> list[Finished]:
        """``worker`` sends no more (its share ended, or it died): it holds nothing back."""
        self._marks.pop(worker, None)
        return self._release()

    def drain(self) -> list[Finished]:
        """Everything still held, in end order."""
        self._marks.clear()
        return self._release()

    def _release(self) -> list[Finished]:
        mark = min(self._marks.values(), default=None)
        out = []
        while self._heap and (mark is None or self._heap[0][0] <= mark):
            out.append(heapq.heappop(self._heap)[2])
        return out
