"""check_dlq: dead-lettered iff attempts ran out; never dead and completed; stored errors match."""

from __future__ import annotations

from harness.checkers import Expectations
from harness.checkers.dlq import check_dlq
from tests.unit.checkers.builder import HistoryBuilder, judge, run_task

EXHAUSTED = "retries exhausted: boom"


def fail_to_death(h: HistoryBuilder, tid: str, *, max_retries: int = 2, last: str = "dead") -> None:
    h.enqueue("p0", [tid], max_retries=max_retries)
    for attempt in range(max_retries + 1):
        h.deliver("c0", [(tid, 2, attempt, 1)])
        h.fail("c0", [(tid, attempt)], last if attempt == max_retries else "retried")


def test_task_dead_after_its_retries_passes() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    run_task(h, "t2")
    h.final(dead=[("t1", EXHAUSTED, 2, 3)])
    result = judge(check_dlq, h)
    assert result.valid is True
    assert result.figures["dead"] == 1
    assert result.anomalies == []


def test_dead_and_completed_is_caught() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.final(dead=[("t1", EXHAUSTED, 3, 4)])
    result = judge(check_dlq, h)
    assert result.valid is False
    assert result.figures["dead_and_completed"] == 1


def test_missing_from_dlq_is_caught() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    h.final()
    result = judge(check_dlq, h)
    assert result.valid is False
    assert result.figures["missing_from_dlq"] == 1
    assert result.anomalies[0]["tid"] == "t1"


def test_budget_used_up_without_a_dead_answer_is_still_missing() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1", last="retried")  # the queue scheduled a retry past the budget
    h.final()
    assert judge(check_dlq, h).figures["missing_from_dlq"] == 1


def test_wrong_stored_error_count_is_caught() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    h.final(dead=[("t1", EXHAUSTED, 2, 2)])
    result = judge(check_dlq, h)
    assert result.valid is False
    assert result.figures["wrong_error_count"] == 1


def test_wrong_stored_attempts_is_caught() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    h.final(dead=[("t1", EXHAUSTED, 0, 3)])
    assert judge(check_dlq, h).figures["wrong_error_count"] == 1


def test_unrecorded_attempts_and_errors_are_not_a_mismatch() -> None:
    """A library that keeps only the last error stores -1 (a hosted peer): nothing to compare."""
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    h.final(dead=[("t1", EXHAUSTED, -1, -1)])
    assert judge(check_dlq, h).valid is True


def test_unrecorded_errors_still_judge_the_attempts_and_the_budget() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    h.final(dead=[("t1", EXHAUSTED, 1, -1)])
    assert judge(check_dlq, h).figures["wrong_error_count"] == 1
    early = HistoryBuilder()
    early.enqueue("p0", ["t1"], max_retries=2)
    early.deliver("c0", [("t1", 2, 0, 1)])
    early.fail("c0", [("t1", 0)], "dead")
    early.final(dead=[("t1", EXHAUSTED, -1, -1)])
    assert judge(check_dlq, early).figures["wrong_error_count"] == 1


def test_unrecorded_attempts_and_errors_are_not_compared() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    h.final(dead=[("t1", EXHAUSTED, -1, -1)])  # a library that keeps only the last error
    result = judge(check_dlq, h)
    assert result.valid is True
    assert result.figures["wrong_error_count"] == 0


def test_unrecorded_errors_still_catch_a_task_dead_before_its_retries() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=2)
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "raised")
    h.final(dead=[("t1", EXHAUSTED, 0, -1)])
    assert judge(check_dlq, h).figures["wrong_error_count"] == 1


def test_dead_too_early_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=2)
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "dead")
    h.final(dead=[("t1", EXHAUSTED, 2, 3)])
    assert judge(check_dlq, h).figures["wrong_error_count"] == 1


def test_a_fail_with_a_lost_answer_may_have_counted() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], max_retries=1)
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "info")
    h.deliver("c0", [("t1", 2, 1, 1)])
    h.fail("c0", [("t1", 1)], "dead")
    h.final(dead=[("t1", EXHAUSTED, 1, 2)])
    assert judge(check_dlq, h).valid is True


def test_delivery_cap_reached_passes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    for n in range(1, 6):
        h.deliver(f"c{n}#0", [("t1", 2, 0, n)])
        h.kill(f"c{n}", held=["t1"])
    h.final(dead=[("t1", "delivery cap: 5", 0, 0)])
    assert judge(check_dlq, h, delivery_cap=5).valid is True


