"""The schedule split between workers (engine/workload/split.py): the shares together are
exactly the profile, whatever the numbers."""

from __future__ import annotations

import itertools

import pytest

from engine.workload.arrivals import arrivals
from engine.workload.split import Slots, auto_workers, split, useful_workers, whole
from tests.support.builders import make_profile


def _indices(share, count: int) -> list[int]:
    return [share.global_index(k) for k in range(count)]


def test_closed_loop_deals_streams_and_requests_round_robin():
    shares = split(make_profile(concurrency=256, requests=1000), 8)
    assert [s.width for s in shares] == [32] * 8
    assert [s.requests for s in shares] == [125] * 8
    uneven = split(make_profile(concurrency=10, requests=100), 4)
    assert [s.width for s in uneven] == [3, 3, 2, 2]
    # Requests follow the streams, so a worker with fewer streams is not left behind.
    assert [s.requests for s in uneven] == [30, 30, 20, 20]


@pytest.mark.parametrize(
    ("concurrency", "requests", "warmup", "workers"),
    [(256, 1000, 16, 8), (10, 97, 3, 4), (3, 7, 0, 2), (5, 2, 1, 8), (1, 5, 2, 3), (7, 1, 9, 3)],
)
def test_closed_loop_shares_are_a_partition(concurrency, requests, warmup, workers):
    p = make_profile(concurrency=concurrency, requests=requests, warmup_requests=warmup)
    shares = split(p, workers)
    assert len(shares) == useful_workers(p, workers) == min(workers, concurrency)
    assert sum(s.width for s in shares) == concurrency
    assert sum(s.requests for s in shares) == requests
    assert sum(s.warmup_requests for s in shares) == warmup
    taken = [i for s in shares for i in _indices(s, s.warmup_requests + s.requests)]
    assert sorted(taken) == list(range(warmup + requests))  # each request once, none extra
    for s in shares:  # warm-up first, then measured, as in one process
        assert all(i < warmup for i in _indices(s, s.warmup_requests))


def test_open_loop_union_is_the_one_schedule():
    p = make_profile(rate_rps=400, arrival="poisson", requests=None, duration_s=5, seed=11)
    shares = split(p, 8)
    assert len(shares) == 8 and all(s.width == 0 for s in shares)
    n = 2000
    union = sorted(t for s in shares for t in itertools.islice(s.arrivals(p), n // 8))
    assert union == list(itertools.islice(arrivals(p), n))
    # Each worker's own stream runs at rate/8 = 50/s.
    own = list(itertools.islice(shares[3].arrivals(p), 250))
    assert 250 / own[-1] == pytest.approx(50, rel=0.15)
    # And its k-th arrival is request index 3 + 8k of the profile.
    assert _indices(shares[3], 3) == [3, 11, 19]


def test_open_loop_counts_and_caps_add_up():
    p = make_profile(rate_rps=10, requests=23, max_in_flight=10, warmup_requests=5)
    shares = split(p, 4)
    assert sum(s.requests for s in shares) == 23
    assert sum(s.max_in_flight for s in shares) == 10
    assert sum(s.warmup_requests for s in shares) == 5
    taken = [i for s in shares for i in _indices(s, s.warmup_requests + s.requests)]
    assert sorted(taken) == list(range(28))


def test_duration_only_share_is_unbounded_and_small_share_can_be_zero():
    assert all(
        s.requests is None
        for s in split(make_profile(concurrency=4, requests=None, duration_s=3), 2)
    )
    # 2 requests over 4 streams: two workers send none (0, not "no limit").
    assert [s.requests for s in split(make_profile(concurrency=4, requests=2), 4)] == [1, 1, 0, 0]


def test_whole_is_the_identity():
    p = make_profile(concurrency=3, requests=10, warmup_requests=2)
    share = whole(p)
    assert _indices(share, 12) == list(range(12))
    assert (share.width, share.requests, share.warmup_requests) == (3, 10, 2)
    assert share.warmup_width == 3  # as one process warms up: the concurrency


def test_slots_arithmetic():
    slots = Slots(10, (1, 5))
    assert [slots.index(k) for k in range(5)] == [1, 5, 11, 15, 21]
    assert slots.count_below(12) == 3 and slots.count_below(1) == 0


def test_auto_workers_sizes_by_load_and_cores():
    assert auto_workers([make_profile(concurrency=8)], cores=16) == 1
    assert auto_workers([make_profile(concurrency=256)], cores=16) == 4
    assert auto_workers([make_profile(concurrency=4096)], cores=16) == 15  # one core kept
    assert auto_workers([make_profile(rate_rps=1000)], cores=16) == 5
    assert auto_workers([make_profile(concurrency=256)], cores=2) == 1
