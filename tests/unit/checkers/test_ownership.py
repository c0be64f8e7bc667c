"""check_ownership: once a task moved on to another consumer, its earlier holder's ack or fail is refused."""

from __future__ import annotations

from harness.adapters.promises import Promises
from harness.checkers.ownership import check_ownership
from tests.unit.checkers.builder import HistoryBuilder, judge


def handed_over(h: HistoryBuilder) -> None:
    """t1 held by c0 (paused), then reclaimed by c1 once its lease ran out, and completed there."""
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.pause("c0", held=["t1"])
    h.advance(s=2.5)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.resume()


def test_a_late_ack_refused_is_valid() -> None:
    h = HistoryBuilder()
    handed_over(h)
    h.complete("c0", ["t1"], refused=["t1"])
    h.final()
    result = judge(check_ownership, h)
    assert result.valid is True
    assert result.figures["late_settlements"] == 1
    assert result.figures["refused"] == 1
    assert result.figures["accepted"] == 0


def test_a_late_ack_accepted_is_caught() -> None:
    h = HistoryBuilder()
    handed_over(h)
    h.complete("c0", ["t1"])  # the queue said done to the holder whose lease moved on
    h.final()
    result = judge(check_ownership, h)
    assert result.valid is False
    assert result.figures["accepted"] == 1
    example = result.anomalies[0]
    assert (example["kind"], example["by"], example["handed_to"]) == ("ack_accepted_after_handover", "c0", "c1")
    assert example["held"] == {"attempt": 0, "deliveries": 1}


def test_a_late_fail_accepted_is_caught_even_before_the_new_owner_settles() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.advance(s=2.5)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.fail("c0", [("t1", 0)], "retried")
    h.final()
    result = judge(check_ownership, h)
    assert result.valid is False
    assert result.anomalies[0]["kind"] == "fail_accepted_after_handover"


def test_a_settlement_before_the_handover_is_not_late() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c1", [("t1", 2, 1, 1)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_ownership, h)
    assert result.valid is True
    assert result.figures["late_settlements"] == 0


def test_an_unanswered_late_ack_proves_nothing() -> None:
    h = HistoryBuilder()
    handed_over(h)
    h.complete("c0", ["t1"], outcome="info")
    h.final()
    result = judge(check_ownership, h)
    assert result.valid is True
    assert result.figures["unknown"] == 1


def test_a_second_copy_does_not_make_the_first_holders_ack_late() -> None:
    # Stored twice: c1's copy is another entry (a count of 1 again), so c0 still owns its own.
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c0", ["t1"])
    h.complete("c1", ["t1"])
    h.final()
    assert judge(check_ownership, h).figures["late_settlements"] == 0


def test_an_accept_after_a_redis_rollback_is_counted_apart() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.advance(s=2.5)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.fault("redis-restart", "redis")  # Redis may have forgotten the handover
    h.complete("c0", ["t1"])
    h.final()
    result = judge(check_ownership, h)
    assert result.valid is True
    assert result.figures["accepted_after_redis_fault"] == 1


def test_a_queue_that_does_not_promise_it_is_not_judged() -> None:
    h = HistoryBuilder()
    handed_over(h)
    h.complete("c0", ["t1"])
    h.final()
    result = judge(check_ownership, h, promises=Promises(ownership_checked=False))
    assert result.valid is True
    assert result.figures["accepted"] == 1
    assert "does not promise" in result.note


def test_a_hosted_run_is_not_judged() -> None:
    h = HistoryBuilder()
    handed_over(h)
    h.complete("c0", ["t1"])  # a hosted finish: the handler returned, the library's ack is unseen
    h.final()
    result = judge(check_ownership, h, hosted=True)
    assert result.valid is True
    assert "hosted" in result.note


def test_a_copy_whose_first_read_was_unseen_is_not_a_handover() -> None:
    # Stored twice; the first copy's first read was lost with its reader, and it was reclaimed (count 2)
    # before c0 read the second copy (count 1): c0's ack settles its own copy.
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c2", [("t1", 2, 0, 2)])
    h.complete("c2", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.complete("c0", ["t1"])
    h.final()
    assert judge(check_ownership, h).figures["late_settlements"] == 0
