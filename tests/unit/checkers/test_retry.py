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


# -- delivery counts ------------------------------------------------------------------------------


def test_a_redelivery_with_a_higher_count_passes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#1", [("t1", 2, 0, 1)])
    h.kill("c0", held=["t1"])
    h.deliver("c1#1", [("t1", 2, 0, 2)])
    h.complete("c1#1", ["t1"])
    h.final()
    result = judge(check_retry, h)
    assert result.valid is True
    assert result.figures["delivery_count_resets"] == 0


def test_a_redelivery_whose_count_started_over_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#1", [("t1", 2, 0, 1)])
    h.kill("c0", held=["t1"])
    h.deliver("c1#1", [("t1", 2, 0, 1)])  # put back on the queue as a new message: the count restarts
    h.complete("c1#1", ["t1"])
    h.final()
    result = judge(check_retry, h)
    assert result.valid is False
    assert result.figures["delivery_count_resets"] == 1
    example = result.anomalies[0]
    assert example["kind"] == "delivery_count_reset"
    assert (example["count"], example["earlier_count"], example["earlier_holder"]) == (1, 1, "c0#1")


def test_a_count_that_stood_still_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#1", [("t1", 2, 0, 1)])
    h.deliver("c1#1", [("t1", 2, 0, 2)])
    h.deliver("c2#1", [("t1", 2, 0, 2)])
    h.final()
    assert judge(check_retry, h).figures["delivery_count_resets"] == 1


def test_a_new_attempt_starts_its_own_count() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#1", [("t1", 2, 0, 2)])
    h.fail("c0#1", [("t1", 0)])
    h.deliver("c1#1", [("t1", 2, 1, 1)])
    h.complete("c1#1", ["t1"])
    h.final()
    assert judge(check_retry, h).figures["delivery_count_resets"] == 0


def test_a_second_copy_after_the_first_was_acked_is_not_a_count_reset() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#1", [("t1", 2, 0, 1)])
    h.complete("c0#1", ["t1"])
    h.deliver("c1#1", [("t1", 2, 0, 1)])  # stored twice: the delivery checker's business, not this one's
    h.final()
    assert judge(check_retry, h).figures["delivery_count_resets"] == 0


def test_tasks_handed_back_on_sigterm_and_redis_rollbacks_are_not_count_resets() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"])
    h.deliver("c0#1", [("t1", 2, 0, 1)])
    h.fault("term", "c0", held=["t1"])  # released as a new entry: a graceful stop is no crash
    h.deliver("c1#1", [("t1", 2, 0, 1), ("t2", 2, 0, 1)])
    h.fault("redis-kill", "redis", ends=False)
    h.end_fault()
    h.deliver("c2#1", [("t2", 2, 0, 1)])  # Redis restarted from an older state
    h.final()
    assert judge(check_retry, h).figures["delivery_count_resets"] == 0


def test_queues_that_do_not_count_deliveries_are_not_judged_on_counts() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#1", [("t1", 2, 0, 0)])
    h.deliver("c1#1", [("t1", 2, 0, 0)])
    h.final()
    assert judge(check_retry, h).figures["delivery_count_resets"] == 0


def _started_again_as_new(*, stopped: bool) -> HistoryBuilder:
    """taskq-worker under sigterm_workers: c1's worker started t1, was told to stop (after the strike, so t1
    is not among the held it journaled), gave t1 up at its shutdown timeout and re-added it as a new
    entry; c2 started it with a delivery count of 1 again."""
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.start("c1#2.10.3", "t1")
    if stopped:
        h.fault("term", "c1#2", held=[], ends=False)
        h.advance(ms=600)
        h.end_fault(restarted="c1#3")
    h.advance(ms=100)
    h.start("c2#1.20.9", "t1")
    h.finish("c2#1.20.9", "t1")
    h.final()
    return h


def test_a_hosted_task_handed_back_by_a_stopping_worker_may_start_over_at_count_one() -> None:
    result = judge(check_retry, _started_again_as_new(stopped=True), hosted=True)
    assert (result.valid, result.figures["delivery_count_resets"]) == (True, 0)


def test_a_hosted_count_that_starts_over_with_no_stop_is_a_reset() -> None:
    result = judge(check_retry, _started_again_as_new(stopped=False), hosted=True)
    assert (result.valid, result.figures["delivery_count_resets"]) == (False, 1)
