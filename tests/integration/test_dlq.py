"""The dead-letter queue: list, get, find, requeue with a fresh budget, purge, and the error history."""

from __future__ import annotations

import pytest

from taskq import ConfigError, DeadLetter, Outcome, TaskPriority, TaskQueue


async def kill(queue: TaskQueue, task_type: str = "job", payload: object = None, **options: object) -> str:
    """Add a task and fail it until it is dead; returns its task id."""
    task_id = await queue.add_task(task_type, payload if payload is not None else {}, **options)  # type: ignore[arg-type]
    for attempt in range(100):
        [delivery] = await queue.read(f"w{attempt}", block_ms=0)
        assert delivery.task.task_id == task_id
        if await queue.fail_task(delivery.receipt, f"{task_type} error {attempt + 1}") is Outcome.DEAD:
            return task_id
    raise AssertionError("the task never died")


async def test_every_attempt_error_is_recorded_in_order(queue: TaskQueue) -> None:
    task_id = await kill(queue, max_retries=3)
    [dead] = await queue.dlq.entries()
    assert dead.task is not None and dead.task.task_id == task_id
    assert dead.task.retry_count == 3
    assert [e["attempt"] for e in dead.errors] == [1, 2, 3, 4]
    assert [e["error"] for e in dead.errors] == ["job error 1", "job error 2", "job error 3", "job error 4"]
    assert [e["consumer"] for e in dead.errors] == ["w0", "w1", "w2", "w3"]
    at = [e["at_ms"] for e in dead.errors]
    assert at == sorted(at) and at[0] > 0
    assert dead.reason == "retries exhausted: job error 4"
    stats = await queue.stats()
    assert (stats.counters["tasks_failed"], stats.counters["tasks_retried"], stats.counters["tasks_dead"]) == (4, 3, 1)
    assert (stats.dead, stats.total_ready, stats.total_pending, stats.delayed) == (1, 0, 0, 0)


async def test_long_non_ascii_error_is_cut_and_the_task_still_retries(queue: TaskQueue) -> None:
    # 2000 bytes is where errors are cut; "é" is two bytes, so a cut at 2000 after an odd
    # prefix splits one in half. The task must still be readable on its retry.
    message = "x" + "é" * 1500
    task_id = await queue.add_task("job", {}, max_retries=1)
    [first] = await queue.read("w", block_ms=0)
    assert await queue.fail_task(first.receipt, message) is Outcome.RETRIED
    [again] = await queue.read("w", block_ms=0)
    assert again.task.task_id == task_id
    [error] = again.task.errors
    assert len(error["error"].encode()) <= 2000
    assert message.startswith(error["error"]) and len(error["error"]) > 900
    assert await queue.fail_task(again.receipt, message) is Outcome.DEAD
    [dead] = await queue.dlq.entries()
    assert dead.task is not None and len(dead.errors) == 2
    assert await queue.dlq.find(task_id) == [dead]


async def test_list_is_oldest_first_and_pages(queue: TaskQueue) -> None:
    ids = [await kill(queue, payload={"i": i}, max_retries=0) for i in range(5)]
    listed = await queue.dlq.entries()
    assert [d.task.task_id for d in listed if d.task] == ids
    assert [d.entry_id for d in await queue.dlq.entries(2)] == [d.entry_id for d in listed[:2]]
    rest = await queue.dlq.entries(10, start="(" + listed[1].entry_id)
    assert [d.entry_id for d in rest] == [d.entry_id for d in listed[2:]]
    assert await queue.dlq.all() == listed
    assert await queue.dlq.length() == 5


async def test_get_returns_one_entry(queue: TaskQueue) -> None:
    task_id = await queue.add_task("report", {"month": 3}, priority=TaskPriority.HIGH, max_retries=0)
    [delivery] = await queue.read("w", block_ms=0)
    assert await queue.fail_task(delivery.receipt, "broken") is Outcome.DEAD
    [listed] = await queue.dlq.entries()
    got = await queue.dlq.get(listed.entry_id)
    assert got == listed
    assert got is not None and got.task is not None
    assert (got.task.task_id, got.task.task_type, got.task.payload) == (task_id, "report", {"month": 3})
    assert got.priority == TaskPriority.HIGH
    assert got.origin_entry_id == delivery.receipt.entry_id
    assert got.reason == "retries exhausted: broken"
    assert await queue.dlq.get("0-1") is None


