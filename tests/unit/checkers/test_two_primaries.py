"""While a split brain or a manual promotion lasts, two primaries take writes: tasks enqueued then are left
out of the priority and order checks (counted), and the same anomalies outside such a window are caught."""

from __future__ import annotations

import pytest

from harness.checkers.order import check_order
from harness.checkers.priority import check_priority
from tests.unit.checkers.builder import HistoryBuilder, judge


def inverted(kind: str | None) -> HistoryBuilder:
    """ "high" enqueued (on the other primary) and left waiting while "low" is served; then both in order."""
    h = HistoryBuilder()
    if kind is not None:
        h.invoke("nemesis-0", "fault", {"kind": kind, "target": "redis", "held": [], "persistence": "replicated"})
    h.enqueue("p0", ["high"], prio=0)
    h.enqueue("p1", ["low"], prio=3)
    h.enqueue("p1", ["later"], prio=0)
    h.advance(ms=50)
    h.deliver("c0", [("low", 3, 0, 1)])
    h.advance(ms=10)
    h.deliver("c0", [("later", 0, 0, 1)])
    h.advance(ms=10)
    if kind is not None:
        h.respond("nemesis-0", "fault", value={})
    h.deliver("c1", [("high", 0, 0, 1)])
    h.final()
    return h


@pytest.mark.parametrize("kind", ["split-brain", "promote-lagging"])
def test_two_primaries_leave_their_tasks_out_of_priority_and_fifo(kind: str) -> None:
    priority, order = judge(check_priority, inverted(kind)), judge(check_order, inverted(kind))
    assert (priority.valid, priority.figures["inversions"], priority.figures["left_out_two_primaries"]) == (True, 0, 3)
    assert (order.valid, order.figures["violations"], order.figures["left_out_two_primaries"]) == (True, 0, 3)


@pytest.mark.parametrize("kind", [None, "failover"])
def test_the_same_history_on_one_primary_is_an_inversion_and_a_fifo_violation(kind: str | None) -> None:
    priority, order = judge(check_priority, inverted(kind)), judge(check_order, inverted(kind))
    assert (priority.valid, priority.figures["inversions"]) == (False, 1)
    assert "left_out_two_primaries" not in priority.figures
    assert (order.valid, order.figures["violations"]) == (False, 1)
