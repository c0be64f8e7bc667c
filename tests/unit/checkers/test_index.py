"""HistoryIndex: pairing, outcomes of unfinished invokes, task identity, final state and faults."""

from __future__ import annotations

from harness.checkers.index import Completion, DeadEntry, HistoryIndex, is_redis_fault, targets
from tests.unit.checkers.builder import HistoryBuilder, S


def build(h: HistoryBuilder) -> HistoryIndex:
    return HistoryIndex.build(h.history())


def test_interleaved_processes_pair_by_process() -> None:
    h = HistoryBuilder()
    h.invoke("p0", "enqueue", {"tasks": [["t1", 1, 3]], "due_ns": 0})
    h.invoke("p1", "enqueue", {"tasks": [["t2", 2, 3]], "due_ns": 0})
    h.respond("p1", "enqueue", "fail", {"error": "too large"})
    h.respond("p0", "enqueue")
    index = build(h)
    assert index.enqueues["t1"].outcome == "ok"
    assert index.enqueues["t1"].ok_ns is not None
    assert index.enqueues["t2"].outcome == "fail"
    assert index.enqueues["t2"].ok_ns is None
    assert index.op_count == 4


def test_invoke_without_completion_is_info() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"], outcome=None)
    index = build(h)
    assert index.enqueues["t1"].outcome == "info"


def test_a_second_invoke_closes_the_first_as_info() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1)])
    h.complete("c0", ["t1"], outcome=None)
    h.deliver("c0", [])
    index = build(h)
    assert [c.outcome for c in index.completions["t1"]] == ["info"]


def test_exit_closes_the_open_invoke_and_is_recorded() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver_invoke("c0#0")
    h.exit("c0#0", code=-9)
    index = build(h)
    assert len(index.unknown_reads_ns) == 1
    assert index.exits[0].process == "c0#0"
    assert index.exits[0].code == -9


def test_read_without_tasks_and_failed_read_leave_no_unknown() -> None:
    h = HistoryBuilder()
    h.deliver("c0", [])
    h.deliver("c0", [], outcome="fail")
    h.deliver("c0", [], outcome="info")
    index = build(h)
    assert index.reads == []
    assert len(index.unknown_reads_ns) == 1


def test_refused_acks_and_fail_outcomes() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2"])
    h.deliver("c0", [("t1", 2, 0, 1), ("t2", 2, 0, 1)])
    h.complete("c0", ["t1"], refused=["t1"])
    h.fail("c0", [("t2", 0, "boom")], ["dead"])
    h.fail("c0", [("t2", 0)], "info")
    index = build(h)
    assert index.completions["t1"][0].outcome == "refused"
    assert [(f.attempt, f.error, f.outcome) for f in index.failures["t2"]] == [(0, "boom", "dead"), (0, "boom", "info")]


def test_task_handed_out_under_a_new_id_is_keyed_by_its_payload_tid() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("x9", 2, 1, 1, "t1")])
    h.complete("c0", ["x9"])
    index = build(h)
    assert index.aliases == {"x9": "t1"}
    assert index.deliveries["t1"][0].delivered_tid == "x9"
    assert index.completions["t1"] == [
        Completion("c0", index.completions["t1"][0].invoke_ns, index.completions["t1"][0].done_ns, "ok")
    ]


def test_faults_phases_and_final_state() -> None:
    h = HistoryBuilder()
    h.phase("load")
    h.kill("c1", held=["t1"])
    h.pause("c2", held=["t2"])
    h.advance(s=1)
    h.resume()
    h.fault("redis-kill", "redis", ends=False)
    h.final(ready=[("t3", 1)], pending=[("t4", 2, "c2")], delayed=["t5"], dead=[("t6", "retries exhausted", 3, 4)],
            acked_not_deleted=["t7"], foreign=2)  # fmt: skip
    index = build(h)
    kill, pause, redis = index.faults
    assert (kill.kind, kill.target, kill.held, kill.outcome) == ("kill", "c1", ("t1",), "ok")
    assert pause.end_ns is not None
    assert pause.end_ns - pause.start_ns > S
    assert redis.end_ns is None
    assert index.fault_end_ns(redis) == index.end_ns
    assert "load" in index.phases
    final = index.final
    assert final is not None
    assert final.ready == {"t3": 1}
    assert final.pending == {"t4": (2, "c2")}
    assert final.dead == {"t6": DeadEntry("retries exhausted", 3, 4)}
    assert final.left == {"t3", "t4", "t5"}
    assert final.foreign == 2


def test_agent_operations_exclude_nemesis_and_runner() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.kill("c1")
    h.phase("drain")
    index = build(h)
    assert len(index.agent_invoke_ns) == 1
    assert index.agent_done_ns[0] > index.agent_invoke_ns[0]


