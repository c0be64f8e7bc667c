"""check_stored_twice: one enqueue (or retry) stored as two entries, apart from redelivery."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.checkers.stored_twice import check_stored_twice
from tests.unit.checkers.builder import HistoryBuilder, judge


def test_a_redelivery_is_not_a_second_copy() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.kill("c0", held=["t1"])
    h.advance(s=2.5)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_stored_twice, h)
    assert result.valid is True
    assert result.figures["redelivered"] == 1
    assert result.figures["stored_twice"] == 0


def test_an_enqueue_stored_twice_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], outcome="info")  # answer lost; the client sent it again
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c0", ["t1"])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_stored_twice, h)
    assert result.valid is False
    assert result.figures["stored_twice"] == 1
    assert result.figures["extra_entries"] == 1
    assert result.figures["redelivered"] == 0
    assert result.anomalies[0]["by"] == ["c0", "c1"]


def test_a_retry_stored_twice_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c1", [("t1", 2, 1, 1)])
    h.deliver("c2", [("t1", 2, 1, 1)])
    h.final()
    result = judge(check_stored_twice, h)
    assert result.valid is False
    assert result.anomalies[0]["attempt"] == 1


def test_a_copy_after_a_redis_rollback_is_counted_apart() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fault("redis-kill", "redis")  # restarted from a snapshot taken before the read
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_stored_twice, h)
    assert result.valid is True
    assert result.figures["after_redis_fault"] == 1


def test_a_task_found_twice_in_the_final_state_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.final(ready=[("t1", 2)], dead=[("t1", "retries exhausted: boom", 3, 4)])
    result = judge(check_stored_twice, h)
    assert result.valid is False
    assert result.figures["in_final_state_twice"] == 1
    assert result.anomalies[0] == {"kind": "in_final_state_twice", "tid": "t1"}


def hosted_copy(h: HistoryBuilder, between: Callable[[HistoryBuilder], None]) -> None:
    """t1 started by a lane of worker c0, then afresh (a count of 1) by worker c1's."""
    h.enqueue("p0", ["t1"])
    h.deliver("c0#1.7.0", [("t1", 2, 0, 1)])
    between(h)
    h.deliver("c1#1.8.0", [("t1", 2, 0, 1)])
    h.complete("c1#1.8.0", ["t1"])
    h.final()


@pytest.mark.parametrize(
    "between",
    [
        lambda h: h.fail("c0#1.7.0", [("t1", 0)], "cancelled"),
        lambda h: h.fault("term", "c0#1"),
        lambda h: h.exit("c0#1", 0),
    ],
    ids=["run cancelled", "worker stopped", "worker exited"],
)
def test_a_hosted_worker_handing_a_task_back_is_no_second_copy(between: Callable[[HistoryBuilder], None]) -> None:
    h = HistoryBuilder()
    hosted_copy(h, between)
    result = judge(check_stored_twice, h, hosted=True)
    assert (result.valid, result.figures["handed_back"]) == (True, 1)
    assert judge(check_stored_twice, h).valid is False  # the harness's own consumers never hand back


def test_a_hosted_copy_with_nothing_handed_back_is_caught() -> None:
    h = HistoryBuilder()
    hosted_copy(h, lambda h: h.complete("c0#1.7.0", ["t1"]))
    assert judge(check_stored_twice, h, hosted=True).valid is False