def test_delivery_cap_not_reached_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c1#0", [("t1", 2, 0, 1)])
    h.kill("c1", held=["t1"])
    h.final(dead=[("t1", "delivery cap: 5", 0, 0)])
    result = judge(check_dlq, h, delivery_cap=5)
    assert result.valid is False
    assert result.figures["cap_not_reached"] == 1


def test_deliveries_to_processes_that_died_mid_read_may_count() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c1#0", [("t1", 2, 0, 1)])
    for n in range(2, 6):
        h.deliver_invoke(f"c{n}#0")
        h.kill(f"c{n}")
    h.final(dead=[("t1", "delivery cap: 5", 0, 0)])
    assert judge(check_dlq, h, delivery_cap=5).valid is True


def crash_with_a_batch(h: HistoryBuilder, batch: list[str], times: int) -> None:
    """`times` consumers each read the batch and die on their own (a poison task crashes them)."""
    for n in range(1, times + 1):
        h.deliver(f"c{n}#0", [(tid, 2, 0, n) for tid in batch])
        h.exit(f"c{n}#0", code=3)


def test_an_innocent_batch_mate_capped_with_a_poison_task_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["bad", "mate"], poison=["bad"])
    crash_with_a_batch(h, ["bad", "mate"], times=3)
    h.final(dead=[("bad", "delivery cap: 3", 0, 0), ("mate", "delivery cap: 3", 0, 0)])
    result = judge(check_dlq, h, delivery_cap=3)
    assert result.valid is False
    assert result.figures["innocent_dead"] == 1
    assert result.anomalies[0]["tid"] == "mate"


def test_a_capped_task_whose_holders_a_fault_hit_is_not_innocent() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    for n in range(1, 4):
        h.deliver(f"c{n}#0", [("t1", 2, 0, n)])
        h.kill(f"c{n}", held=["t1"] if n == 2 else [])
    h.final(dead=[("t1", "delivery cap: 3", 0, 0)])
    assert judge(check_dlq, h, delivery_cap=3).valid is True


def test_a_capped_task_that_outlived_its_lease_under_live_holders_is_not_innocent() -> None:
    """Soak seed 830952873 (long_tasks on the harness's own consumer, which does not renew): each holder
    finished the task after its lease ran out and had its ack refused, five times."""
    h = HistoryBuilder()
    h.enqueue("p0", ["long"])
    for n in range(1, 4):
        h.deliver(f"c{n}#0", [("long", 2, 0, n)])
        h.advance(s=1.5)
        h.complete(f"c{n}#0", ["long"], refused=["long"])
    h.final(dead=[("long", "delivery cap: 3", 0, 0)])
    result = judge(check_dlq, h, delivery_cap=3)
    assert result.valid is True
    assert result.figures["outlived_lease_dead"] == 1
    assert result.figures["innocent_dead"] == 0


def test_without_final_state_the_dlq_is_unknown() -> None:
    h = HistoryBuilder()
    fail_to_death(h, "t1")
    result = judge(check_dlq, h)
    assert result.valid is None


def flushed_after_death(*, dead_after_flush: bool = False) -> HistoryBuilder:
    """t1 runs out of retries; FLUSHALL wipes the DLQ (before or after that answer)."""
    h = HistoryBuilder()
    h.phase("load")
    if dead_after_flush:
        h.fault("flushall", "redis", held=[])
    fail_to_death(h, "t1", max_retries=0)
    if not dead_after_flush:
        h.fault("flushall", "redis", held=[])
    h.final()
    return h


def test_a_dead_letter_a_flush_wiped_is_allowed_where_loss_is_allowed() -> None:
    result = judge(check_dlq, flushed_after_death(), expect=Expectations(loss_allowed_in_redis_fault_windows=True))
    assert result.valid is True
    assert (result.figures["missing_in_fault_window"], result.figures["missing_from_dlq"]) == (1, 0)


def test_a_dead_letter_a_flush_wiped_is_missing_where_loss_is_not_allowed() -> None:
    assert judge(check_dlq, flushed_after_death()).figures["missing_from_dlq"] == 1


def test_a_dead_letter_written_after_the_flush_must_be_there() -> None:
    allowed = Expectations(loss_allowed_in_redis_fault_windows=True)
    result = judge(check_dlq, flushed_after_death(dead_after_flush=True), expect=allowed)
    assert result.valid is False
    assert result.figures["missing_from_dlq"] == 1
