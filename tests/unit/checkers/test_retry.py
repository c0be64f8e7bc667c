"""check_retry: attempts rise by one, never reset, and the task keeps its id."""

from __future__ import annotations

from harness.checkers.retry import check_retry
from tests.unit.checkers.builder import HistoryBuilder, judge


def test_retry_then_success_passes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)])
    h.deliver("c1", [("t1", 2, 1, 1)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_retry, h)
    assert result.valid is True
    assert result.figures["retries_observed"] == 1


def test_reclaim_of_the_same_attempt_is_no_reset() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 1, 1)])
    h.deliver("c1", [("t1", 2, 1, 2)])
    h.final()
    result = judge(check_retry, h)
    assert result.figures["resets"] == 0
    assert result.figures["attempts_without_failure"] == 1  # attempt 1 with no fail of attempt 0


def test_reset_after_a_retried_fail_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)])
    h.deliver("c1", [("t1", 2, 0, 1)])  # the seed's bug: the retry was re-added with retry_count=0
    h.final()
    result = judge(check_retry, h)
    assert result.valid is False
    assert result.figures["resets"] == 1
    assert result.anomalies[0]["expected_at_least"] == 1


def test_going_back_after_a_higher_attempt_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "info")
    h.deliver("c0", [("t1", 2, 1, 1)])
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.final()
    assert judge(check_retry, h).figures["resets"] == 1


def test_reset_after_a_redis_fault_is_counted_apart() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)])
    h.fault("redis-restart", "redis")
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.final()
    result = judge(check_retry, h)
    assert result.valid is True
    assert result.figures["resets_after_redis_fault"] == 1


def test_attempt_without_failure_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)])
    h.deliver("c0", [("t1", 2, 2, 1)])  # skipped attempt 1
    h.final()
    result = judge(check_retry, h)
    assert result.valid is False
    assert result.figures["attempts_without_failure"] == 1
    assert result.anomalies[0]["attempt"] == 2


def test_id_change_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)])
    h.deliver("c0", [("t1-retry", 2, 1, 1, "t1")])
    h.complete("c0", ["t1-retry"])
    h.final()
    result = judge(check_retry, h)
    assert result.valid is False
    assert result.figures["id_changes"] == 1
    assert result.anomalies[0]["delivered_as"] == ["t1-retry"]
