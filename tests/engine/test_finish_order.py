"""Records from several workers are released in the order the requests ended."""

from __future__ import annotations

import random
from array import array

from engine.run.workers.messages import Finished
from engine.run.workers.ordering import FinishOrder
from tests.support.tui_data import record


def _f(end_ns: int) -> Finished:
    made = record(1, "p", rng=random.Random(0))
    return Finished(made.model_copy(update={"end_ns": end_ns}), array("d"))


def _ends(items) -> list[int]:
    return [f.record.end_ns for f in items]


def test_held_until_every_worker_flushed_past():
    order = FinishOrder([0, 1])
    order.add(_f(30))
    order.add(_f(10))
    assert order.advance(0, 40) == []  # worker 1 may still send something that ended before
    order.add(_f(20))  # worker 1's record, ended between the two
    assert _ends(order.advance(1, 25)) == [10, 20]
    assert _ends(order.advance(1, 50)) == [30]


def test_a_retired_worker_holds_nothing_back_and_drain_empties():
    order = FinishOrder([0, 1])
    order.add(_f(5))
    assert order.advance(0, 10) == []
    assert _ends(order.retire(1)) == [5]
    order.add(_f(100))
    assert _ends(order.drain()) == [100]
