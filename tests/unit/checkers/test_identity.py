"""check_identity: a retry keeps the priority, budget and payload it was enqueued with; its error
history grows by one per failed attempt."""

from __future__ import annotations

from harness.checkers.identity import check_identity
from tests.unit.checkers.builder import HistoryBuilder, judge


def retried(h: HistoryBuilder, *, second: tuple[object, ...] = (), max_retries: int = 2) -> None:
    """t1 enqueued at NORMAL, failed once, run again: the second delivery is `second` when given."""
    h.enqueue("p0", ["t1"], prio=2, max_retries=max_retries)
    h.deliver("c0", [("t1", 2, 0, 1, "t1", max_retries, "aaaa0000", 0)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c1", [second or ("t1", 2, 1, 1, "t1", max_retries, "aaaa0000", 1)])
    h.complete("c1", ["t1"])
    h.final()


def test_a_retry_that_stays_the_same_task_passes() -> None:
    h = HistoryBuilder()
    retried(h)
    result = judge(check_identity, h)
    assert result.valid is True
    assert result.figures["retried_tasks"] == 1


def test_a_retry_at_a_lower_priority_is_caught() -> None:
    h = HistoryBuilder()
    retried(h, second=("t1", 3, 1, 1, "t1", 2, "aaaa0000", 1))
    result = judge(check_identity, h)
    assert result.valid is False
    assert result.figures["priority_changes"] == 1
    assert result.anomalies[0] | {"by": None} == {"kind": "priority_changed", "tid": "t1", "enqueued": 2,
                                                 "delivered": 3, "attempt": 1, "by": None}  # fmt: skip


def test_a_first_delivery_at_another_priority_is_caught_too() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], prio=0)
    h.deliver("c0", [("t1", 1, 0, 1)])  # an old history's record: priority alone is judged
    h.complete("c0", ["t1"])
    h.final()
    assert judge(check_identity, h).figures["priority_changes"] == 1


def test_a_retry_with_a_new_budget_is_caught() -> None:
    h = HistoryBuilder()
    retried(h, second=("t1", 2, 1, 1, "t1", 3, "aaaa0000", 1))
    result = judge(check_identity, h)
    assert result.valid is False
    assert result.anomalies[0]["kind"] == "budget_changed"


def test_a_retry_with_another_payload_is_caught() -> None:
    h = HistoryBuilder()
    retried(h, second=("t1", 2, 1, 1, "t1", 2, "bbbb1111", 1))
    result = judge(check_identity, h)
    assert result.valid is False
    assert result.anomalies[0] == {"kind": "payload_changed", "tid": "t1", "first": "aaaa0000", "later": "bbbb1111",
                                   "attempt": 1}  # fmt: skip


def test_a_retry_that_lost_its_error_history_is_caught() -> None:
    h = HistoryBuilder()
    retried(h, second=("t1", 2, 1, 1, "t1", 2, "aaaa0000", 0))
    result = judge(check_identity, h)
    assert result.valid is False
    assert result.figures["error_history_breaks"] == 1


def test_a_reclaim_keeps_the_error_count_of_its_attempt() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=2)
    h.deliver("c0", [("t1", 2, 0, 1, "t1", 2, "aaaa0000", 0)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c1", [("t1", 2, 1, 1, "t1", 2, "aaaa0000", 1)])
    h.kill("c1", held=["t1"])
    h.advance(s=2.5)
    h.deliver("c2", [("t1", 2, 1, 2, "t1", 2, "aaaa0000", 1)])
    h.complete("c2", ["t1"])
    h.final()
    assert judge(check_identity, h).valid is True


def test_a_queue_that_stores_no_errors_is_not_judged_on_them() -> None:
    h = HistoryBuilder()
    retried(h, second=("t1", 2, 1, 1, "t1", 2, "aaaa0000", None))
    assert judge(check_identity, h).valid is True