@pytest.mark.parametrize("bad_id", ["nope", "", "1-x", "$"])
async def test_get_or_requeue_with_a_malformed_id_is_a_config_error(queue: TaskQueue, bad_id: str) -> None:
    with pytest.raises(ConfigError, match="is not a DLQ entry id"):
        await queue.dlq.get(bad_id)
    with pytest.raises(ConfigError, match="is not a DLQ entry id"):
        await queue.dlq.requeue([bad_id])


async def test_find_by_task_id(queue: TaskQueue) -> None:
    wanted = await kill(queue, max_retries=0)
    other = await kill(queue, max_retries=0)
    [found] = await queue.dlq.find(wanted)
    assert found.task is not None and found.task.task_id == wanted
    [found_other] = await queue.dlq.find(other)
    assert found_other.entry_id != found.entry_id
    assert await queue.dlq.find("no-such-task") == []


async def test_requeue_gives_a_fresh_retry_budget(queue: TaskQueue) -> None:
    task_id = await kill(queue, "job", {"keep": "me"}, priority=TaskPriority.LOW, max_retries=1, timeout=4.0)
    await kill(queue, max_retries=0)  # another dead task that stays
    dead = await queue.dlq.find(task_id)
    assert await queue.dlq.requeue([dead[0].entry_id]) == 1
    assert await queue.dlq.length() == 1
    assert await queue.dlq.find(task_id) == []

    [delivery] = await queue.read("w", block_ms=0)
    task = delivery.task
    assert (task.task_id, task.retry_count, task.errors) == (task_id, 0, [])
    assert (task.task_type, task.payload, task.priority) == ("job", {"keep": "me"}, TaskPriority.LOW)
    assert (task.max_retries, task.timeout) == (1, 4.0)
    assert delivery.receipt.priority == TaskPriority.LOW
    # The budget is whole again: one failure is retried, not dead-lettered.
    assert await queue.fail_task(delivery.receipt, "again") is Outcome.RETRIED
    [retried] = await queue.read("w", block_ms=0)
    assert retried.task.retry_count == 1 and [e["error"] for e in retried.task.errors] == ["again"]


async def test_requeue_of_a_missing_entry_does_nothing(queue: TaskQueue) -> None:
    await kill(queue, max_retries=0)
    [dead] = await queue.dlq.entries()
    assert await queue.dlq.requeue([dead.entry_id]) == 1
    assert await queue.dlq.requeue([dead.entry_id]) == 0  # already requeued
    assert await queue.dlq.requeue(["0-1"]) == 0
    assert await queue.dlq.requeue([]) == 0
    assert (await queue.stats()).total_ready == 1


async def test_requeue_all(queue: TaskQueue) -> None:
    ids = {await kill(queue, payload={"i": i}, priority=i % 4, max_retries=0) for i in range(6)}
    assert await queue.dlq.requeue() == 6
    assert await queue.dlq.length() == 0
    delivered = await queue.read("w", 10, block_ms=0)
    assert {d.task.task_id for d in delivered} == ids
    assert all(d.task.retry_count == 0 for d in delivered)
    assert [d.receipt.priority for d in delivered] == sorted(d.receipt.priority for d in delivered)
    assert await queue.dlq.requeue() == 0


async def test_purge_deletes_everything_and_counts_it(queue: TaskQueue) -> None:
    for _ in range(3):
        await kill(queue, max_retries=0)
    assert await queue.dlq.purge() == 3
    assert await queue.dlq.length() == 0
    assert await queue.dlq.entries() == []
    assert (await queue.stats()).dead == 0
    assert await queue.dlq.purge() == 0


async def test_dead_letter_fields(queue: TaskQueue) -> None:
    await kill(queue, max_retries=0)
    [dead] = await queue.dlq.entries()
    assert isinstance(dead, DeadLetter)
    seconds, _ = await queue.redis.time()
    assert abs(dead.dead_at_ms / 1000 - seconds) < 60
    assert dead.raw is None
