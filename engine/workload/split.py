"""A profile's schedule split between client processes, decided once, before anything is sent.

One client process (one Python event loop) tops out near one core (bench/RESULTS.md); past
that, ``--workers N`` runs N processes, each sending a ``Share`` of every profile, so that
the load they make together is the load the profile asks for:

* closed loop: the ``concurrency`` streams are dealt out round-robin (256 over 8 workers:
  32 each; 10 over 4: 3, 3, 2, 2), and so are the requests, in proportion to the streams;
* open loop: every worker computes the profile's one arrival schedule (same seed, same
  times) and takes every N-th arrival, starting at its own number: together they send
  exactly the schedule one process would, each at ``rate_rps / N``;
* warm-up: its streams and requests are dealt out the same way;
* a ``duration_s`` stop is every worker's (they start their measured phase together).

Request numbers (which seed each prompt) are the one process's: worker ``w``'s ``k``-th
request is a fixed request of the whole schedule (``Share.global_index``), so the union of
the shares is exactly the profile's requests, and no two workers send the same one.

The whole profile in one process is ``whole(profile)``: every index maps to itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from engine.workload.arrivals import arrivals
from engine.workload.profile import Profile


@dataclass(frozen=True, slots=True)
class Slots:
    """Which request indices of a phase a worker owns: index ``i`` goes to the stream
    ``i % period``, and the worker owns the streams in ``slots``.

    With ``period`` = the phase's stream count this deals requests in proportion to streams;
    the open loop uses ``period`` = the worker count and one slot each.
    """

    period: int
    slots: tuple[int, ...]

    def index(self, k: int) -> int:
        """The phase-wide index of this worker's ``k``-th request (0-based)."""
        per_round = len(self.slots)
        return (k // per_round) * self.period + self.slots[k % per_round]

    def count_below(self, n: int) -> int:
        """How many of the phase's first ``n`` indices this worker owns."""
        return sum(-(-(n - s) // self.period) for s in self.slots if s < n)


IDENTITY = Slots(1, (0,))
"""Every index to itself: the whole phase in one process."""


@dataclass(frozen=True, slots=True)
class Share:
    """One worker's part of a profile: what its ``ProfileRun`` sends instead of the whole.

    Request ``k`` of the worker (0-based, warm-up first, as in one process) is request
    ``global_index(k)`` of the profile: that index seeds its prompt and numbers its id.
    """

    worker: int
    """This worker's number, 0-based."""
    workers: int
    """Workers sharing the profile."""
    warmup_width: int
    """Warm-up streams this worker runs (closed loop, as one process warms up)."""
    warmup_requests: int
    """Warm-up requests this worker sends."""
    warmup_slots: Slots
    """Which warm-up requests of the profile are this worker's."""
    width: int
    """Closed loop: streams this worker keeps in flight (0 in open loop)."""
    requests: int | None
    """Measured requests this worker sends; ``None`` when only ``duration_s`` stops it."""
    slots: Slots
    """Which measured requests of the profile are this worker's."""
    profile_warmup: int
    """The profile's warm-up request count: measured indices of the profile start there."""
    max_in_flight: int
    """Open loop: this worker's part of the profile's ``max_in_flight``."""

    def global_index(self, k: int) -> int:
        """The profile-wide index of this worker's request ``k``."""
        if k < self.warmup_requests:
            return self.warmup_slots.index(k)
        return self.profile_warmup + self.slots.index(k - self.warmup_requests)

    def arrivals(self, profile: Profile) -> Iterator[float]:
        """Open loop: this worker's arrival offsets, every ``workers``-th of the profile's."""
        return itertools.islice(arrivals(profile), self.worker, None, self.workers)


def warmup_width(profile: Profile) -> int:
    """Streams the warm-up runs on: the concurrency, or about a second's arrivals."""
    if profile.concurrency is not None:
        return min(profile.concurrency, max(1, profile.warmup_requests))
    return min(profile.warmup_requests, max(1, round(profile.rate_rps or 1)))


def whole(profile: Profile) -> Share:
    """The whole profile as one process sends it."""
    return Share(
        worker=0,
        workers=1,
        warmup_width=profile.concurrency or warmup_width(profile),
        warmup_requests=profile.warmup_requests,
        warmup_slots=IDENTITY,
        width=profile.concurrency or 0,
        requests=profile.requests,
        slots=IDENTITY,
        profile_warmup=profile.warmup_requests,
        max_in_flight=profile.max_in_flight,
    )


def useful_workers(profile: Profile, workers: int) -> int:
    """How many of ``workers`` get a part: a closed loop has no more parts than streams."""
    if profile.concurrency is not None:
        return max(1, min(workers, profile.concurrency))
    return max(1, min(workers, profile.max_in_flight))


def split(profile: Profile, workers: int) -> list[Share]:
    """The profile dealt out to ``useful_workers(profile, workers)`` workers."""
    n = useful_workers(profile, workers)
    wu_width = warmup_width(profile)
    shares = []
    for w in range(n):
        wu_slots = Slots(wu_width, tuple(range(w, wu_width, n)))
        wu_requests = wu_slots.count_below(profile.warmup_requests) if wu_slots.slots else 0
        if profile.concurrency is not None:
            slots = Slots(profile.concurrency, tuple(range(w, profile.concurrency, n)))
            width = len(slots.slots)
        else:
            slots, width = Slots(n, (w,)), 0
        shares.append(
            Share(
                worker=w,
                workers=n,
                warmup_width=len(wu_slots.slots) if wu_requests else 0,
                warmup_requests=wu_requests,
                warmup_slots=wu_slots if wu_requests else IDENTITY,
                width=width,
                requests=slots.count_below(profile.requests) if profile.requests else None,
                slots=slots,
                profile_warmup=profile.warmup_requests,
                max_in_flight=profile.max_in_flight // n + (w < profile.max_in_flight % n),
            )
        )
    return shares


STREAMS_PER_WORKER = 64
"""Closed-loop streams one worker is given by ``--workers auto``: at 64 flat-out streams one
process keeps its loop lag near 13 ms on these cores (bench/RESULTS.md), and a real
server's streams cost it far less."""
RATE_PER_WORKER_RPS = 200.0
"""Open-loop arrivals per second one worker is given by ``--workers auto`` (a process
reaches ~1300 requests/s flat out; arrivals pay for prompt building and a connection)."""


def auto_workers(profiles: list[Profile], cores: int) -> int:
    """``--workers auto``: enough workers for the heaviest profile, at most one per core
    beyond the one the parent process (merging, writing, telemetry) keeps.
    """
    need = 1
    for p in profiles:
        if p.concurrency is not None:
            need = max(need, -(-p.concurrency // STREAMS_PER_WORKER))
        else:
            need = max(need, int(-(-(p.rate_rps or 1) // RATE_PER_WORKER_RPS)))
    return max(1, min(need, cores - 1))
