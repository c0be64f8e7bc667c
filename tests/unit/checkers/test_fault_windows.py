"""Loss windows of Redis faults by persistence setting (delivery), and throughput recovery (recovery)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checkers import Expectations
from harness.checkers.delivery import check_delivery
from harness.checkers.index import HistoryIndex, is_redis_fault
from harness.checkers.recovery import check_recovery
from harness.checkers.throughput import throughput_back
from tests.unit.checkers.builder import HistoryBuilder, judge, run_task

ALLOWED = Expectations(loss_allowed_in_redis_fault_windows=True)


def redis_fault(h: HistoryBuilder, kind: str = "redis-kill", *, down_s: float = 0.5, **facts: Any) -> None:
    """A Redis fault as harness/nemesis/redis.py journals it: facts in the invoke, ok once the server is back."""
    h.invoke("nemesis-0", "fault", {"kind": kind, "target": "redis", "held": [], **facts})
    h.advance(s=down_s)
    h.respond("nemesis-0", "fault")


def lost_before_kill(persistence: str, *, enqueued_before_s: float, **facts: Any) -> HistoryBuilder:
    """t1 enqueued ok `enqueued_before_s` before a kill and never seen again; t0 ran normally."""
    h = HistoryBuilder()
    h.phase("load")
    run_task(h, "t0")
    h.advance(s=5)
    h.enqueue("p0", ["t1"])
    h.advance(s=enqueued_before_s)
    redis_fault(h, persistence=persistence, **facts)
    h.final()
    return h


@pytest.mark.parametrize(
    ("persistence", "before_s", "allowed"),
    [
        ("aof-always", 0.1, False),  # every acknowledged write was fsynced: a loss is a loss
        ("aof-everysec", 1.5, True),  # inside the 2 s everysec may lose
        ("aof-everysec", 3.0, False),  # older than that: it was on disk
        ("none", 4.0, True),  # nothing survives a restart without persistence
        ("flushed", 4.0, True),
    ],
)
def test_loss_window_follows_the_persistence_setting(persistence: str, before_s: float, allowed: bool) -> None:
    result = judge(check_delivery, lost_before_kill(persistence, enqueued_before_s=before_s), expect=ALLOWED)
    assert (result.figures["lost_in_fault_window"], result.figures["lost"]) == ((1, 0) if allowed else (0, 1))
    assert result.valid is allowed


def test_rdb_window_starts_at_the_last_snapshot() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["old"])
    h.advance(s=1)
    snapshot_ns = h.now_ns  # "old" is in the snapshot, "new" is not
    h.advance(s=1)
    h.enqueue("p0", ["new"])
    h.advance(s=1)
    redis_fault(h, persistence="rdb", durable_until_ns=snapshot_ns)
    h.final()
    result = judge(check_delivery, h, expect=ALLOWED)
    assert result.figures["lost_in_fault_window"] == 1
    assert result.figures["lost"] == 1
    assert {a["tid"] for a in result.anomalies if a["kind"] == "lost"} == {"old"}


def test_flushall_loses_everything_before_it_and_nothing_after() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["before"])
    h.advance(s=10)
    h.invoke("nemesis-0", "fault", {"kind": "flushall", "target": "redis", "held": [], "persistence": "flushed"})
    h.respond("nemesis-0", "fault")
    h.advance(s=1)
    h.enqueue("p0", ["after"])
    h.final()
    result = judge(check_delivery, h, expect=ALLOWED)
    assert result.figures["lost_in_fault_window"] == 1
    assert {a["tid"] for a in result.anomalies if a["kind"] == "lost"} == {"after"}


def test_an_enqueue_answered_after_the_fault_ended_still_counts_if_it_ran_before() -> None:
    h = HistoryBuilder()
    h.invoke("p0", "enqueue", {"tasks": [["t1", 2, 3]], "due_ns": h.now_ns})
    h.invoke("nemesis-0", "fault", {"kind": "flushall", "target": "redis", "held": [], "persistence": "flushed"})
    h.respond("nemesis-0", "fault")
    h.respond("p0", "enqueue")  # the flush came after the enqueue ran; its answer came late
    h.final()
    assert judge(check_delivery, h, expect=ALLOWED).figures["lost_in_fault_window"] == 1


def test_lost_tasks_are_attributed_to_the_first_fault_after_them_even_when_not_allowed() -> None:
    h = HistoryBuilder()
    h.phase("load")
    h.enqueue("p0", ["a1", "a2"])
    redis_fault(h, persistence="none")
    h.advance(s=2)
    h.enqueue("p0", ["b1"])
    redis_fault(h, persistence="none")
    h.final()
    result = judge(check_delivery, h)
    assert result.valid is False
    assert result.figures["lost"] == 3
    windows = result.figures["fault_windows"]
    assert [w["lost"] for w in windows] == [2, 1]
    assert windows[0]["window_from_s"] == "start"
    assert windows[0]["persistence"] == "none"
    assert "3 lost in Redis fault windows:" in result.note


def test_a_task_sent_while_redis_restarted_is_lost_by_the_next_crash() -> None:
    h = HistoryBuilder()
    h.phase("load")
    h.enqueue("p0", ["before"])
    h.invoke("nemesis-0", "fault", {"kind": "redis-kill", "target": "redis", "held": [], "persistence": "none"})
    h.advance(s=1)
    h.enqueue("p0", ["restarting"])  # answered by the restarted server before the fault's end was journaled
    h.respond("nemesis-0", "fault")
    h.advance(s=2)
    redis_fault(h, persistence="none")
    h.final()
    windows = judge(check_delivery, h, expect=ALLOWED).figures["fault_windows"]
    assert [w["lost"] for w in windows] == [1, 1]


def test_faults_that_keep_state_have_no_window() -> None:
    for kind in ("redis-pause", "client-pause", "debug-sleep", "client-kill", "latency", "partition"):
        assert not is_redis_fault(kind)
    h = lost_before_kill("aof-always", enqueued_before_s=0.1)
    result = judge(check_delivery, h, expect=ALLOWED)
    assert "fault_windows" not in result.figures


def test_duplicate_after_an_aof_always_crash_is_not_explained_by_it() -> None:
    h = HistoryBuilder()
    run_task(h, "t1", consumer="c0")
    redis_fault(h, persistence="aof-always")  # the ack was fsynced: nothing rolled back
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.figures["duplicated_unexplained"] == 1


def test_duplicate_after_an_everysec_crash_is_explained() -> None:
    h = HistoryBuilder()
    run_task(h, "t1", consumer="c0")
    redis_fault(h, persistence="aof-everysec")  # the ack may have been rolled back
    h.deliver("c1", [("t1", 2, 0, 1)])
    h.complete("c1", ["t1"])
    h.final()
    result = judge(check_delivery, h)
    assert result.figures["duplicated_explained"] == 1
    assert result.valid is True


def steady_completions(h: HistoryBuilder, seconds: float, per_second: int, start: int = 0) -> int:
    """One task per tick, `per_second` ticks a second, for `seconds`."""
    step_ms = 1000 / per_second
    n = start
    for _ in range(int(seconds * per_second)):
        run_task(h, f"t{n}")
        h.advance(ms=step_ms - 3 * h.step_ns / 1e6)
        n += 1
    return n


def test_throughput_back_is_measured_from_the_end_of_each_fault() -> None:
    h = HistoryBuilder()
    h.phase("load")
    n = steady_completions(h, 3, 100)
    redis_fault(h, "redis-pause", down_s=1.0)
    h.advance(s=2.0)  # nothing completes for two more seconds after the fault
    steady_completions(h, 3, 100, start=n)
    h.final()
    [row] = throughput_back(HistoryIndex.build(h.history()))
    assert row["kind"] == "redis-pause"
    assert 2.0 <= row["back_after_s"] <= 2.5  # 2 s stuck, then the time to see half the rate
    result = judge(check_recovery, h)
    assert result.valid is True
    assert result.figures["throughput_back_max_s"] == row["back_after_s"]
    assert "throughput back after faults" in result.note


def test_throughput_never_back_is_reported() -> None:
    h = HistoryBuilder()
    h.phase("load")
    steady_completions(h, 2, 100)
    redis_fault(h, "client-pause")
    h.final()
    [row] = throughput_back(HistoryIndex.build(h.history()))
    assert row["back_after_s"] is None
    assert judge(check_recovery, h).figures["throughput_never_back"] == 1


def test_a_fault_too_early_for_a_baseline_is_not_measured() -> None:
    h = HistoryBuilder()
    h.phase("load")
    redis_fault(h, "redis-pause")
    steady_completions(h, 1, 50)
    h.final()
    [row] = throughput_back(HistoryIndex.build(h.history()))
    assert row["back_after_s"] is None
    assert "no baseline" in row["note"]
