"""The retry delay taskq.lua computes is taskq.backoff.backoff_ms, and due retries wait for their time.

The queue runs on an injected clock, so due times are exact and no test sleeps.
"""

from __future__ import annotations

import math
import time

import pytest

from taskq import Outcome, TaskQueue
from taskq.backoff import backoff_ms
from tests.conftest import QueueFactory

BASE_MS, MAX_MS = 1000, 5000
ALMOST_ONE = math.nextafter(1.0, 0.0)  # the largest jitter random.random() can draw
NOW_MS = 1_900_000_000_000


class Clock:
    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def timed_queue(make_queue: QueueFactory, clock: Clock) -> TaskQueue:
    queue = make_queue(retry_base_delay=BASE_MS / 1000, retry_max_delay_s=MAX_MS / 1000, clock_ms=clock)
    await queue.connect()
    return queue


async def delayed_scores(queue: TaskQueue) -> list[float]:
    return [score for _, score in await queue.redis.zrange(queue.keys.delayed, 0, -1, withscores=True)]


async def test_retry_delay_of_each_attempt_is_within_backoff_bounds(timed_queue: TaskQueue, clock: Clock) -> None:
    queue = timed_queue
    task_id = await queue.add_task("job", {}, max_retries=10)
    # Retries 0, 1, 2 double the delay; 3 and 4 (8 s, 16 s) are capped at 5 s.
    for retry in range(5):
        [delivery] = await queue.read("w", block_ms=0)
        assert (delivery.task.task_id, delivery.task.retry_count) == (task_id, retry)
        assert await queue.fail_task(delivery.receipt, f"failure {retry}") is Outcome.RETRIED
        [due] = await delayed_scores(queue)
        delay = due - clock.now_ms
        lowest, highest = backoff_ms(retry, BASE_MS, MAX_MS, 0), backoff_ms(retry, BASE_MS, MAX_MS, ALMOST_ONE)
        assert lowest <= delay <= highest, f"retry {retry}: {delay} ms outside [{lowest}, {highest}]"
        if retry >= 3:
            assert (lowest, highest) == (MAX_MS // 2, MAX_MS)
        clock.now_ms = int(due)  # the next read promotes it


@pytest.mark.parametrize("jitter", [0.0, 0.123456789, 0.5, 0.999, ALMOST_ONE])
async def test_lua_delay_equals_backoff_ms_for_the_same_jitter(
    timed_queue: TaskQueue, clock: Clock, jitter: float
) -> None:
    queue = timed_queue
    for retry in (0, 1, 2, 3, 12):  # 3 and 12 hit the cap
        await queue.add_task("job", {"retry": retry}, retry_count=retry, max_retries=20)
        [delivery] = await queue.read("w", block_ms=0)
        receipt = delivery.receipt
        # The public fail() draws its own jitter; call the function with a chosen one.
        args = [(*receipt, "boom", jitter)]
        statuses = await queue.library.fail(queue.settings.group, str(clock.now_ms), BASE_MS, MAX_MS, args)
        assert statuses == [Outcome.RETRIED]
        [due] = await delayed_scores(queue)
        assert due - clock.now_ms == backoff_ms(retry, BASE_MS, MAX_MS, jitter), f"retry {retry}"
        await queue.redis.delete(queue.keys.delayed)


async def test_zero_base_delay_retries_at_once(make_queue: QueueFactory, clock: Clock) -> None:
    queue = make_queue(retry_base_delay=0, clock_ms=clock)
    await queue.connect()
    await queue.add_task("job", {})
    [first] = await queue.read("w", block_ms=0)
    await queue.fail_task(first.receipt, "boom")
    assert await delayed_scores(queue) == []
    [again] = await queue.read("w", block_ms=0)
    assert again.task.retry_count == 1


async def test_retry_is_not_delivered_before_it_is_due_and_is_after(timed_queue: TaskQueue, clock: Clock) -> None:
    queue = timed_queue
    task_id = await queue.add_task("job", {"n": 1})
    [delivery] = await queue.read("w", block_ms=0)
    await queue.fail_task(delivery.receipt, "boom")
    [due] = await delayed_scores(queue)
    assert due > clock.now_ms

    for now in (clock.now_ms, int(due) - 1):
        clock.now_ms = now
        assert await queue.read("w", block_ms=0) == []
        assert await queue.promote() == 0
        assert (await queue.stats()).delayed == 1

    clock.now_ms = int(due)
    [retried] = await queue.read("other", block_ms=0)  # the read itself promotes
    assert (retried.task.task_id, retried.task.retry_count, retried.task.payload) == (task_id, 1, {"n": 1})
    assert [e["error"] for e in retried.task.errors] == ["boom"]
    assert await delayed_scores(queue) == []
    assert (await queue.stats()).delayed == 0


async def test_promote_moves_only_due_tasks(timed_queue: TaskQueue, clock: Clock) -> None:
    queue = timed_queue
    for retry in range(3):
        await queue.add_task("job", {"r": retry}, retry_count=retry, max_retries=5)
    args = [(*d.receipt, "boom", 0.0) for d in await queue.read("w", block_ms=0)]
    await queue.library.fail(queue.settings.group, str(clock.now_ms), BASE_MS, MAX_MS, args)
    assert [s - clock.now_ms for s in await delayed_scores(queue)] == [500, 1000, 2000]

    clock.now_ms += 999
    assert await queue.promote() == 1
    clock.now_ms += 1
    assert await queue.promote() == 1  # due exactly now counts as due
    assert [s - clock.now_ms for s in await delayed_scores(queue)] == [1000]
    stats = await queue.stats()
    assert (stats.delayed, stats.total_ready) == (1, 2)
    assert sorted(d.task.payload["r"] for d in await queue.read("w", block_ms=0)) == [0, 1]


async def test_blocking_read_waits_only_until_the_next_retry_is_due(timed_queue: TaskQueue, clock: Clock) -> None:
    queue = timed_queue
    await queue.add_task("job", {})
    [delivery] = await queue.read("w", block_ms=0)
    await queue.fail_task(delivery.receipt, "boom")
    [due] = await delayed_scores(queue)
    clock.now_ms = int(due) - 30
    started = time.monotonic()
    assert await queue.read("w", block_ms=5000) == []  # blocks ~30 ms, not 5 s
    assert time.monotonic() - started < 2.0
    clock.now_ms = int(due)
    assert len(await queue.read("w", block_ms=5000)) == 1
