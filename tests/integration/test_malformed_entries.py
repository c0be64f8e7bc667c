"""Entries taskq did not write (or that got corrupted) never reach a handler and never block the queue.

Each bad entry is dead-lettered verbatim on its first read, with the decode error as
its reason, and the DLQ will not requeue it (it could never run).
"""

from __future__ import annotations

import asyncio

import pytest

from taskq import DeadLetter, Outcome, Task, TaskQueue, Worker, WorkerSettings
from taskq.task import encode_task
from tests.integration.workers import RunningWorker, eventually


def good_fields(**overrides: bytes | None) -> dict[str, bytes]:
    fields = encode_task(Task("bad-1", "job", {"n": 1}), b"j", 1 << 20)
    values = {str(k): v.encode() if isinstance(v, str) else v for k, v in zip(fields[::2], fields[1::2])}
    for name, value in overrides.items():
        if value is None:
            del values[name]
        else:
            values[name] = value
    return values


# Each bad entry, and the words its DLQ reason must contain.
BAD_ENTRIES: list[tuple[str, dict[str, bytes], str]] = [
    ("unrelated", {"event": b"click", "user": b"42"}, "entry has no 'id' field"),
    ("truncated", good_fields(data=None), "entry has no 'data' field"),
    ("bad json", good_fields(data=b'{"n": 1'), "payload is not valid JSON"),
    ("bad utf-8", good_fields(type=b"\xff\xfejob"), "malformed field"),
    ("unknown codec", good_fields(enc=b"z"), "unknown payload encoding tag b'z'"),
]


async def add_bad_entries(queue: TaskQueue) -> list[str]:
    """XADD every bad entry straight into the NORMAL stream; returns their entry ids."""
    ids = []
    for _, fields, _ in BAD_ENTRIES:
        entry_id = await queue.redis.xadd(queue.keys.stream(2), fields)  # type: ignore[arg-type]
        ids.append(entry_id.decode())
    return ids


async def check_dead_letters(queue: TaskQueue, entry_ids: list[str]) -> list[DeadLetter]:
    dead = await queue.dlq.entries()
    assert len(dead) == len(BAD_ENTRIES)
    by_origin = {d.origin_entry_id: d for d in dead}
    assert set(by_origin) == set(entry_ids)
    for entry_id, (what, fields, reason) in zip(entry_ids, BAD_ENTRIES):
        letter = by_origin[entry_id]
        assert letter.reason.startswith("malformed entry: "), what
        assert reason in letter.reason, what
        assert letter.task is None, what
        assert letter.raw == fields, f"{what}: the entry is kept verbatim"
        assert letter.priority == 2, what
        assert letter.dead_at_ms > 0, what
    return dead


async def test_read_delivers_only_the_good_task_and_buries_the_rest(queue: TaskQueue) -> None:
    bad_ids = await add_bad_entries(queue)
    task_id = await queue.add_task("job", {"ok": True})
    [delivery] = await queue.read("w", 10, block_ms=0)
    assert (delivery.task.task_id, delivery.task.payload) == (task_id, {"ok": True})
    await check_dead_letters(queue, bad_ids)
    stats = await queue.stats()
    assert (stats.dead, stats.counters["tasks_dead"], stats.total_pending) == (5, 5, 1)
    assert await queue.redis.xlen(queue.keys.stream(2)) == 1  # only the good, pending task
    assert await queue.ack([delivery.receipt]) == [Outcome.DONE]


async def test_batch_of_only_bad_entries_returns_nothing_then_reads_on(queue: TaskQueue) -> None:
    await add_bad_entries(queue)
    assert await queue.read("w", 10, block_ms=0) == []
    assert await queue.dlq.length() == 5
    await queue.add_task("job", {})
    assert len(await queue.read("w", 10, block_ms=0)) == 1


