"""Loss windows of topology faults (failover, split brain, manual promotion, shard kill) in the delivery
checker: losses and duplicates attributed to the failover that explains them, anything else a bug."""

from __future__ import annotations

from typing import Any

from harness.checkers import Expectations
from harness.checkers.delivery import check_delivery
from tests.unit.checkers.builder import HistoryBuilder, judge, run_task

ALLOWED = Expectations(loss_allowed_in_redis_fault_windows=True)


def topology_fault(h: HistoryBuilder, kind: str = "failover", *, down_s: float = 2.0, **facts: Any) -> None:
    """As harness/nemesis/topology.py journals it: the sync point and topology in the invoke."""
    h.invoke("nemesis-0", "fault", {"kind": kind, "target": "redis", "held": [], "topology": {}, **facts})
    h.advance(s=down_s)
    h.respond("nemesis-0", "fault", value={"topology": {}})


def lost_around_sync_point(kind: str = "failover", *, synced: bool = True) -> HistoryBuilder:
    """`durable` enqueued before the sync point, `at_risk` after it; both lost in the failover."""
    h = HistoryBuilder()
    h.phase("load")
    run_task(h, "t0")
    h.enqueue("p0", ["durable"])
    h.advance(ms=10)
    sync_ns = h.now_ns
    h.advance(ms=1)
    h.enqueue("p0", ["at_risk"])
    topology_fault(h, kind, persistence="replicated", durable_until_ns=sync_ns if synced else None)
    h.final()
    return h


def test_a_loss_after_the_sync_point_is_the_failovers_and_one_before_it_a_bug() -> None:
    result = judge(check_delivery, lost_around_sync_point(), expect=ALLOWED)
    assert result.figures["lost_in_fault_window"] == 1
    assert result.figures["lost"] == 1
    assert {a["tid"] for a in result.anomalies if a["kind"] == "lost"} == {"durable"}
    assert result.valid is False
    [window] = result.figures["fault_windows"]
    assert (window["kind"], window["persistence"], window["lost"]) == ("failover", "replicated", 1)


def test_without_a_sync_point_nothing_before_the_failover_was_known_to_be_safe() -> None:
    result = judge(check_delivery, lost_around_sync_point(synced=False), expect=ALLOWED)
    assert (result.figures["lost_in_fault_window"], result.figures["lost"]) == (2, 0)
    assert result.valid is True


def test_a_failover_loss_is_a_loss_when_the_scenario_does_not_allow_it() -> None:
    result = judge(check_delivery, lost_around_sync_point())
    assert result.figures["lost"] == 2
    assert result.valid is False


def test_split_brain_losses_are_counted_on_their_own() -> None:
    result = judge(check_delivery, lost_around_sync_point("split-brain"), expect=ALLOWED)
    assert result.figures["lost_in_split_brain"] == 1
    assert result.figures["lost_in_fault_window"] == 0
    assert result.figures["lost"] == 1  # "durable" was on the replicas before the cut


def test_manual_promotion_has_a_window_like_a_failover() -> None:
    result = judge(check_delivery, lost_around_sync_point("promote-lagging"), expect=ALLOWED)
    assert (result.figures["lost_in_fault_window"], result.figures["lost"]) == (1, 1)


def test_a_slot_migration_loses_nothing_so_a_loss_across_one_is_a_bug() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    topology_fault(h, "slot-migration")
    h.final()
    result = judge(check_delivery, h, expect=ALLOWED)
    assert (result.figures["lost"], result.figures["lost_in_fault_window"]) == (1, 0)
    assert "fault_windows" not in result.figures
    assert result.valid is False


def test_a_whole_shard_killed_without_persistence_loses_what_it_held() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.advance(s=5)
    topology_fault(h, "shard-kill", persistence="none")
    h.enqueue("p0", ["after"])
    h.final()
    result = judge(check_delivery, h, expect=ALLOWED)
    assert (result.figures["lost_in_fault_window"], result.figures["lost"]) == (1, 1)
    assert {a["tid"] for a in result.anomalies if a["kind"] == "lost"} == {"after"}  # enqueued once it was back
    h2 = HistoryBuilder()
    h2.enqueue("p0", ["t1"])
    topology_fault(h2, "shard-kill", persistence="aof-always")
    h2.final()
    assert judge(check_delivery, h2, expect=ALLOWED).figures["lost"] == 1


def duplicate_across_failover(*, ack_after_sync: bool) -> HistoryBuilder:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    sync_ns = h.now_ns + (-1 if ack_after_sync else 10 * h.step_ns)
    h.complete("c0", ["t1"])
    h.advance(ms=20)
    topology_fault(h, persistence="replicated", durable_until_ns=sync_ns)
    h.deliver("c1", [("t1", 2, 0, 1)])  # the ack was rolled back: the task runs again
    h.complete("c1", ["t1"])
    h.final()
    return h


def test_a_rolled_back_ack_explains_a_second_run_only_if_it_came_after_the_sync_point() -> None:
    explained = judge(check_delivery, duplicate_across_failover(ack_after_sync=True))
    assert explained.figures["duplicated_explained"] == 1
    assert explained.valid is True
    reasons = next(a for a in explained.anomalies if a["kind"] == "duplicated_explained")["reasons"]
    assert reasons == ["failover between the deliveries"]
    unexplained = judge(check_delivery, duplicate_across_failover(ack_after_sync=False))
    assert unexplained.figures["duplicated_unexplained"] == 1
    assert unexplained.valid is False


def test_a_failover_that_could_not_be_applied_has_no_window() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.invoke("nemesis-0", "fault", {"kind": "failover", "target": "redis", "held": [], "persistence": "replicated"})
    h.respond("nemesis-0", "fault", "info", {"error": "the Sentinels name no primary"})
    h.final()
    result = judge(check_delivery, h, expect=ALLOWED)
    assert result.figures["lost"] == 1
