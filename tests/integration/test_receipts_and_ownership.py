"""Who may settle a delivery: receipts across connections, double acks, lost leases, release."""

from __future__ import annotations

import time

import pytest

from taskq import Delivery, LeaseLost, Outcome, TaskPriority, TaskQueue
from tests.conftest import QueueFactory
from tests.integration.workers import eventually


async def read_one(queue: TaskQueue, consumer: str) -> Delivery:
    [delivery] = await queue.read(consumer, block_ms=0)
    return delivery


async def wait_and_reclaim(queue: TaskQueue, consumer: str) -> Delivery:
    """Reclaim as `consumer` once the lease ran out (pending_timeout), within a deadline."""
    taken: list[Delivery] = []

    async def reclaimed() -> bool:
        taken.extend(await queue.reclaim(consumer))
        return bool(taken)

    await eventually(reclaimed, timeout_s=5, what=f"{consumer} reclaimed the delivery")
    [delivery] = taken
    return delivery


async def pending_entries(queue: TaskQueue, priority: int = 2) -> list[tuple[bytes, int]]:
    found = await queue.redis.xpending_range(queue.keys.stream(priority), queue.settings.group, "-", "+", 10)
    return [(p["consumer"], p["times_delivered"]) for p in found]


async def test_receipt_acked_from_a_fresh_instance_works(queue: TaskQueue, make_queue: QueueFactory) -> None:
    task_id = await queue.add_task("job", {"x": 1})
    delivery = await read_one(queue, "w1")
    message_id = delivery.message_id
    await queue.disconnect()

    other = make_queue()  # new connection, same queue name, only the receipt string carried over
    await other.connect()
    await other.complete_task(message_id)
    stats = await other.stats()
    assert stats.counters["tasks_completed"] == 1
    assert (stats.total_pending, stats.total_ready) == (0, 0)
    assert await other.redis.xlen(other.keys.stream(2)) == 0
    assert delivery.task.task_id == task_id


async def test_second_ack_is_not_pending_and_complete_task_raises(queue: TaskQueue) -> None:
    await queue.add_task("job", {})
    delivery = await read_one(queue, "w1")
    assert await queue.ack([delivery.receipt]) == [Outcome.DONE]
    assert await queue.ack([delivery.receipt]) == [Outcome.NOT_PENDING]
    with pytest.raises(LeaseLost, match="not pending: already settled") as caught:
        await queue.complete_task(delivery.message_id)
    assert caught.value.receipt == delivery.message_id
    assert (await queue.stats()).counters["tasks_completed"] == 1


async def test_fail_after_ack_is_refused_and_schedules_nothing(queue: TaskQueue) -> None:
    await queue.add_task("job", {})
    delivery = await read_one(queue, "w1")
    await queue.complete_task(delivery.receipt)
    with pytest.raises(LeaseLost):
        await queue.fail_task(delivery.receipt, "late failure")
    stats = await queue.stats()
    assert (stats.counters["tasks_failed"], stats.delayed, stats.total_ready, stats.dead) == (0, 0, 0, 0)


async def test_ack_batch_reports_each_receipt(queue: TaskQueue) -> None:
    for i in range(3):
        await queue.add_task("job", {"i": i})
    deliveries = await queue.read("w1", 3, block_ms=0)
    first = deliveries[0].receipt
    assert await queue.ack([first]) == [Outcome.DONE]
    outcomes = await queue.ack([d.receipt for d in deliveries])
    assert outcomes == [Outcome.NOT_PENDING, Outcome.DONE, Outcome.DONE]
    assert await queue.ack([]) == []


async def test_one_ack_call_judges_every_receipt_of_a_mixed_batch(make_queue: QueueFactory) -> None:
    # The ack function checks a batch's leases with one XPENDING range per stream and consumer,
    # and each receipt that range does not show on its own: the outcomes must be the same.
    queue = make_queue(pending_timeout=0.2)
    await queue.connect()
    for i in range(4):
        await queue.add_task("job", {"i": i})
    await queue.add_task("job", {"i": "high"}, priority=TaskPriority.HIGH)
    [high, *normal] = await queue.read("a", 3, block_ms=0)
    taken: list[Delivery] = []

    async def b_reclaims_one() -> bool:
        taken.extend(await queue.reclaim("b", 1))  # the oldest of a's: now b's, delivered twice
        return bool(taken)

    await eventually(b_reclaims_one, timeout_s=5, what="b reclaimed a delivery")
    [lost] = taken
    others = await queue.read("c", 2, block_ms=0)

    # Entry ids repeat across the priorities' streams: an entry is its priority and its id.
    def same_entry(d: Delivery) -> bool:
        return d.receipt[:2] == lost.receipt[:2]

    mine = [d for d in (high, *normal) if not same_entry(d)]
    receipts = [
        *[d.receipt for d in mine],  # a's own, HIGH and NORMAL: done
        next(d.receipt for d in (high, *normal) if same_entry(d)),  # lost to b
        others[0].receipt,
        others[0].receipt,  # c's, twice in one call: done, then not pending
        others[1].receipt._replace(deliveries=2),  # c's entry, with a delivery count that never was
        others[1].receipt._replace(consumer="a"),  # c's entry, claimed by a
    ]
    assert await queue.ack(receipts) == [
        *[Outcome.DONE] * len(mine), Outcome.LEASE_LOST, Outcome.DONE, Outcome.NOT_PENDING,
        Outcome.LEASE_LOST, Outcome.LEASE_LOST,
    ]  # fmt: skip
    assert await queue.ack([lost.receipt, others[1].receipt]) == [Outcome.DONE, Outcome.DONE]
    assert (await queue.stats()).total_pending == 0