async def test_blocking_read_buries_bad_entries_that_arrive_while_waiting(queue: TaskQueue) -> None:
    async def write_later() -> None:
        async def reader_blocked() -> bool:
            clients = await queue.redis.client_list()
            return any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in clients)

        await eventually(reader_blocked, timeout_s=5, what="the read blocked in XREADGROUP")
        await queue.redis.xadd(queue.keys.stream(2), {"event": "click"})

    writer = asyncio.create_task(write_later())
    assert await queue.read("w", 10, block_ms=2000) == []
    await writer
    [dead] = await queue.dlq.entries()
    assert dead.raw == {"event": b"click"} and "no 'id' field" in dead.reason


async def test_consume_tasks_yields_only_the_good_task(queue: TaskQueue) -> None:
    bad_ids = await add_bad_entries(queue)
    task_id = await queue.add_task("job", {"ok": True})

    async def first() -> tuple[str, Task]:
        async for message_id, task in queue.consume_tasks("w"):
            return message_id, task
        raise AssertionError("consume_tasks ended")

    message_id, task = await asyncio.wait_for(first(), 5)
    assert task.task_id == task_id
    await queue.complete_task(message_id)
    await check_dead_letters(queue, bad_ids)
    stats = await queue.stats()
    assert (stats.total_ready, stats.total_pending) == (0, 0)


async def test_dlq_never_requeues_a_malformed_entry(queue: TaskQueue) -> None:
    bad_ids = await add_bad_entries(queue)
    assert await queue.read("w", 10, block_ms=0) == []
    dead = await check_dead_letters(queue, bad_ids)
    for letter in dead:  # by id, one at a time
        assert await queue.dlq.requeue([letter.entry_id]) == 0, letter.reason
    assert await queue.dlq.requeue() == 0  # and all at once
    assert await queue.dlq.length() == 5
    stats = await queue.stats()
    assert (stats.total_ready, stats.total_pending) == (0, 0)
    assert await queue.read("w", 10, block_ms=0) == []


async def test_worker_keeps_running_through_bad_entries(queue: TaskQueue) -> None:
    seen: list[str] = []

    async def job(task: Task) -> None:
        seen.append(task.task_id)

    worker = Worker(queue, {"job": job}, WorkerSettings(concurrency=2))
    async with RunningWorker(worker) as running:
        await add_bad_entries(queue)
        first = await queue.add_task("job", {})
        await eventually(lambda: _has(seen, first), timeout_s=5, what="the good task ran")
        await add_bad_entries(queue)  # and again while it runs
        second = await queue.add_task("job", {})
        await eventually(lambda: _has(seen, second), timeout_s=5, what="the worker carried on")
        assert await queue.dlq.length() == 10
    assert seen == [first, second]
    assert running.counts["done"] == 2
    assert (await queue.stats()).total_pending == 0


@pytest.mark.parametrize("max_retries", [0, 1])
async def test_unknown_task_type_is_a_failed_attempt_ending_in_the_dlq(queue: TaskQueue, max_retries: int) -> None:
    async def job(task: Task) -> None:
        pass

    task_id = await queue.add_task("mystery", {"x": 1}, max_retries=max_retries)
    worker = Worker(queue, {"job": job}, WorkerSettings(concurrency=1))
    async with RunningWorker(worker):
        await eventually(queue.dlq.length, timeout_s=5, what="the task was dead-lettered")  # type: ignore[arg-type]
    [dead] = await queue.dlq.entries()
    assert dead.task is not None and dead.task.task_id == task_id and dead.task.payload == {"x": 1}
    assert dead.reason.startswith("retries exhausted: no handler for task type 'mystery'")
    assert "'job'" in dead.reason  # says which types this worker handles
    assert len(dead.errors) == max_retries + 1
    assert all("no handler for task type 'mystery'" in e["error"] for e in dead.errors)
    stats = await queue.stats()
    assert (stats.counters["tasks_failed"], stats.counters["tasks_retried"]) == (max_retries + 1, max_retries)
    assert worker.counts["dead"] == 1


async def _has(seen: list[str], task_id: str) -> bool:
    return task_id in seen
