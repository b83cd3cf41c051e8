"""When each open-loop request is due: the arrival schedule of a profile, as offsets in
seconds from the start of its measured phase. The engine sends by it (engine/run/) and
``--dry-run`` prints it; the same profile and seed give the same schedule.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from engine.workload.profile import Profile


def arrivals(profile: Profile) -> Iterator[float]:
    """Arrival offsets in seconds from the start of the measured phase."""
    rate = profile.rate_rps or 1.0
    if profile.arrival == "constant":
        for i in itertools.count():
            yield i / rate
    rng = random.Random(profile.seed)
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate)
