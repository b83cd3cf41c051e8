"""Request ids: ``req_000001``, unique within a run, across its profiles and its workers."""

from __future__ import annotations


class RequestIds:
    """The run's request counter. In one process each request takes the next number; worker
    processes number their requests from a base the parent gives each profile
    (``engine.run.workers``), and the parent moves the counter past what they used.
    """

    def __init__(self) -> None:
        self.next_number = 1
        """The number the next request takes."""

    def __iter__(self) -> RequestIds:
        return self

    def __next__(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    def skip_past(self, number: int) -> None:
        """Numbers up to ``number`` are taken (by workers): continue after it."""
        self.next_number = max(self.next_number, number + 1)


def request_id(number: int) -> str:
    """The id of request ``number``: ``req_000042``."""
    return f"req_{number:06d}"
