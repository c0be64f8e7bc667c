"""check_producer_order: a producer's later task of one priority is not handed out before its earlier
one; its losses placed as prefix, middle or postfix."""

from __future__ import annotations

from harness.adapters.promises import Promises
from harness.checkers.base import CheckContext, Expectations
from harness.checkers.index import HistoryIndex
from harness.checkers.order import check_order
from harness.checkers.producer_order import check_producer_order, parse_tid
from tests.unit.checkers.builder import MS, HistoryBuilder, judge, run_task


def test_producer_task_ids_are_parsed() -> None:
    assert parse_tid("p3-120") == ("3", 120)
    assert parse_tid("t9") is None
    assert parse_tid("p3-x") is None


def test_one_call_delivered_in_order_passes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0", "p0-1", "p0-2"])
    h.deliver("c0", [("p0-0", 2, 0, 1)])
    h.deliver("c1", [("p0-1", 2, 0, 1), ("p0-2", 2, 0, 1)])
    h.final()
    result = judge(check_producer_order, h)
    assert result.valid is True
    assert result.figures["producers"] == 1


def test_a_later_task_of_the_same_call_handed_out_first_is_caught() -> None:
    # Not something the global order checker can see: neither enqueue was acknowledged before the other.
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0", "p0-1"])
    h.deliver("c1", [("p0-1", 2, 0, 1)])
    h.deliver("c0", [("p0-0", 2, 0, 1)])
    h.final()
    result = judge(check_producer_order, h)
    assert result.valid is False
    assert result.anomalies[0]["overtaker"] == "p0-1"


def test_a_read_that_lists_a_later_task_first_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0", "p0-1"])
    h.deliver("c0", [("p0-1", 2, 0, 1), ("p0-0", 2, 0, 1)])
    h.final()
    result = judge(check_producer_order, h)
    assert result.valid is False
    example = result.anomalies[0]
    assert (example["kind"], example["handed_first"], example["then"]) == ("out_of_order_in_one_read", "p0-1", "p0-0")


def test_across_reads_acknowledged_pairs_are_the_order_checkers() -> None:
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0"])
    h.enqueue("p0.1", ["p0-1"])
    h.deliver("c1", [("p0-1", 2, 0, 1)])
    h.deliver("c0", [("p0-0", 2, 0, 1)])
    h.final()
    assert judge(check_producer_order, h).valid is True
    assert judge(check_order, h).figures["violations"] == 1  # counted once, where every producer is compared


def test_inside_one_read_acknowledged_pairs_are_judged_here() -> None:
    # The order checker cannot see it: one read's start is not after its own end.
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0"])
    h.enqueue("p0.1", ["p0-1"])
    h.deliver("c0", [("p0-1", 2, 0, 1), ("p0-0", 2, 0, 1)])
    h.final()
    assert judge(check_producer_order, h).figures["violations"] == 1
    assert judge(check_order, h).valid is True


def test_a_task_whose_enqueue_was_answered_after_its_read_raises_no_false_alarm() -> None:
    # p0-1 is indexed after p0-0's later read: its place in its own read is not taken from that order.
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0"])
    h.invoke("p0.1", "enqueue", {"tasks": [["p0-1", 2, 3]], "due_ns": 0})
    h.deliver("c0", [("p0-0", 2, 0, 1), ("p0-1", 2, 0, 1)])
    h.respond("p0.1", "enqueue")  # answered after the read: p0-1 is matched late
    h.enqueue("p0.0", ["p0-2"])
    h.deliver("c0", [("p0-2", 2, 0, 1)])
    h.final()
    assert judge(check_producer_order, h).valid is True


def test_concurrent_calls_may_land_in_either_order() -> None:
    h = HistoryBuilder()
    h.invoke("p0.0", "enqueue", {"tasks": [["p0-0", 2, 3]], "due_ns": 0})
    h.invoke("p0.1", "enqueue", {"tasks": [["p0-1", 2, 3]], "due_ns": 0})
    h.respond("p0.1", "enqueue")
    h.respond("p0.0", "enqueue")
    h.deliver("c0", [("p0-1", 2, 0, 1), ("p0-0", 2, 0, 1)])
    h.final()
    assert judge(check_producer_order, h).valid is True


def test_other_priorities_and_producers_are_not_ordered() -> None:
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0"], prio=3)
    h.enqueue("p1.0", ["p1-0"], prio=2)
    h.enqueue("p0.0", ["p0-1"], prio=2)
    h.deliver("c0", [("p0-1", 2, 0, 1), ("p1-0", 2, 0, 1)])
    h.deliver("c0", [("p0-0", 3, 0, 1)])
    h.final()
    assert judge(check_producer_order, h).valid is True


def test_order_is_not_judged_without_a_fifo_promise() -> None:
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0", "p0-1"])
    h.deliver("c0", [("p0-1", 2, 0, 1), ("p0-0", 2, 0, 1)])
    h.final()
    assert judge(check_producer_order, h, promises=Promises(fifo=False)).valid is True
    assert judge(check_producer_order, h, expect=Expectations(check_fifo=False)).valid is True


def test_losses_are_placed_in_each_producers_sequence() -> None:
    h = HistoryBuilder()
    for n in range(8):
        h.enqueue("p0.0", [f"p0-{n}"])
    for n in (2, 3, 5):
        run_task(h, f"p0-{n}", producer="p1.0")  # enqueued again by run_task: the same task, still one
    h.enqueue("p1.0", ["p1-0"])
    h.final(ready=[("p0-7", 2)])  # still queued: a leak, not a loss
    result = judge(check_producer_order, h)
    figures = result.figures
    assert (figures["lost_prefix"], figures["lost_middle"], figures["lost_postfix"]) == (2, 1, 2)
    assert figures["losses_by_producer"] == {"0": {"prefix": 2, "middle": 1, "postfix": 1}, "1": {"postfix": 1}}
    assert result.valid is True  # losses are the delivery checker's to judge
    middle = next(a for a in result.anomalies if a["kind"] == "lost_middle")
    assert middle["tids"] == ["p0-4"]


def test_two_workers_starting_in_the_same_nanosecond_are_two_reads() -> None:
    # Seen in a soak (latency_spikes on taskq-worker): two worker processes journaled their starts with the
    # same CLOCK_MONOTONIC stamp, and the pair was judged as one read that listed p0-1 before p0-0.
    h = HistoryBuilder()
    h.enqueue("p0.0", ["p0-0", "p0-1"])
    h.advance(s=1)
    h.start("c1.1.0", "p0-1")
    h.start("c0.1.0", "p0-0")
    h.ops[-1]["time_ns"] = h.ops[-2]["time_ns"] = h.ops[-3]["time_ns"]
    index = HistoryIndex.build(h.history(), read_window_ns=250 * MS)
    assert check_producer_order(index, CheckContext()).valid is True
    h.ops[-2]["process"] = h.ops[-1]["process"] = "c1.1.0"  # the same worker: one read, out of order
    index = HistoryIndex.build(h.history(), read_window_ns=250 * MS)
    assert check_producer_order(index, CheckContext()).valid is False
