"""check_priority: a read hands out a lower priority while a higher one has waited past the slack."""

from __future__ import annotations

from harness.checkers import Expectations
from harness.checkers.base import CheckContext, CheckResult
from harness.checkers.index import HistoryIndex
from harness.checkers.priority import check_priority
from tests.unit.checkers.builder import HistoryBuilder, judge


def test_strict_priority_passes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["low"], prio=3)
    h.enqueue("p0", ["high"], prio=0)
    h.advance(ms=50)
    h.deliver("c0", [("high", 0, 0, 1), ("low", 3, 0, 1)])
    h.final()
    result = judge(check_priority, h)
    assert result.valid is True
    assert result.figures["reads_checked"] == 1
    assert result.figures["inversions"] == 0


def test_inversion_is_caught() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.enqueue("p0", ["low"], prio=3)
    h.advance(ms=50)
    h.deliver("c0", [("low", 3, 0, 1)])
    h.advance(ms=10)
    h.deliver("c0", [("high", 0, 0, 1)])
    h.final()
    result = judge(check_priority, h)
    assert result.valid is False
    assert result.figures["inversions"] == 1
    assert result.figures["worst_wait_ms"] >= 50
    assert result.anomalies[0]["waiting"] == "high"
    assert result.anomalies[0]["delivered"] == ["low"]


def test_inversion_within_the_slack_is_allowed() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.enqueue("p0", ["low"], prio=3)
    h.deliver("c0", [("low", 3, 0, 1)])
    h.deliver("c0", [("high", 0, 0, 1)])
    h.final()
    assert judge(check_priority, h).valid is True


def test_overlapping_reads_prove_nothing() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.enqueue("p0", ["low"], prio=3)
    h.advance(ms=50)
    h.deliver_invoke("c0")
    h.deliver_invoke("c1")
    h.deliver_ok("c1", [("low", 3, 0, 1)])
    h.deliver_ok("c0", [("high", 0, 0, 1)])  # c0 may well have been served first
    h.final()
    assert judge(check_priority, h).valid is True


def test_retries_and_reclaims_are_not_first_deliveries() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.enqueue("p0", ["low", "old"], prio=3)
    h.advance(ms=50)
    h.deliver("c0", [("low", 3, 1, 1), ("old", 3, 0, 2)])
    h.deliver("c0", [("high", 0, 0, 1)])
    h.final()
    result = judge(check_priority, h)
    assert result.valid is True
    assert result.figures["reads_checked"] == 1


def test_tasks_never_delivered_are_left_to_other_checkers() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.enqueue("p0", ["low"], prio=3)
    h.advance(ms=50)
    h.deliver("c0", [("low", 3, 0, 1)])
    h.final(ready=[("high", 0)])
    assert judge(check_priority, h).figures["inversions"] == 0


def test_only_higher_priorities_count() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["a"], prio=2)
    h.enqueue("p0", ["b"], prio=2)
    h.advance(ms=50)
    h.deliver("c0", [("b", 2, 0, 1)])
    h.deliver("c0", [("a", 2, 0, 1)])
    h.final()
    assert judge(check_priority, h).figures["inversions"] == 0


def test_inversions_within_tolerance_pass() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.enqueue("p0", ["low"], prio=3)
    h.advance(ms=50)
    h.deliver("c0", [("low", 3, 0, 1)])
    h.deliver("c0", [("high", 0, 0, 1)])
    h.final()
    assert judge(check_priority, h, expect=Expectations(max_priority_inversions=1)).valid is True


def test_worst_wait_names_the_oldest_waiting_task() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["oldest"], prio=1)
    h.advance(ms=100)
    h.enqueue("p0", ["newer"], prio=0)
    h.enqueue("p0", ["low1", "low2"], prio=3)
    h.advance(ms=50)
    h.deliver("c0", [("low1", 3, 0, 1)])
    h.deliver("c0", [("low2", 3, 0, 1)])
    h.deliver("c0", [("newer", 0, 0, 1), ("oldest", 1, 0, 1)])
    h.final()
    result = judge(check_priority, h)
    assert result.figures["inversions"] == 2
    assert result.figures["worst_wait_ms"] >= 150
    assert {a["waiting"] for a in result.anomalies} == {"oldest"}


def _hosted_high_held_by_a_worker(*, paused: bool, resume_journaled_first: bool = True) -> HistoryBuilder:
    """A hosted worker (c0#1) read `high` unseen; `low` is enqueued and started by c1#1 a second later;
    c0#1 starts `high` 2 s after that, because it was SIGSTOPped (or, without the pause, because it sat
    on it: an inversion the harness must still see)."""
    h = HistoryBuilder()
    h.enqueue("p0", ["high"], prio=0)
    h.advance(ms=10)
    if paused:
        h.pause("c0#1")
    h.advance(s=1)
    h.enqueue("p0", ["low"], prio=3)
    h.advance(ms=10)
    h.start("c1#1.7.0", "low", prio=3)
    h.advance(s=1)
    if paused and resume_journaled_first:
        h.resume()
    h.advance(ms=50)
    h.start("c0#1.9.0", "high", prio=0)
    if paused and not resume_journaled_first:  # the nemesis journals the end after its SIGCONT
        h.resume()
    h.final()
    return h


def _judge_hosted(h: HistoryBuilder) -> CheckResult:
    index = HistoryIndex.build(h.history(), read_window_ns=250 * 1_000_000)
    return check_priority(index, CheckContext(hosted=True))


def test_a_hosted_start_after_its_worker_was_stopped_may_have_been_read_before_the_stop() -> None:
    """huey:priorities pause_workers seed 1: 1,263 "inversions", each a higher task a worker popped just
    before its SIGSTOP and started after the SIGCONT, 2 s later (the harness sees starts, not pops)."""
    assert _judge_hosted(_hosted_high_held_by_a_worker(paused=True)).figures["inversions"] == 0
    late = _hosted_high_held_by_a_worker(paused=True, resume_journaled_first=False)
    assert _judge_hosted(late).figures["inversions"] == 0


def test_a_hosted_start_long_after_a_lower_one_without_a_pause_is_an_inversion() -> None:
    result = _judge_hosted(_hosted_high_held_by_a_worker(paused=False))
    assert (result.valid, result.figures["inversions"]) == (False, 1)


def _hosted_high_read_before_a_partition(*, started_after_heal_s: float) -> HistoryBuilder:
    """c0#1's blocked read took `high` during a 2 s partition of the consumers; its reply came through
    after the heal (TCP retransmits with a doubling wait), by when c1#1 had started `low`."""
    h = HistoryBuilder()
    h.fault("partition", "consumers", ends=False)
    h.advance(ms=100)
    h.enqueue("p0", ["high"], prio=0)
    h.advance(s=1.9)
    h.end_fault()
    h.enqueue("p0", ["low"], prio=3)
    h.advance(s=started_after_heal_s - 0.3)
    h.start("c1#1.7.0", "low", prio=3)
    h.advance(s=0.3)
    h.start("c0#1.9.0", "high", prio=0)
    h.final()
    return h


def test_a_hosted_start_after_a_partition_may_have_been_read_during_it() -> None:
    """huey:priorities partition_consumers seed 1: 63 "inversions", each a task a worker's BZPOPMIN took
    during the partition, whose reply arrived up to 1.3 s after the heal."""
    assert _judge_hosted(_hosted_high_read_before_a_partition(started_after_heal_s=1.3)).figures["inversions"] == 0
    late = _judge_hosted(_hosted_high_read_before_a_partition(started_after_heal_s=5.0))
    assert (late.valid, late.figures["inversions"]) == (False, 1)
