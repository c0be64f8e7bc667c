"""check_recovery: from a worker's death to each held task's redelivery."""

from __future__ import annotations

import pytest

from harness.checkers import Expectations
from harness.checkers.recovery import check_recovery
from tests.unit.checkers.builder import HistoryBuilder, judge, run_task


def killed_then_reclaimed(after_s: float) -> HistoryBuilder:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"])
    h.deliver("c0#0", [("t1", 2, 0, 1), ("t2", 2, 0, 1)])
    h.kill("c0", held=["t1", "t2"])
    h.advance(s=after_s)
    h.deliver("c1#0", [("t1", 2, 0, 2), ("t2", 2, 0, 2)])
    h.complete("c1#0", ["t1", "t2"])
    h.final()
    return h


def test_recovery_time_is_measured() -> None:
    result = judge(check_recovery, killed_then_reclaimed(2.0))
    assert result.valid is True
    assert result.figures["count"] == 2
    assert result.figures["max_s"] == pytest.approx(2.0, abs=0.01)
    assert result.figures["p50_s"] == pytest.approx(2.0, abs=0.01)


def test_recovery_past_the_bound_fails() -> None:
    result = judge(check_recovery, killed_then_reclaimed(5.0), expect=Expectations(max_recovery_s=3.0))
    assert result.valid is False


def test_recovery_within_the_bound_passes() -> None:
    assert judge(check_recovery, killed_then_reclaimed(2.0), expect=Expectations(max_recovery_s=3.0)).valid is True


def test_without_kills_there_is_nothing_to_measure() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    result = judge(check_recovery, h)
    assert result.valid is True
    assert "no kill" in result.note


def test_kills_that_held_nothing_are_unknown() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.kill("c0")
    assert judge(check_recovery, h).valid is None


def test_held_task_never_seen_again_is_reported() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#0", [("t1", 2, 0, 1)])
    h.kill("c0", held=["t1"])
    h.final()
    result = judge(check_recovery, h)
    assert result.valid is True
    assert result.figures["never_redelivered"] == 1
    assert result.anomalies[0]["tid"] == "t1"
    assert "1 not recovered within" in result.note
    assert judge(check_recovery, h, expect=Expectations(max_recovery_s=10.0)).valid is False


def test_held_task_finished_by_a_graceful_stop_is_fine() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#0", [("t1", 2, 0, 1)])
    h.fault("term", "c0", held=["t1"])
    h.complete("c0#0", ["t1"])
    h.final()
    result = judge(check_recovery, h)
    assert result.valid is True
    assert result.figures["settled_without_redelivery"] == 1
    assert result.figures["never_redelivered"] == 0


def test_held_task_whose_ack_was_in_flight_at_the_kill_is_fine() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#0", [("t1", 2, 0, 1)])
    h.complete("c0#0", ["t1"], outcome=None)
    h.kill("c0", held=["t1"])
    h.final()
    result = judge(check_recovery, h)
    assert result.figures["never_redelivered"] == 0
    assert result.figures["settled_without_redelivery"] == 1


def failed_as_it_died(retry_attempt: int) -> HistoryBuilder:
    """t1's fail was sent just before the kill; it comes back 20 s later (a retry behind a backlog)."""
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0#0", [("t1", 2, 0, 1)])
    h.fail("c0#0", [("t1", 0)], outcomes=None)
    h.kill("c0", held=["t1"])
    h.advance(s=20)
    h.deliver("c1#0", [("t1", 2, retry_attempt, 1 if retry_attempt else 2)])
    h.complete("c1#0", ["t1"])
    h.final()
    return h


# -- service after Redis and network faults -------------------------------------------------------


def flushed_then(outcomes: list[str], *, kind: str = "flushall") -> HistoryBuilder:
    """A Redis fault, then a second of grace, then one enqueue batch per outcome."""
    h = HistoryBuilder()
    h.phase("load")
    run_task(h, "t0")
    h.fault(kind, "redis" if kind != "kill" else "c0")
    h.advance(s=1.5)
    for n, outcome in enumerate(outcomes):
        h.enqueue("p0", [f"t{n + 1}"], outcome=outcome)
    h.final()
    return h


