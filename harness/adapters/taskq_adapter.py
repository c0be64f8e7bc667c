"""The reference adapter: drives taskq through its public API."""

from __future__ import annotations

import time
from typing import Any

import msgpack
from redis.exceptions import ResponseError

from harness.adapters.base import AdapterRefused, AdapterUnavailable, Delivered, FinalState, QueueOptions, TaskSpec
from taskq import (
    DecodeError,
    Delivery,
    Outcome,
    PayloadError,
    QueueSettings,
    QueueStats,
    RedisUnavailable,
    Task,
    TaskQueue,
)
from taskq.task import decode_task, field_map

TASK_TYPE = "harness"
_FAIL_OUTCOMES = {Outcome.RETRIED: "retried", Outcome.DEAD: "dead"}


class TaskqAdapter:
    """taskq as the harness sees it. Consumers reclaim expired leases on the queue's cadence."""

    name = "taskq"
    # What connect builds: mutants of the zoo put a TaskQueue subclass here.
    queue_class: type[TaskQueue] = TaskQueue

    def __init__(self) -> None:
        self._queue: TaskQueue | None = None
        self._next_reclaim = 0.0

    @property
    def queue(self) -> TaskQueue:
        if self._queue is None:
            raise AdapterUnavailable("the adapter is not connected")
        return self._queue

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        settings = QueueSettings(
            name=queue_name,
            pending_timeout_s=options.pending_timeout_s,
            retry_base_delay_s=options.retry_base_delay_s,
            retry_max_delay_s=max(options.retry_max_delay_s, options.retry_base_delay_s),
            delivery_cap=options.delivery_cap,
            block_ms=options.block_ms,
            socket_timeout_s=5.0,
        )
        self._queue = self.queue_class(url, settings=settings)
        try:
            await self._queue.connect()
        except RedisUnavailable as exc:
            self._queue = None
            raise AdapterUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._queue is not None:
            await self._queue.disconnect()

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        batch = [
            Task(t.tid, TASK_TYPE, t.payload, priority=t.priority, max_retries=t.max_retries, timeout=600)  # type: ignore[arg-type]
            for t in tasks
        ]
        try:
            await self.queue.add_tasks(batch)
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc
        except PayloadError as exc:
            raise AdapterRefused(str(exc)) from exc

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        try:
            found: list[Delivery] = []
            if time.monotonic() >= self._next_reclaim:
                found = await self.queue.reclaim(consumer, count)
                self._next_reclaim = time.monotonic() + self.queue.settings.reclaim_interval_s
            if not found:
                found = await self.queue.read(consumer, count)
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc
        return [self._delivered(d) for d in found]

    @staticmethod
    def _delivered(delivery: Delivery) -> Delivered:
        task = delivery.task
        return Delivered(
            tid=task.task_id,
            priority=int(task.priority),
            attempt=task.retry_count,
            max_retries=task.max_retries,
            deliveries=delivery.receipt.deliveries,
            payload=task.payload,
            handle=delivery,
        )

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        try:
            outcomes = await self.queue.ack([d.handle.receipt for d in delivered])
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc
        return [o is Outcome.DONE for o in outcomes]

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        try:
            outcomes = await self.queue.fail([(d.handle.receipt, error) for d, error in failed])
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc
        return [_FAIL_OUTCOMES.get(o, "refused") for o in outcomes]

    async def stats(self) -> QueueStats:
        """The queue's counts, as the harness (not the agents) reads them for depth and the final state."""
        return await self.queue.stats()

    async def depth(self) -> dict[str, int]:
        try:
            stats = await self.stats()
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc
        return {
            "ready": stats.total_ready,
            "pending": stats.total_pending,
            "delayed": stats.delayed,
            "dead": stats.dead,
            "completed": stats.counters["tasks_completed"],
        }

    async def final_state(self) -> FinalState:
        try:
            return await self._final_state()
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def _final_state(self) -> FinalState:
        queue, redis = self.queue, self.queue.redis
        ready: list[tuple[str, int]] = []
        pending: list[tuple[str, int, str]] = []
        acked_not_deleted: list[str] = []
        foreign = 0
        for prio, stream in enumerate(queue.keys.streams):
            owners = await _pending_owners(queue, stream)
            last_delivered = await _last_delivered(queue, stream)
            entries: Any = await redis.xrange(stream)
            for entry_id, fields in entries:
                tid = _tid_of(fields, prio)
                if tid is None:
                    foreign += 1
                elif entry_id in owners:
                    pending.append((tid, prio, owners[entry_id]))
                elif _entry_key(entry_id) > last_delivered:
                    ready.append((tid, prio))
                else:
                    acked_not_deleted.append(tid)
        members: Any = await redis.zrange(queue.keys.delayed, 0, -1)
        delayed = [_delayed_tid(member) for member in members]
        dead = [
            (str(d.task.payload.get("tid", d.task.task_id)), d.reason, d.task.retry_count, len(d.errors))
            for d in await queue.dlq.all()
            if d.task is not None and isinstance(d.task.payload, dict)
        ]
        stats = (await self.stats()).as_dict()
        return FinalState(
            ready=ready,
            pending=pending,
            delayed=[t for t in delayed if t],
            dead=dead,
            acked_not_deleted=acked_not_deleted,
            foreign=foreign,
            stats=stats,
        )


async def _pending_owners(queue: TaskQueue, stream: str) -> dict[bytes, str]:
    try:
        rows: Any = await queue.redis.xpending_range(stream, queue.settings.group, "-", "+", 1_000_000)
    except ResponseError:
        return {}  # no group: nothing is pending
    return {row["message_id"]: row["consumer"].decode() for row in rows}


async def _last_delivered(queue: TaskQueue, stream: str) -> tuple[int, int]:
    try:
        groups: Any = await queue.redis.xinfo_groups(stream)
    except ResponseError:
        return (-1, -1)
    for group in groups:
        if group["name"] == queue.settings.group.encode():
            return _entry_key(group["last-delivered-id"])
    return (-1, -1)


def _entry_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def _tid_of(fields: Any, prio: int) -> str | None:
    try:
        task = decode_task(field_map(fields), prio)
    except DecodeError:
        return None
    if isinstance(task.payload, dict) and "tid" in task.payload:
        return str(task.payload["tid"])
    return task.task_id


def _delayed_tid(member: bytes) -> str | None:
    unpacked = msgpack.unpackb(member, raw=True)
    it = iter(unpacked[1:])
    try:
        return _tid_of(dict(zip(it, it)), int(unpacked[0]))
    except (TypeError, ValueError):
        return None
