"""The seed queue's eleven behaviours, each a test, written against the seed's API."""

from __future__ import annotations

import asyncio

from taskq import Task, TaskPriority, TaskQueue, Worker, WorkerSettings
from tests.conftest import QueueFactory

TIMEOUT_S = 5.0


async def take(queue: TaskQueue, worker_id: str, n: int) -> list[tuple[str, Task]]:
    """The first n (receipt, task) pairs consume_tasks yields, within a deadline."""

    async def collect() -> list[tuple[str, Task]]:
        got: list[tuple[str, Task]] = []
        async for message_id, task in queue.consume_tasks(worker_id):
            got.append((message_id, task))
            if len(got) == n:
                break
        return got

    return await asyncio.wait_for(collect(), TIMEOUT_S)


async def test_basic_add_consume(queue: TaskQueue) -> None:
    task_id = await queue.add_task("email", {"to": "a@example.com"}, max_retries=2, timeout=7.5)
    [(message_id, task)] = await take(queue, "w1", 1)
    assert (task.task_id, task.task_type, task.payload) == (task_id, "email", {"to": "a@example.com"})
    assert (task.priority, task.max_retries, task.timeout, task.retry_count) == (TaskPriority.NORMAL, 2, 7.5, 0)
    assert task.created_at > 0
    await queue.complete_task(message_id)
    assert (await queue.get_queue_stats())["tasks_completed"] == 1


async def test_priority_ordering(queue: TaskQueue) -> None:
    for priority in (TaskPriority.LOW, TaskPriority.NORMAL, TaskPriority.HIGH, TaskPriority.CRITICAL):
        await queue.add_task("job", {"p": priority.name}, priority=priority)
    got = await take(queue, "w1", 4)
    assert [task.payload["p"] for _, task in got] == ["CRITICAL", "HIGH", "NORMAL", "LOW"]


async def test_multiple_consumers(queue: TaskQueue, make_queue: QueueFactory) -> None:
    other = make_queue()
    await other.connect()
    ids = {await queue.add_task("job", {"i": i}) for i in range(10)}
    done: dict[str, list[str]] = {"w1": [], "w2": []}
    all_done = asyncio.Event()

    async def work(q: TaskQueue, worker_id: str) -> None:
        async for message_id, task in q.consume_tasks(worker_id):
            await q.complete_task(message_id)
            done[worker_id].append(task.task_id)
            if sum(map(len, done.values())) == 10:
                all_done.set()

    workers = [asyncio.create_task(work(queue, "w1")), asyncio.create_task(work(other, "w2"))]
    await asyncio.wait_for(all_done.wait(), TIMEOUT_S)
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    assert set(done["w1"]).isdisjoint(done["w2"])
    assert set(done["w1"]) | set(done["w2"]) == ids


async def test_task_failure_and_retry(queue: TaskQueue) -> None:
    task_id = await queue.add_task("job", {}, max_retries=3)
    [(message_id, task)] = await take(queue, "w1", 1)
    await queue.fail_task(message_id, "boom", task)
    [(_, retried)] = await take(queue, "w1", 1)
    assert retried.task_id == task_id
    assert retried.retry_count == 1
    assert retried.errors[0]["error"] == "boom"


async def test_dead_letter_queue(queue: TaskQueue) -> None:
    task_id = await queue.add_task("job", {"x": 1}, max_retries=1)
    for attempt in range(2):
        [(message_id, task)] = await take(queue, "w1", 1)
        await queue.fail_task(message_id, f"error {attempt}", task)
    [dead] = await queue.dlq.entries()
    assert dead.task is not None and dead.task.task_id == task_id
    assert [e["error"] for e in dead.errors] == ["error 0", "error 1"]
    stats = await queue.get_queue_stats()
    assert (stats["dlq_length"], stats["tasks_dead"], stats["tasks_failed"]) == (1, 1, 2)


async def test_pending_recovery(make_queue: QueueFactory) -> None:
    queue = make_queue(pending_timeout=0.2)
    await queue.connect()
    task_id = await queue.add_task("job", {})
    [(_, abandoned)] = await take(queue, "crashed-worker", 1)  # read, never settled
    [(message_id, recovered)] = await take(queue, "w2", 1)
    assert recovered.task_id == abandoned.task_id == task_id
    await queue.complete_task(message_id)
    stats = await queue.get_queue_stats()
    assert (stats["tasks_recovered"], stats["tasks_completed"], stats["total_pending"]) == (1, 1, 0)


async def test_queue_statistics(queue: TaskQueue) -> None:
    empty = await queue.get_queue_stats()  # nothing exists yet: every figure reads zero
    assert empty["tasks_added"] == empty["dlq_length"] == empty["delayed"] == empty["total_ready"] == 0
    await queue.add_task("job", {}, priority=TaskPriority.HIGH)
    await queue.add_task("job", {}, priority=TaskPriority.LOW)
    stats = await queue.get_queue_stats()
    assert stats["tasks_added"] == 2
    assert stats["ready"] == {"CRITICAL": 0, "HIGH": 1, "NORMAL": 0, "LOW": 1}


async def test_task_timeout(queue: TaskQueue) -> None:
    async def slow(task: Task) -> None:
        await asyncio.sleep(10)

    await queue.add_task("slow", {}, max_retries=0, timeout=0.1)
    worker = Worker(queue, {"slow": slow}, WorkerSettings(concurrency=1))
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while not await queue.dlq.length():
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await asyncio.wait_for(running, TIMEOUT_S)
    [dead] = await queue.dlq.entries()
    assert "timed out after 0.1s" in dead.errors[0]["error"]


async def test_concurrent_producers(queue: TaskQueue, make_queue: QueueFactory) -> None:
    producers = [make_queue() for _ in range(5)]
    for producer in producers:
        await producer.connect()

    async def produce(q: TaskQueue, n: int) -> list[str]:
        return [await q.add_task("job", {"n": i}) for i in range(n)]

    ids = [i for batch in await asyncio.gather(*(produce(p, 20) for p in producers)) for i in batch]
    assert len(set(ids)) == 100
    got = await take(queue, "w1", 100)
    assert {task.task_id for _, task in got} == set(ids)
    assert (await queue.get_queue_stats())["tasks_added"] == 100


async def test_batch_consumption(queue: TaskQueue) -> None:
    await queue.add_tasks([Task(f"t{i}", "job", {"i": i}) for i in range(25)])
    sizes = []
    while batch := await queue.read("w1", 10, block_ms=0):
        sizes.append(len(batch))
        await queue.ack([d.receipt for d in batch])
    assert sizes == [10, 10, 5]


async def test_full_workflow(queue: TaskQueue) -> None:
    for i, priority in enumerate(TaskPriority):
        await queue.add_task("job", {"i": i}, priority=priority, max_retries=1)
    got = await take(queue, "w1", 4)
    await queue.fail_task(got[0][0], "transient")
    for message_id, _ in got[1:]:
        await queue.complete_task(message_id)
    [(message_id, _)] = await take(queue, "w1", 1)
    await queue.complete_task(message_id)
    stats = await queue.get_queue_stats()
    assert stats["tasks_completed"] == 4 and stats["tasks_retried"] == 1
    assert stats["total_ready"] == stats["total_pending"] == stats["delayed"] == 0
    for stream in queue.keys.streams:  # settled entries are deleted, not just acked
        assert await queue.redis.xlen(stream) == 0