def test_a_task_whose_fail_got_through_as_its_worker_died_was_retried_not_recovered() -> None:
    """Soak seed 266853139 (mixed_faults, 58 s): a retry queued behind a backlog is no slow recovery."""
    result = judge(check_recovery, failed_as_it_died(retry_attempt=1), expect=Expectations(max_recovery_s=8.0))
    assert result.valid is True
    assert result.figures["settled_without_redelivery"] == 1


def test_a_task_whose_fail_was_lost_with_its_worker_is_still_measured() -> None:
    result = judge(check_recovery, failed_as_it_died(retry_attempt=0), expect=Expectations(max_recovery_s=8.0))
    assert result.valid is False
    assert result.figures["max_s"] == pytest.approx(20.0, abs=0.1)


def test_a_task_never_seen_again_is_not_recovered_within_the_rest_of_the_run() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"])
    h.deliver("c0#0", [("t1", 2, 0, 1), ("t2", 2, 0, 1)])
    h.kill("c0", held=["t1"])
    h.advance(s=2.0)
    h.kill("c0", held=["t2"])
    h.advance(s=30.0)  # the drain waits, then ends with both still held by the dead worker
    h.final(pending=[("t1", 2, "c0"), ("t2", 2, "c0")])
    result = judge(check_recovery, h, expect=Expectations(max_recovery_s=5.0))
    assert result.valid is False
    assert result.figures["never_redelivered"] == 2
    # The later kill's task had the shorter wait: neither came back within it.
    assert result.figures["not_recovered_within_s"] == pytest.approx(30.0, abs=0.05)
    assert result.note.startswith("2 not recovered within 30.")


def test_recovered_tasks_carry_no_not_recovered_figure() -> None:
    result = judge(check_recovery, killed_then_reclaimed(2.0))
    assert "not_recovered_within_s" not in result.figures


def test_a_start_by_the_victim_itself_as_it_was_killed_is_no_redelivery() -> None:
    """huey kill_workers seed 1: a hosted worker's handler started a task in the moment between the kill's
    start and the death of its tree; the task was never run again (no acknowledgement). That start is not a
    recovery 0.1 s after the kill: the task was never handed out again."""
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"])
    h.start("c0#1.100.0", "t1")
    h.kill("c0#1", held=["t1", "t2"])
    h.start("c0#1.100.1", "t2")
    h.final()
    result = judge(check_recovery, h, expect=Expectations(max_recovery_s=5.0))
    assert result.valid is False
    assert (result.figures["count"], result.figures["never_redelivered"]) == (0, 2)


def test_a_queue_that_refuses_every_enqueue_after_a_fault_is_out_of_service() -> None:
    result = judge(check_recovery, flushed_then(["fail"] * 4 + ["info"] * 2))
    assert result.valid is False
    assert result.figures["never_back_in_service"] == 1
    example = result.anomalies[0]
    assert example["kind"] == "never_back_in_service"
    assert (example["fault"], example["enqueues_after"], example["outcomes"]) == ("flushall", 6, {"fail": 4, "info": 2})


def test_one_accepted_enqueue_after_the_fault_is_service_back() -> None:
    assert judge(check_recovery, flushed_then(["fail"] * 6 + ["ok"])).valid is True


def test_too_few_enqueues_after_the_fault_prove_nothing() -> None:
    assert judge(check_recovery, flushed_then(["fail"] * 2)).valid is True


def test_refusals_inside_the_grace_second_are_not_counted() -> None:
    h = HistoryBuilder()
    h.phase("load")
    h.fault("redis-kill", "redis")
    for n in range(6):
        h.enqueue("p0", [f"t{n}"], outcome="info")  # reconnecting
    h.advance(s=1.0)
    h.enqueue("p0", ["t9"])
    h.final()
    assert judge(check_recovery, h).valid is True


def test_worker_faults_never_take_the_queue_out_of_service() -> None:
    h = flushed_then(["fail"] * 6, kind="kill")
    assert "never_back_in_service" not in judge(check_recovery, h).figures
