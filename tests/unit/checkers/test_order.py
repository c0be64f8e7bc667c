"""check_order: FIFO within one priority."""

from __future__ import annotations

from harness.checkers import Expectations
from harness.checkers.order import check_order
from tests.unit.checkers.builder import HistoryBuilder, judge


def test_fifo_passes() -> None:
    h = HistoryBuilder()
    for tid in ("a", "b", "c"):
        h.enqueue("p0", [tid], prio=1)
    h.deliver("c0", [("a", 1, 0, 1)])
    h.deliver("c0", [("b", 1, 0, 1), ("c", 1, 0, 1)])
    h.final()
    result = judge(check_order, h)
    assert result.valid is True
    assert result.figures["pairs_checked"] == 3
    assert result.figures["violations"] == 0


def test_overtaking_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c1", [("a", 1, 0, 1)])
    h.final()
    result = judge(check_order, h)
    assert result.valid is False
    assert result.figures["violations"] == 1
    assert result.anomalies[0]["overtaken"] == "a"
    assert result.anomalies[0]["overtaker"] == "b"


def test_concurrent_enqueues_have_no_order() -> None:
    h = HistoryBuilder()
    h.invoke("p0", "enqueue", {"tasks": [["a", 1, 3]], "due_ns": 0})
    h.invoke("p1", "enqueue", {"tasks": [["b", 1, 3]], "due_ns": 0})
    h.respond("p0", "enqueue")
    h.respond("p1", "enqueue")
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c0", [("a", 1, 0, 1)])
    h.final()
    assert judge(check_order, h).valid is True


def test_priorities_are_ordered_apart() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=2)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c0", [("a", 2, 0, 1)])
    h.final()
    assert judge(check_order, h).valid is True


def test_overlapping_reads_prove_nothing() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver_invoke("c0")
    h.deliver_invoke("c1")
    h.deliver_ok("c1", [("b", 1, 0, 1)])
    h.deliver_ok("c0", [("a", 1, 0, 1)])
    h.final()
    assert judge(check_order, h).valid is True


def test_redeliveries_are_not_ordered() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c1", [("a", 1, 0, 2)])  # a's first delivery was never seen
    h.final()
    assert judge(check_order, h).valid is True


def test_not_checked_when_the_scenario_does_not_promise_fifo() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=1)
    h.enqueue("p0", ["b"], prio=1)
    h.deliver("c0", [("b", 1, 0, 1)])
    h.deliver("c1", [("a", 1, 0, 1)])
    result = judge(check_order, h, expect=Expectations(check_fifo=False))
    assert result.valid is True
    assert "not checked" in result.note
