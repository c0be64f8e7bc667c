"""huey (harness.peers.huey): the adapter reads huey's Redis structures from a real Redis, through huey's
JSON-serialized messages; a short steady run through `huey_consumer` is valid; and the finding that a
killed consumer loses the tasks it popped reproduces from its stored plan."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("huey", reason="huey is not installed: install the extra 'peers' (harness peers install)")

from huey.utils import Error

from harness.adapters.base import QueueOptions, TaskSpec
from harness.hosted.handler import PlannedFailure
from harness.peers.huey import VARIANTS, HueySettings, make_huey
from harness.providers.local import LocalRedis
from tests.peers.common import checker, harness, verdict_in

pytestmark = pytest.mark.peers
REPO = Path(__file__).resolve().parents[2]
FINDING_PLAN = REPO / "reports" / "findings" / "plans" / "huey-killed-consumer-loses-tasks.json"


def spec(tid: str, prio: int = 2, max_retries: int = 2) -> TaskSpec:
    return TaskSpec(tid=tid, priority=prio, max_retries=max_retries, payload={"tid": tid, "ms": 0})


async def test_enqueued_tasks_are_ready_and_a_popped_one_is_nowhere(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = VARIANTS["default"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    worker, _ = make_huey(queue_name, HueySettings(), url=redis_server.url)
    try:
        await adapter.enqueue([spec("t1", prio=1), spec("t2", prio=0)])
        assert (await adapter.depth())["ready"] == 2
        assert sorted((await adapter.final_state()).ready) == [("t1", 1), ("t2", 0)]
        # What a worker thread does first: BRPOP. Nothing in Redis holds the task after that.
        popped = worker.dequeue()
        assert popped.id == "t1" and popped.retries == 2 and popped.args[0]["tid"] == "t1"
        depth = await adapter.depth()
        assert (depth["ready"], depth["pending"], depth["delayed"]) == (1, 0, 0)
        final = await adapter.final_state()
        assert (final.ready, final.pending, final.delayed) == ([("t2", 0)], [], [])
    finally:
        worker.storage.conn.close()
        await adapter.close()


async def test_priorities_pop_the_highest_first(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = VARIANTS["priorities"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    worker, _ = make_huey(queue_name, HueySettings(priorities=True), url=redis_server.url)
    try:
        await adapter.enqueue([spec(f"t{prio}", prio) for prio in (3, 1, 0, 2)])
        assert [worker.dequeue().id for _ in range(4)] == ["t0", "t1", "t2", "t3"]
    finally:
        worker.storage.conn.close()
        await adapter.close()


async def test_a_task_out_of_retries_is_dead_and_an_earlier_error_is_not(
    redis_server: LocalRedis, queue_name: str
) -> None:
    adapter = VARIANTS["default"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    worker, _ = make_huey(queue_name, HueySettings(), url=redis_server.url)
    try:
        await adapter.enqueue([spec("t1", max_retries=1), spec("t2", max_retries=1)])
        for left in (0, 1):
            task = worker.dequeue()
            task.retries = left
            # What huey's execute() stores for a task that raised (api.py Huey._execute).
            worker.put_result(task.id, Error(worker.build_error_result(task, PlannedFailure("planned failure"))))
        assert (await adapter.depth())["dead"] == 1
        (dead,) = (await adapter.final_state()).dead
        assert dead == ("t1", "retries exhausted: PlannedFailure('planned failure')", -1, -1)
    finally:
        worker.storage.conn.close()
        await adapter.close()


def test_a_short_steady_run_is_valid(tmp_path: Path) -> None:
    done = harness("run", "steady", "--queue", "peer:huey", "--duration", "3", "--tasks", "1000", "--seed", "1",
                   "--out", str(tmp_path))  # fmt: skip
    verdict = verdict_in(tmp_path)
    assert (done.returncode, verdict["valid"]) == (0, True), done.stderr[-3000:]
    assert checker(verdict, "delivery")["figures"]["completed"] == 1000


def test_the_killed_consumer_finding_reproduces(tmp_path: Path) -> None:
    """A SIGKILLed consumer's popped tasks are gone: huey has no acknowledgement (documented at-most-once)."""
    done = harness("replay", str(FINDING_PLAN), "--out", str(tmp_path))
    verdict = verdict_in(tmp_path)
    assert (done.returncode, verdict["valid"]) == (1, False), done.stderr[-3000:]
    assert checker(verdict, "delivery")["figures"]["lost"] >= 1
    assert verdict["promises"]["delivery"] == "at-most-once"
