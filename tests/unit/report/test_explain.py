"""harness explain: one task's life from a history, on planted races and on a plain task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checkers.index import HistoryIndex
from harness.errors import HarnessError
from harness.history import write_history
from harness.report.explain import (
    Trail,
    anomaly_tids,
    enqueue_ops,
    explain,
    fault_hit,
    holding_windows,
    naming,
    story,
    write_stories,
)
from tests.unit.checkers.builder import HistoryBuilder

VERDICT = {"checkers": [
    {"name": "delivery", "anomalies": [{"kind": "duplicated_unexplained", "tid": "t1", "by": ["c1#0", "c2#0"]}]},
    {"name": "order", "anomalies": [{"kind": "fifo_violation", "overtaken": "t2", "overtaker": "t1"}]},
]}  # fmt: skip


def race() -> HistoryBuilder:
    """t1: delivered to c1, c1 paused past its lease, t1 redelivered to c2 who completes it, then c1's late
    ack is refused; t2 plain. A kill of c2 after it settled hits nothing of t1."""
    h = HistoryBuilder()
    h.phase("load")
    h.enqueue("p0.0", ["t1", "t2"], prio=1)
    h.deliver("c1#0", [("t1", 1, 0, 1)])
    h.pause("c1", held=["t1"])
    h.advance(s=1.0)
    h.deliver("c2#0", [("t1", 1, 0, 2), ("t2", 1, 0, 1)])
    h.complete("c2#0", ["t1", "t2"])
    h.resume()
    h.complete("c1#0", ["t1"], refused=["t1"])
    h.kill("c2")
    h.final()
    return h


def test_a_story_tells_the_race_in_order_with_answers_faults_and_the_end() -> None:
    history = race().history()
    index = HistoryIndex.build(history)
    text = story(index, "t1", enqueue_ops(history, {"t1"})["t1"], verdict=VERDICT, folder="run")
    lines = text.splitlines()
    assert lines[0] == "task t1 (priority 1 HIGH, max_retries 3) in run"
    events = [line.split(maxsplit=3) for line in lines[4:10]]  # start, end, process, event
    assert [(e[2], e[3].split(":")[0]) for e in events] == [
        ("p0.0", "enqueue (batch of 2)"),
        ("c1#0", "delivered"),
        ("nemesis", "FAULT pause on c1"),
        ("c2#0", "delivered"),
        ("c2#0", "complete"),
        ("c1#0", "complete"),
    ]
    assert "FAULT pause on c1: its victim held the task when struck" in text
    assert "delivered: attempt 0, delivery 2" in text
    assert "complete: REFUSED (the lease had moved on)" in text
    assert "kill" not in text  # the kill struck c2 after it had settled t1
    assert "final state: gone from the queue" in text
    assert text.rstrip().endswith("anomalies naming it: delivery: duplicated_unexplained; order: fifo_violation")


def test_times_count_from_the_load_phase() -> None:
    history = race().history()
    index = HistoryIndex.build(history)
    text = story(index, "t2", enqueue_ops(history, {"t2"})["t2"], verdict={}, folder="run")
    enqueue_line = next(line for line in text.splitlines() if "enqueue" in line)
    assert enqueue_line.split()[:2] == ["0.001", "0.002"]  # one 1 ms step after the load phase record
    assert "anomalies naming it: none" in text


def test_the_final_state_says_where_a_task_was_left() -> None:
    h = HistoryBuilder()
    h.phase("load")
    h.enqueue("p0.0", ["a", "b", "c", "d"])
    h.deliver("c1#0", [("a", 2, 0, 1)])
    h.fail("c1#0", [("b", 0)], "dead")
    h.final(pending=[("a", 2, "c1-0")], ready=[("c", 2)], delayed=["d"], dead=[("b", "retries exhausted", 3, 4)])
    index = HistoryIndex.build(h.history())
    told = {tid: story(index, tid, [], verdict={}, folder="r") for tid in "abcd"}
    assert "still PENDING (priority 2), held by consumer c1-0" in told["a"]
    assert "dead-lettered (retries exhausted; attempts 3, errors 4)" in told["b"]
    assert "fail attempt 0 ('boom'): dead-lettered" in told["b"]
    assert "still READY (priority 2): never served" in told["c"]
    assert "still DELAYED" in told["d"]


def test_which_faults_touch_a_task() -> None:
    h = HistoryBuilder()
    h.invoke("producer-0.0", "enqueue", {"tasks": [["t", 2, 3]]})
    h.fault("reset", "producers")
    h.respond("producer-0.0", "enqueue")
    h.deliver("consumer-1#0", [("t", 2, 0, 1)])
    h.fault("latency", "consumers")
    h.fault("slow-replies", "producers")
    h.fault("client-pause", "redis")
    h.kill("consumer-2")
    h.complete("consumer-1#0", ["t"])
    h.fault("redis-kill", "redis")
    index = HistoryIndex.build(h.history())
    assert [w[0] for w in holding_windows(index, "t")] == ["consumer-1#0"]
    windows = [(*w, "held the task") for w in holding_windows(index, "t")]
    windows.append(("producer-0.0", index.enqueues["t"].invoke_ns, index.enqueues["t"].ok_ns or 0, "enqueued it"))
    life = (index.enqueues["t"].invoke_ns, index.completions["t"][0].done_ns or 0)
    reasons = {f.kind: fault_hit(f, "t", windows, life, index.fault_end_ns(f)) for f in index.faults}
    assert reasons == {
        "reset": "on the path of producer-0.0 while it enqueued it",
        "latency": "on the path of consumer-1#0 while it held the task",
        "slow-replies": "",  # on the producers, after the task was enqueued
        "client-pause": "Redis was hit while the task was queued or held",
        "kill": "",  # another consumer
        "redis-kill": "",  # after the task was done
    }


def test_anomaly_tids_and_naming() -> None:
    anomaly = {"kind": "inversion", "read_by": "c1", "delivered": ["t3", "t4"], "waiting": "t1", "waited_ms": 3.0}
    assert anomaly_tids(anomaly, {"t1", "t3", "t4"}) == ["t3", "t4", "t1"]
    assert anomaly_tids(anomaly, {"t1"}) == ["t1"]
    assert naming(VERDICT, "t1") == ["delivery: duplicated_unexplained", "order: fifo_violation"]
    assert naming(VERDICT, "t9") == []


def test_explain_reads_a_run_folder_and_refuses_an_unknown_task(tmp_path: Path) -> None:
    write_history(tmp_path / "history.jsonl", race().history())
    (tmp_path / "verdict.json").write_text(json.dumps(VERDICT))
    assert "complete: REFUSED" in explain(tmp_path, "t1")
    with pytest.raises(HarnessError, match=r"task 'nope' is not in the history of .*: task ids there look like t1, t2"):
        explain(tmp_path, "nope")


def test_stories_are_written_for_the_reports_and_linked(tmp_path: Path) -> None:
    history = race().history()
    index = HistoryIndex.build(history)
    written = write_stories(tmp_path, index, history, ["t1", "ghost", "t2"], VERDICT)
    assert written == {"t1": "explain/t1.txt", "t2": "explain/t2.txt"}
    assert (tmp_path / "explain/t1.txt").read_text() == explain_text(tmp_path, history)
    trail = Trail(folder="reports/runs/x", stories=written)
    assert trail.links({"kind": "fifo_violation", "overtaken": "t2", "overtaker": "t1"}) == [
        ("t2", "harness explain reports/runs/x t2", "explain/t2.txt"),
        ("t1", "harness explain reports/runs/x t1", "explain/t1.txt"),
    ]


def explain_text(folder: Path, history: list) -> str:  # type: ignore[type-arg]
    index = HistoryIndex.build(history)
    return story(index, "t1", enqueue_ops(history, {"t1"})["t1"], verdict=VERDICT, folder=folder)
