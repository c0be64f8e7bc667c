"""check_vacuity: a fault that hit nothing proves nothing."""

from __future__ import annotations

from harness.checkers import Expectations
from harness.checkers.vacuity import check_vacuity
from tests.unit.checkers.builder import HistoryBuilder, judge, run_task


def test_no_faults_is_valid() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    result = judge(check_vacuity, h)
    assert result.valid is True
    assert result.note == "no faults in this scenario"


def test_kill_of_a_worker_holding_tasks_hits() -> None:
    h = HistoryBuilder()
    h.kill("c0", held=["t1"])
    result = judge(check_vacuity, h)
    assert result.valid is True
    assert result.figures["hit"] == 1


def test_vacuous_fault_is_unknown() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.kill("c0")
    h.pause("c1")
    h.resume()
    result = judge(check_vacuity, h)
    assert result.valid is None
    assert result.note == "fault(s) never hit anything: the run proves nothing about them"
    assert result.figures["missed"] == 2


def test_some_hit_some_missed_is_valid_with_figures_per_kind() -> None:
    h = HistoryBuilder()
    h.kill("c0", held=["t1"])
    h.kill("c1")
    result = judge(check_vacuity, h)
    assert result.valid is True
    assert result.figures["by_kind"] == {"kill": {"hit": 1, "missed": 1}}


def test_redis_fault_with_operations_while_active_hits() -> None:
    h = HistoryBuilder()
    h.fault("redis-pause", "redis", ends=False)
    h.enqueue("p0", ["t1"], outcome="info")
    h.end_fault()
    assert judge(check_vacuity, h).valid is True


def test_redis_fault_with_an_operation_in_flight_hits() -> None:
    h = HistoryBuilder()
    h.deliver_invoke("c0")
    h.fault("flushall", "redis")
    h.deliver_ok("c0", [])
    assert judge(check_vacuity, h).valid is True


def test_redis_fault_while_nothing_ran_is_unknown() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.fault("latency", "redis", ends=False)
    h.advance(s=1)
    h.end_fault()
    h.phase("drain")
    result = judge(check_vacuity, h)
    assert result.valid is None
    assert result.anomalies[0]["why"] == "no operation ran while it was active"


def test_fault_that_could_not_be_applied_hit_nothing() -> None:
    h = HistoryBuilder()
    h.fault("partition", "redis", ends=False)
    h.enqueue("p0", ["t1"])
    h.end_fault(outcome="info")
    result = judge(check_vacuity, h)
    assert result.valid is None
    assert result.anomalies[0]["why"] == "could not be applied"


def test_scenario_that_does_not_require_hits_passes() -> None:
    h = HistoryBuilder()
    h.kill("c0")
    assert judge(check_vacuity, h, expect=Expectations(faults_must_hit=False)).valid is True


def test_fewer_dead_letters_than_promised_is_unknown() -> None:
    h = HistoryBuilder()
    run_task(h, "t1")
    h.final()
    result = judge(check_vacuity, h, expect=Expectations(min_dead=1))
    assert result.valid is None
    assert "expected at least 1 dead-lettered task(s), saw 0" in result.note


def test_promised_dead_letters_seen_is_valid() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], prio=2)
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.final(dead=[("t1", "delivery cap: delivered 3 times", 0, 1)])
    assert judge(check_vacuity, h, expect=Expectations(min_dead=1)).valid is True
