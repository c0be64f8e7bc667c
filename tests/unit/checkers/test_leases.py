"""check_leases: no task is handed to a second consumer while the first holds a fresh lease."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.checkers.leases import check_leases
from tests.unit.checkers.builder import HistoryBuilder, judge


def test_a_handover_after_the_lease_ran_out_passes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.advance(s=2.0)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_leases, h, pending_timeout_s=2.0)
    assert result.valid is True
    assert result.figures["handovers"] == 1
    assert result.figures["earliest_ms"] >= 2000


def steal_early(h: HistoryBuilder, between: Callable[[HistoryBuilder], None] = lambda h: None) -> None:
    """c1 takes t1 0.3 s after c0 received it (lease 2 s); `between` happens in between."""
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    between(h)
    h.advance(s=0.3)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.complete("c1", ["t1"])
    h.complete("c0", ["t1"], refused=["t1"])  # even with only one ack accepted
    h.final()


def test_a_handover_while_the_lease_is_fresh_is_caught() -> None:
    h = HistoryBuilder()
    steal_early(h)
    result = judge(check_leases, h, pending_timeout_s=2.0)
    assert result.valid is False
    assert result.figures["early"] == 1
    example = result.anomalies[0]
    assert (example["holder"], example["to"], example["lease_ms"]) == ("c0", "c1", 2000.0)
    assert 300 <= example["after_ms"] < 400


@pytest.mark.parametrize(
    "fault",
    [
        lambda h: h.kill("c0", held=["t1"]),
        lambda h: h.exit("c0", 3),
        lambda h: h.fault("pause", "c0", held=["t1"]),
        lambda h: h.fault("partition", "consumers"),
        lambda h: h.fault("drop-replies", "all"),
        lambda h: h.fault("redis-kill", "redis"),
        lambda h: h.fail("c0", [("t1", 0)], "dead"),
    ],
    ids=["killed", "exited", "paused", "partitioned", "replies dropped", "redis killed", "settled"],
)
def test_an_early_handover_explained_by_the_holder_or_redis_is_not_a_violation(
    fault: Callable[[HistoryBuilder], None],
) -> None:
    h = HistoryBuilder()
    steal_early(h, fault)
    result = judge(check_leases, h, pending_timeout_s=2.0)
    assert result.valid is True
    assert result.figures["early_explained"] == 1


def test_a_fault_on_another_consumer_explains_nothing() -> None:
    h = HistoryBuilder()
    steal_early(h, lambda h: h.kill("c7"))
    assert judge(check_leases, h, pending_timeout_s=2.0).valid is False


def test_faults_that_keep_redis_state_explain_nothing() -> None:
    h = HistoryBuilder()
    steal_early(h, lambda h: h.fault("redis-pause", "redis"))
    assert judge(check_leases, h, pending_timeout_s=2.0).valid is False


def test_a_new_attempt_or_a_second_copy_is_no_handover() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"])
    h.deliver("c0", [("t1", 2, 0, 1), ("t2", 2, 0, 1)])
    h.fail("c0", [("t1", 0)], "retried")
    h.deliver("c1", [("t1", 2, 1, 1), ("t2", 2, 0, 1)])  # t1's retry; t2 stored twice (not this checker's)
    h.final()
    assert judge(check_leases, h, pending_timeout_s=2.0).figures["handovers"] == 0


def test_a_holder_paused_inside_its_read_is_found_by_its_delivery_count() -> None:
    # c0's read took t1, then c0 was paused before it saw the answer: it journals the read after c1's.
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver_invoke("c0")
    h.pause("c0", held=[])
    h.advance(s=0.3)
    h.deliver("c1", [("t1", 2, 0, 2)])
    h.resume()
    h.deliver_ok("c0", [("t1", 2, 0, 1)])
    h.final()
    result = judge(check_leases, h, pending_timeout_s=2.0)
    assert result.figures["handovers"] == 1
    assert (result.valid, result.figures["early_explained"]) == (True, 1)
    h.ops = [op for op in h.ops if op["f"] != "fault"]  # the same without the pause: nothing explains it
    assert judge(check_leases, h, pending_timeout_s=2.0).valid is False


def test_a_hosted_run_is_not_judged() -> None:
    h = HistoryBuilder()
    steal_early(h)
    result = judge(check_leases, h, pending_timeout_s=2.0, hosted=True)
    assert result.valid is True
    assert "hosted" in result.note


def test_a_lease_taken_after_the_handover_is_not_the_one_handed_over() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c2", [("t1", 2, 0, 2)])  # another copy's reclaim: its first read was never seen
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.final()
    assert judge(check_leases, h, pending_timeout_s=2.0).figures["handovers"] == 0


def test_an_attempt_stored_twice_is_left_to_the_stored_twice_checker() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.deliver("c2", [("t1", 2, 0, 2)])  # whose lease moved: c0's copy or c1's?
    h.final()
    assert judge(check_leases, h, pending_timeout_s=2.0).figures["handovers"] == 0
