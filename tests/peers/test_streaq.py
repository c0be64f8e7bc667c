"""streaq under the harness: the adapter against a real redis-server, the library's own mechanism behind
the overwritten-result finding, and short runs through `harness run` / `harness replay`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streaq", reason="streaq is not installed: pip install -e '.[peers]'")

from streaq import Worker
from streaq.constants import REDIS_GROUP
from streaq.types import StreamMessage

from harness.adapters.base import QueueOptions, TaskSpec
from harness.peers.streaq import TASK_NAME, VARIANTS, StreaqAdapter, deserialize_json, serialize_json
from harness.providers.local import LocalRedis
from tests.peers.common import figures, invalid_checkers, run_for_verdict

pytestmark = pytest.mark.peers
REPO = Path(__file__).resolve().parents[2]
FINDINGS = REPO / "reports" / "findings" / "plans"


def spec(n: int) -> TaskSpec:
    tid = f"t{n}"
    return TaskSpec(tid=tid, priority=n % 4, max_retries=2, payload={"tid": tid, "ms": 0})


@contextlib.asynccontextmanager
async def connected(url: str, queue_name: str) -> AsyncIterator[StreaqAdapter]:
    """The adapter, connected and closed in one task (coredis's connection is an anyio task group: a
    pytest fixture would close it from another task)."""
    adapter = VARIANTS["default"]()
    await adapter.connect(url, queue_name, QueueOptions())
    try:
        yield adapter
    finally:
        await adapter.close()


async def read_as(worker: Worker[Any], consumer: str, count: int) -> list[StreamMessage]:
    """What a streaq worker's read does to the stream: XREADGROUP in its group, under its id."""
    stream = worker.stream_key + worker.priorities[-1]
    got = await worker.redis.xreadgroup(REDIS_GROUP, consumer, {stream: ">"}, count=count)
    assert got is not None
    return [
        StreamMessage(message_id=str(entry.identifier), task_id=str(entry.field_values["task_id"]),
                      priority=worker.priorities[-1], enqueue_time=0)
        for entry in got[stream]
    ]  # fmt: skip


async def create_group(worker: Worker[Any]) -> None:
    """As a starting streaq worker does (streaq.lua create_groups): the group at 0."""
    await worker.redis.xgroup_create(worker.stream_key + worker.priorities[-1], REDIS_GROUP, "0", mkstream=True)


async def test_adapter_reads_ready_pending_and_failed_tasks(redis_server: LocalRedis, queue_name: str) -> None:
    async with connected(redis_server.url, queue_name) as client:
        await _adapter_reads_ready_pending_and_failed_tasks(client)


async def _adapter_reads_ready_pending_and_failed_tasks(client: StreaqAdapter) -> None:
    await client.enqueue([spec(n) for n in range(5)])
    assert await client.depth() == {"ready": 5, "pending": 0, "delayed": 0, "dead": 0, "completed": 0}
    worker = client.client
    await create_group(worker)
    held = await read_as(worker, "w1", 2)
    assert (await client.depth())["pending"] == 2
    # The library fails one of them for good (as it does a task whose handler raised).
    await worker.finish_failed_task(held[0], RuntimeError("boom"), 1, 0, fn_name=TASK_NAME)
    final = await client.final_state()
    prios = {f"t{n}": n % 4 for n in range(5)}
    read = {m.task_id for m in held}
    assert sorted(final.ready) == sorted((tid, p) for tid, p in prios.items() if tid not in read)
    assert final.pending == [(held[1].task_id, prios[held[1].task_id], "w1")]
    assert final.dead == [(held[0].task_id, "failed: RuntimeError: boom", 1, -1)]


async def test_a_stale_delivery_of_a_finished_task_rewrites_its_result_as_failed(
    redis_server: LocalRedis, queue_name: str
) -> None:
    """streaq's run_task reads the task's data before it checks that it still owns the entry: a worker that
    read a task, lost it to another by idle_timeout (paused, or slow), and gets to it after the other
    finished it finds the data gone and stores "Task expired!" over the task's successful result."""
    ran: list[str] = []

    async def work(payload: dict[str, Any]) -> None:
        ran.append(str(payload["tid"]))

    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for consumer in ("a", "b"):
            worker: Worker[Any] = Worker(redis_url=redis_server.url, queue_name=queue_name, id=consumer,
                                         serializer=serialize_json, deserializer=deserialize_json)  # fmt: skip
            worker.task(name=TASK_NAME)(work)
            workers.append(await stack.enter_async_context(worker))
        a, b = workers
        task = a.registry[TASK_NAME].enqueue({"tid": "t1"})
        task.id = "t1"
        await task
        await create_group(a)
        (stale,) = await read_as(a, "a", 1)
        # b takes the entry over, as the next read of any worker does once it is idle past idle_timeout.
        await b.redis.xclaim(b.stream_key + "normal", REDIS_GROUP, "b", 0, [stale.message_id], justid=True)
        await b.run_task(stale)
        assert ran == ["t1"]
        assert (await a.result_by_id("t1")).success is True
        await a.run_task(stale)  # a, resumed, gets to the message it read
        assert ran == ["t1"]  # not run again...
        result = await a.result_by_id("t1")
        assert result.success is False  # ...but now reported failed
        assert "Task expired" in str(result.exception)


# -- through `harness run` --------------------------------------------------------------------------


def test_steady_is_valid(tmp_path: Path) -> None:
    verdict = run_for_verdict("run", "steady", "--queue", "peer:streaq", "--duration", "2", "--rate", "600",
                              "--tasks", "1200", "--drain-timeout", "20", "--seed", "3", out=tmp_path)  # fmt: skip
    assert verdict["valid"] is True, invalid_checkers(verdict)
    assert figures(verdict, "delivery")["completed"] == 1200


def test_finding_paused_worker_overwrites_results_reproduces(tmp_path: Path) -> None:
    verdict = run_for_verdict("replay", str(FINDINGS / "streaq-result-overwritten.json"), out=tmp_path)
    assert "dlq" in invalid_checkers(verdict)
    dlq, delivery = figures(verdict, "dlq"), figures(verdict, "delivery")
    assert dlq["dead_and_completed"] > 0
    assert delivery["lost"] == 0 and delivery["duplicated_explained"] > 0