def test_fault_helpers() -> None:
    assert targets("consumer-2", "consumer-2#3")
    assert targets("consumer-2", "consumer-2")
    assert targets("producer-0", "producer-0.1")
    assert not targets("consumer-2", "consumer-21#0")
    assert is_redis_fault("redis-kill")
    assert is_redis_fault("flushall")
    assert is_redis_fault("restart")
    assert not is_redis_fault("client-kill")


def test_empty_history() -> None:
    index = HistoryIndex.build([])
    assert index.op_count == 0
    assert index.final is None


def test_overlapping_faults_of_one_nemesis_are_paired_by_what_ends_them() -> None:
    h = HistoryBuilder()
    h.fault("kill", "consumer-1#0", held=["t1"], ends=False)
    h.fault("pause", "consumer-2#0", ends=False)
    h.fault("kill", "consumer-3#0", ends=False)
    h.advance(s=1)
    h.end_fault(restarted="consumer-3#1")
    h.end_fault()  # the resume of the pause
    h.advance(s=1)
    h.end_fault(restarted="consumer-1#1")
    h.fault("pause", "consumer-4#0", ends=False)
    h.end_fault(outcome="info")  # could not be applied: answered at once
    index = build(h)
    by_target = {f.target: f for f in index.faults}
    kill1, pause2, kill3, pause4 = (by_target[f"consumer-{n}#0"] for n in (1, 2, 3, 4))
    assert kill3.end_ns is not None
    assert pause2.end_ns is not None
    assert kill1.end_ns is not None
    assert kill3.end_ns < pause2.end_ns < kill1.end_ns
    assert kill1.held == ("t1",)
    assert pause4.outcome == "info"
    assert [f.outcome for f in (kill1, pause2, kill3)] == ["ok", "ok", "ok"]


def test_fault_never_ended_stays_open() -> None:
    h = HistoryBuilder()
    h.fault("pause", "consumer-1#0", ends=False)
    h.enqueue("p0", ["t1"])
    index = build(h)
    assert index.faults[0].outcome == "open"
    assert index.faults[0].end_ns is None


def test_first_deliveries_include_tasks_delivered_before_their_enqueue_was_answered() -> None:
    h = HistoryBuilder()
    h.invoke("p0", "enqueue", {"tasks": [["t1", 1, 3]], "due_ns": 0})
    h.deliver("c0", [("t1", 1, 0, 1)])  # the consumer was faster than the producer's reply
    h.respond("p0", "enqueue")
    h.enqueue("p0", ["t2"], prio=2)
    h.deliver("c0", [("t2", 2, 0, 2)])
    index = build(h)
    firsts = {f.tid: f for f in index.first_deliveries}
    assert set(firsts) == {"t1", "t2"}
    assert firsts["t1"].enqueue_ok_ns > firsts["t1"].read_ok_ns
    assert firsts["t1"].is_first
    assert not firsts["t2"].is_first


def test_tasks_never_enqueued_are_listed_once() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1"])
    h.deliver("c0", [("t1", 2, 0, 1), ("ghost", 2, 0, 1)])
    h.complete("c0", ["t1", "ghost", "phantom"])
    h.complete("c0", ["phantom"])
    index = build(h)
    assert sorted(index.never_enqueued) == ["ghost", "phantom"]


def test_delivered_tasks_carry_budget_digest_and_errors_when_journaled() -> None:
    h = HistoryBuilder()
    h.enqueue("p0", ["t1", "t2", "t3"])
    h.deliver("c0", [("t1", 2, 0, 1), ("t2", 2, 0, 1, "t2"), ("x9", 2, 1, 1, "t3", 3, "ab12cd34", 1)])
    index = build(h)
    old, renamed_only, new = index.deliveries["t1"][0], index.deliveries["t2"][0], index.deliveries["t3"][0]
    assert (old.max_retries, old.digest, old.errors) == (None, None, None)
    assert (renamed_only.max_retries, renamed_only.digest, renamed_only.errors) == (None, None, None)
    assert (new.tid, new.delivered_tid, new.max_retries, new.digest, new.errors) == ("t3", "x9", 3, "ab12cd34", 1)
    assert index.aliases == {"x9": "t3"}


def test_tasks_the_final_read_found_twice_are_listed() -> None:
    h = HistoryBuilder()
    h.final(ready=[("t1", 2), ("t1", 2), ("t2", 1)], pending=[("t3", 0, "c0")], delayed=["t3"],
            dead=[("t4", "retries exhausted: x", 3, 4)])  # fmt: skip
    final = build(h).final
    assert final is not None
    assert final.repeated == ["t1", "t3"]
