"""rq (harness.peers.rq): the adapter reads rq's queues and registries from a real Redis; a short
steady run through `rq worker` is valid; and the abandoned-job finding reproduces from its stored plan
(a SIGKILLed worker's job stays in the StartedJobRegistry until a maintenance run, 600 s later)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

pytest.importorskip("rq", reason="rq is not installed: install the extra 'peers' (harness peers install)")

from rq import Queue
from rq.results import Result
from rq.serializers import JSONSerializer

from harness.adapters.base import QueueOptions, TaskSpec
from harness.peers.rq import VARIANTS, job_id
from harness.providers.local import LocalRedis
from tests.peers.common import checker, harness, verdict_in

pytestmark = pytest.mark.peers
REPO = Path(__file__).resolve().parents[2]
FINDING_PLAN = REPO / "reports" / "findings" / "plans" / "rq-abandoned-until-maintenance.json"


def spec(tid: str, prio: int = 2, max_retries: int = 2) -> TaskSpec:
    return TaskSpec(tid=tid, priority=prio, max_retries=max_retries, payload={"tid": tid, "ms": 0})


async def test_enqueued_jobs_are_ready_then_pending_once_popped(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = VARIANTS["default"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    try:
        await adapter.enqueue([spec("t1"), spec("t2", prio=0)])
        assert (await adapter.depth())["ready"] == 2
        with redis.Redis.from_url(redis_server.url) as connection:
            queue = Queue(queue_name, connection=connection, serializer=JSONSerializer())
            # What a worker does first: BLMOVE into the intermediate list (one queue).
            popped = Queue.dequeue_any([queue], None, connection=connection, serializer=JSONSerializer())
            assert popped is not None and popped[0].id == job_id(queue_name, "t1")
        depth = await adapter.depth()
        assert (depth["ready"], depth["pending"]) == (1, 1)
        final = await adapter.final_state()
        assert final.ready == [("t2", 0)]
        assert final.pending == [("t1", 2, "intermediate")]
    finally:
        await adapter.close()


async def test_a_failed_job_is_dead_with_its_error(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = VARIANTS["default"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    try:
        await adapter.enqueue([spec("t1"), spec("t2")])
        with redis.Redis.from_url(redis_server.url) as connection:
            queue = Queue(queue_name, connection=connection, serializer=JSONSerializer())
            for tid, left in (("t1", 0), ("t2", 1)):
                job = queue.fetch_job(job_id(queue_name, tid))
                assert job is not None
                queue.remove(job)
                job.retries_left = left
                error = f"Traceback ...\nharness.hosted.handler.PlannedFailure: planned failure of attempt {2 - left}"
                # What rq's worker does with a job that failed for good (Job._handle_failure).
                queue.failed_job_registry.add(job, exc_string=error)
                Result.create_failure(job, ttl=None, exc_string=error)
        depth = await adapter.depth()
        assert (depth["ready"], depth["dead"]) == (0, 2)
        dead = {entry[0]: entry for entry in (await adapter.final_state()).dead}
        assert dead["t1"] == ("t1", "retries exhausted: harness.hosted.handler.PlannedFailure: planned failure of "
                              "attempt 2", 2, -1)  # fmt: skip
        assert not dead["t2"][1].startswith("retries exhausted") and dead["t2"][2] == 1
    finally:
        await adapter.close()


async def test_priorities_go_to_one_queue_each(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = VARIANTS["priorities"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    try:
        await adapter.enqueue([spec(f"t{prio}", prio) for prio in (3, 1, 0, 2)])
        with redis.Redis.from_url(redis_server.url) as connection:
            lengths = [connection.llen(f"rq:queue:{queue_name}-p{prio}") for prio in range(4)]
        assert lengths == [1, 1, 1, 1]
        assert sorted((await adapter.final_state()).ready) == [("t0", 0), ("t1", 1), ("t2", 2), ("t3", 3)]
        assert adapter.worker  # the multi-queue worker lists them in priority order
    finally:
        await adapter.close()


def test_a_short_steady_run_is_valid(tmp_path: Path) -> None:
    # rq runs one job at a time per worker and forks for each: a rate it sustains on a shared machine.
    done = harness("run", "steady", "--queue", "peer:rq", "--duration", "3", "--rate", "60", "--seed", "1",
                   "--drain-timeout", "60", "--out", str(tmp_path))  # fmt: skip
    verdict = verdict_in(tmp_path)
    assert (done.returncode, verdict["valid"]) == (0, True), done.stderr[-3000:]
    delivery = checker(verdict, "delivery")["figures"]
    assert delivery["completed"] == delivery["enqueued_ok"] > 0


def test_the_abandoned_job_finding_reproduces(tmp_path: Path) -> None:
    done = harness("replay", str(FINDING_PLAN), "--out", str(tmp_path))
    verdict = verdict_in(tmp_path)
    assert (done.returncode, verdict["valid"]) == (1, False), done.stderr[-3000:]
    assert checker(verdict, "leaks")["figures"]["pending"] >= 1
    assert checker(verdict, "delivery")["figures"]["stuck"] >= 1
