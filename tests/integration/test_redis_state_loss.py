"""Redis restarted, flushed, or its consumer group deleted under a running worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness.providers.local import LocalRedis
from taskq import Task, TaskQueue, Worker, WorkerSettings
from tests.integration.workers import RunningWorker, add_retrying, eventually


@pytest.fixture
async def own_queue(own_redis: LocalRedis, queue_name: str) -> AsyncIterator[TaskQueue]:
    queue = TaskQueue(own_redis.url, name=queue_name, pending_timeout=0.5, retry_base_delay=0)
    await queue.connect()
    yield queue
    await queue.disconnect()


def recording_worker(queue: TaskQueue, seen: list[str]) -> Worker:
    async def record(task: Task) -> None:
        seen.append(task.task_id)

    return Worker(queue, {"job": record}, WorkerSettings(concurrency=4, reconnect_max_delay_s=0.2))


async def test_worker_carries_on_after_redis_restart_without_persistence(
    own_redis: LocalRedis, own_queue: TaskQueue, queue_name: str
) -> None:
    worker_queue = TaskQueue(own_redis.url, name=queue_name, pending_timeout=0.5)
    await worker_queue.connect()
    seen: list[str] = []
    async with RunningWorker(recording_worker(worker_queue, seen)):
        await own_queue.add_tasks([Task(f"before-{i}", "job", {}) for i in range(5)])
        await eventually(lambda: _settled(own_queue, seen, 5), what="the first tasks run and acked")
        own_redis.restart()  # everything is gone: streams, group, Functions library
        await add_retrying(own_queue, [Task(f"after-{i}", "job", {}) for i in range(5)])
        await eventually(lambda: _settled(own_queue, seen, 10), what="tasks after the restart run and acked")
    await worker_queue.disconnect()
    assert sorted(seen) == sorted([f"before-{i}" for i in range(5)] + [f"after-{i}" for i in range(5)])
    assert worker_queue.events["redis_restarted"] == 1


async def test_worker_carries_on_after_flushall(own_redis: LocalRedis, own_queue: TaskQueue) -> None:
    seen: list[str] = []
    async with RunningWorker(recording_worker(own_queue, seen)):
        await own_queue.add_tasks([Task(f"a{i}", "job", {}) for i in range(3)])
        await eventually(lambda: _settled(own_queue, seen, 3), what="the first tasks run and acked")
        await own_queue.redis.flushall()
        await own_queue.redis.function_flush()
        await own_queue.add_tasks([Task(f"b{i}", "job", {}) for i in range(3)])
        await eventually(lambda: _settled(own_queue, seen, 6), what="tasks after FLUSHALL run and acked")
    # Each ran once: the flush lost no task enqueued after it, and the rebuild ran none of them twice.
    assert sorted(seen) == [f"{p}{i}" for p in "ab" for i in range(3)]
    assert own_queue.library.reloads >= 1


async def test_consumer_group_deleted_under_running_worker(queue: TaskQueue) -> None:
    seen: list[str] = []
    async with RunningWorker(recording_worker(queue, seen)):
        await queue.add_tasks([Task(f"a{i}", "job", {}) for i in range(3)])
        await eventually(lambda: _settled(queue, seen, 3), what="the first tasks run and acked")
        for stream in queue.keys.streams:
            await queue.redis.xgroup_destroy(stream, queue.settings.group)
        await queue.add_tasks([Task(f"b{i}", "job", {}) for i in range(3)])
        await eventually(lambda: _settled(queue, seen, 6), what="tasks after the group was deleted run and acked")
    # The recreated group starts where it must: the acked tasks (deleted) are not run again, the new ones once.
    assert sorted(seen) == [f"{p}{i}" for p in "ab" for i in range(3)]
    stats = await queue.get_queue_stats()
    assert stats["groups_recreated"] >= 1
    assert stats["total_pending"] == stats["total_ready"] == 0


async def _settled(queue: TaskQueue, seen: list[str], n: int) -> bool:
    """At least n runs, and nothing left to run: a task run twice would show in `seen` by now."""
    if len(seen) < n:
        return False
    stats = await queue.get_queue_stats()
    return bool(stats["total_ready"] == stats["total_pending"] == stats["delayed"] == 0)