async def test_reclaimed_delivery_belongs_to_the_reclaimer(make_queue: QueueFactory) -> None:
    first, second = make_queue(pending_timeout=0.2), make_queue(pending_timeout=0.2)
    await first.connect()
    await second.connect()
    task_id = await first.add_task("job", {}, max_retries=3)
    old = await read_one(first, "first")
    new = await wait_and_reclaim(second, "second")
    assert new.task.task_id == task_id
    assert (new.receipt.entry_id, new.receipt.deliveries) == (old.receipt.entry_id, 2)

    # The first consumer wakes up late: every settle with its receipt is refused.
    assert await first.ack([old.receipt]) == [Outcome.LEASE_LOST]
    assert await pending_entries(first) == [(b"second", 2)]
    with pytest.raises(LeaseLost, match="another consumer took it over"):
        await first.complete_task(old.receipt)
    with pytest.raises(LeaseLost, match="another consumer took it over"):
        await first.fail_task(old.receipt, "too late")
    assert await first.renew("first", [old.receipt]) == [Outcome.LEASE_LOST]
    assert await first.release("first", [old.receipt]) == [Outcome.LEASE_LOST]

    stats = await first.stats()
    assert (stats.counters["tasks_failed"], stats.counters["tasks_retried"], stats.delayed) == (0, 0, 0)
    assert (stats.total_pending, stats.counters["tasks_recovered"]) == (1, 1)
    assert await pending_entries(first) == [(b"second", 2)]

    # The reclaimer's lease is intact: renew keeps it, ack settles it.
    assert await second.renew("second", [new.receipt]) == [Outcome.DONE]
    assert await pending_entries(first) == [(b"second", 2)]  # renewal does not count as a delivery
    await second.complete_task(new.message_id)
    assert await pending_entries(first) == []


async def test_lease_lost_to_the_same_consumer_name_is_still_lost(make_queue: QueueFactory) -> None:
    # A restarted worker reusing its name must not settle with its predecessor's receipt.
    queue = make_queue(pending_timeout=0.2)
    await queue.connect()
    await queue.add_task("job", {})
    old = await read_one(queue, "w")
    new = await wait_and_reclaim(queue, "w")
    assert await queue.ack([old.receipt]) == [Outcome.LEASE_LOST]
    assert await queue.ack([new.receipt]) == [Outcome.DONE]


async def test_renew_keeps_a_lease_that_would_otherwise_expire(make_queue: QueueFactory) -> None:
    queue = make_queue(pending_timeout=0.2)
    await queue.connect()
    await queue.add_task("job", {})
    held = await read_one(queue, "holder")
    stolen: list[Delivery] = []
    until = time.monotonic() + 0.6  # three times pending_timeout

    async def held_long_enough() -> bool:
        assert await queue.renew("holder", [held.receipt]) == [Outcome.DONE]
        stolen.extend(await queue.reclaim("thief"))
        return time.monotonic() > until

    await eventually(held_long_enough, timeout_s=5)
    assert stolen == []
    assert await pending_entries(queue) == [(b"holder", 1)]
    assert await queue.ack([held.receipt]) == [Outcome.DONE]


async def test_renew_by_another_consumer_is_refused(queue: TaskQueue) -> None:
    await queue.add_task("job", {})
    held = await read_one(queue, "holder")
    assert await queue.renew("intruder", [held.receipt]) == [Outcome.LEASE_LOST]
    assert await pending_entries(queue) == [(b"holder", 1)]


async def test_release_puts_the_task_back_at_once_unchanged(queue: TaskQueue) -> None:
    task_id = await queue.add_task("job", {"k": "v"}, max_retries=3, timeout=12.0)
    first = await read_one(queue, "a")
    await queue.fail_task(first.receipt, "first try failed")  # retry_count becomes 1, no delay
    held = await read_one(queue, "a")
    assert held.task.retry_count == 1

    assert await queue.release("b", [held.receipt]) == [Outcome.LEASE_LOST]  # not b's to give back
    assert await queue.release("a", [held.receipt]) == [Outcome.DONE]
    again = await read_one(queue, "b")  # no pending_timeout to wait out
    task = again.task
    assert (task.task_id, task.retry_count, task.payload) == (task_id, 1, {"k": "v"})
    assert (task.max_retries, task.timeout, task.created_at) == (3, 12.0, held.task.created_at)
    assert [e["error"] for e in task.errors] == ["first try failed"]
    assert again.receipt.deliveries == 1

    assert await queue.ack([held.receipt]) == [Outcome.NOT_PENDING]  # the released delivery is gone
    assert await queue.release("a", [held.receipt]) == [Outcome.NOT_PENDING]
    stats = await queue.stats()
    assert (stats.counters["tasks_added"], stats.counters["tasks_retried"], stats.total_pending) == (1, 1, 1)


async def test_stale_task_object_cannot_reset_the_retry_count(queue: TaskQueue) -> None:
    await queue.add_task("job", {}, max_retries=1)
    first = await read_one(queue, "w")
    await queue.fail_task(first.receipt, "one")
    second = await read_one(queue, "w")
    second.task.retry_count = 0  # edited locally: Redis decides
    assert await queue.fail_task(second.receipt, "two", second.task) is Outcome.DEAD
    assert await queue.dlq.length() == 1
