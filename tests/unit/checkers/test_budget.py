"""check_budget: at most max_retries + 1 failed attempts before the DLQ, at most delivery_cap
deliveries of one attempt."""

from __future__ import annotations

from harness.adapters.promises import Promises
from harness.checkers.budget import check_budget
from tests.unit.checkers.builder import HistoryBuilder, judge


def out_of_retries(h: HistoryBuilder, *, stored_attempts: int = 1) -> None:
    """t1 (max_retries=1) fails both its attempts and is dead-lettered."""
    h.enqueue("p0", ["t1"], max_retries=1)
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c1", [("t1", 2, 1, 1)])
    h.fail("c1", [("t1", 1)], "dead")


def test_a_task_dead_after_its_budget_passes() -> None:
    h = HistoryBuilder()
    out_of_retries(h)
    h.final(dead=[("t1", "retries exhausted: boom", 1, 2)])
    result = judge(check_budget, h)
    assert result.valid is True
    assert result.figures["most_attempts"] == 2
    assert result.figures["tasks_beyond_budget"] == 0


def test_an_attempt_beyond_the_budget_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=1)
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c1", [("t1", 2, 1, 1)])
    h.fail("c1", [("t1", 1)], "retried")  # off by one: retried where it should have died
    h.deliver("c0", [("t1", 2, 2, 1)])
    h.fail("c0", [("t1", 2)], "dead")
    h.final(dead=[("t1", "retries exhausted: boom", 2, 3)])
    result = judge(check_budget, h)
    assert result.valid is False
    assert result.figures["tasks_beyond_budget"] == 1
    assert result.figures["attempts_beyond_budget"] == 1
    assert result.figures["retried_past_budget"] == 1
    assert result.anomalies[0]["highest_attempt"] == 2


def test_a_retry_past_the_budget_is_caught_before_it_runs() -> None:
    h = HistoryBuilder()
    out_of_retries(h)
    h.ops[-1]["value"] = {"outcomes": ["retried"]}  # the queue answered retried for the last attempt
    h.final(delayed=["t1"])
    result = judge(check_budget, h)
    assert result.valid is False
    assert result.figures["retried_past_budget"] == 1


def test_a_dead_letter_storing_more_attempts_than_the_budget_is_caught() -> None:
    h = HistoryBuilder()
    out_of_retries(h)
    h.final(dead=[("t1", "retries exhausted: boom", 3, 4)])
    assert judge(check_budget, h).figures["attempts_beyond_budget"] == 2


def test_the_delivery_cap_bounds_crash_redeliveries() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    for n in range(1, 5):
        h.deliver(f"c{n}", [("t1", 2, 0, n)])
        h.kill(f"c{n}", held=["t1"])
    h.final(dead=[("t1", "delivery cap: delivered 4 times", 0, 1)])
    result = judge(check_budget, h, delivery_cap=4)
    assert result.valid is True
    assert result.figures["most_deliveries"] == 4


def test_a_delivery_beyond_the_cap_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    for n in range(1, 6):
        h.deliver(f"c{n}", [("t1", 2, 0, n)])
        h.kill(f"c{n}", held=["t1"])
    h.final()
    result = judge(check_budget, h, delivery_cap=4)
    assert result.valid is False
    assert result.anomalies[0] | {"by": None} == {"kind": "beyond_delivery_cap", "tid": "t1", "attempt": 0,
                                                 "delivery_cap": 4, "reported": 5, "seen": 5, "by": None}  # fmt: skip


def test_counts_that_reset_do_not_hide_deliveries_beyond_the_cap() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    for n in range(1, 5):
        h.deliver(f"c{n}", [("t1", 2, 0, 2)])  # every reclaim reports 2
    h.final()
    assert judge(check_budget, h, delivery_cap=3).figures["deliveries_beyond_cap"] == 1


def test_redeliveries_across_a_redis_rollback_are_not_counted_against_the_cap() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.fault("redis-restart", "redis")
    h.deliver("c2", [("t1", 2, 0, 2)])
    h.deliver("c3", [("t1", 2, 0, 3)])
    h.final()
    assert judge(check_budget, h, delivery_cap=3).valid is True


def test_the_budget_is_not_judged_where_retries_are_not_promised() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=0)
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c0", [("t1", 2, 1, 1)])
    h.final()
    result = judge(check_budget, h, promises=Promises(retries=False))
    assert result.valid is True
    assert result.figures["tasks_beyond_budget"] == 1


def test_the_delivery_cap_is_reported_not_judged_in_a_hosted_run() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    for n in range(1, 6):
        h.deliver(f"c{n}.1.0", [("t1", 2, 0, n)])
        h.kill(f"c{n}", held=["t1"])
    h.final()
    result = judge(check_budget, h, delivery_cap=4, hosted=True)
    assert result.valid is True
    assert result.figures["deliveries_beyond_cap"] == 1
    assert "hosted" in result.note
