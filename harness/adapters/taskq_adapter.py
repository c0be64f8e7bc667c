"""The reference adapter: drives taskq through its public API.

With `queues` > 1 (a scenario's [queue] table) tasks are spread over that many queues by task id,
each with a hash tag of its own (on a cluster: over the shards), and every consumer serves them all:
one read at a time, round robin, blocking only when all were empty. A write that ran but was not
confirmed by the replicas asked for (ReplicationTimeout) is an unknown outcome, like a lost answer.
"""

from __future__ import annotations

import time
import zlib
from typing import Any, NamedTuple

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
    ReplicationTimeout,
    Task,
    TaskQueue,
)
from taskq.task import Receipt, decode_task, field_map

TASK_TYPE = "harness"
_FAIL_OUTCOMES = {Outcome.RETRIED: "retried", Outcome.DEAD: "dead"}
# Outcomes unknown to the harness: Redis did not answer, or the replicas did not confirm in time.
_UNKNOWN = (RedisUnavailable, ReplicationTimeout)


class Routed(NamedTuple):
    """A taskq Delivery (receipt, task) and the index of the queue it came from."""

    receipt: Receipt
    task: Task
    queue: int


def queue_names(name: str, count: int) -> list[str]:
    """The queues a run spreads its tasks over: `name`, then `name-1` .. `name-(count-1)`."""
    return [name, *(f"{name}-{i}" for i in range(1, count))]


class TaskqAdapter:
    """taskq as the harness sees it. Consumers reclaim expired leases on the queue's cadence."""

    name = "taskq"
    # What connect builds: mutants of the zoo put a TaskQueue subclass here.
    queue_class: type[TaskQueue] = TaskQueue

    def __init__(self) -> None:
        self._queues: list[TaskQueue] = []
        self._next_reclaim = 0.0
        self._next_read = 0

    @property
    def queue(self) -> TaskQueue:
        """The run's queue (the first of them when tasks are spread over many)."""
        if not self._queues:
            raise AdapterUnavailable("the adapter is not connected")
        return self._queues[0]

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        queues: list[TaskQueue] = []
        for name in queue_names(queue_name, options.queues):
            settings = QueueSettings(
                name=name,
                pending_timeout_s=options.pending_timeout_s,
                retry_base_delay_s=options.retry_base_delay_s,
                retry_max_delay_s=max(options.retry_max_delay_s, options.retry_base_delay_s),
                delivery_cap=options.delivery_cap,
                block_ms=options.block_ms,
                socket_timeout_s=5.0,
                replicas_to_wait=options.replicas_to_wait,
                replica_wait_timeout_ms=options.replica_wait_timeout_ms,
            )
            # Every queue after the first shares its client: one connection pool (and one cluster map) per process.
            queues.append(self.queue_class(url, settings=settings, client=queues[0].redis if queues else None))
            try:
                await queues[-1].connect()
            except RedisUnavailable as exc:
                for queue in reversed(queues):
                    await queue.disconnect()
                raise AdapterUnavailable(str(exc)) from exc
        self._queues = queues

    async def close(self) -> None:
        for queue in reversed(self._queues):  # the first, which owns the shared client, last
            await queue.disconnect()

    def _queue_of(self, tid: str) -> int:
        return zlib.crc32(tid.encode()) % len(self._queues) if len(self._queues) > 1 else 0

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        batches: dict[int, list[Task]] = {}
        for t in tasks:
            task = Task(t.tid, TASK_TYPE, t.payload, priority=t.priority, max_retries=t.max_retries, timeout=600)  # type: ignore[arg-type]
            batches.setdefault(self._queue_of(t.tid), []).append(task)
        try:
            for index, batch in batches.items():
                await self._queues[index].add_tasks(batch)
        except _UNKNOWN as exc:
            raise AdapterUnavailable(str(exc)) from exc
        except PayloadError as exc:
            raise AdapterRefused(str(exc)) from exc

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        try:
            if time.monotonic() >= self._next_reclaim:
                self._next_reclaim = time.monotonic() + self.queue.settings.reclaim_interval_s
                for index, queue in enumerate(self._queues):
                    found = await queue.reclaim(consumer, count)
                    if found:
                        return [self._delivered(d, index) for d in found]
            return await self._read(consumer, count)
        except _UNKNOWN as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def _read(self, consumer: str, count: int) -> list[Delivered]:
        """Round robin over the queues without blocking; a blocking read on the next one when all were empty."""
        total = len(self._queues)
        for step in range(total):
            index = (self._next_read + step) % total
            found = await self._queues[index].read(consumer, count, block_ms=0 if total > 1 else None)
            if found:
                self._next_read = (index + 1) % total
                return [self._delivered(d, index) for d in found]
        if total == 1:
            return []
        index, self._next_read = self._next_read, (self._next_read + 1) % total
        return [self._delivered(d, index) for d in await self._queues[index].read(consumer, count)]

    def _delivered(self, delivery: Delivery, index: int = 0) -> Delivered:
        task = delivery.task
        return Delivered(
            tid=task.task_id,
            priority=int(task.priority),
            attempt=task.retry_count,
            max_retries=task.max_retries,
            deliveries=delivery.receipt.deliveries,
            payload=task.payload,
            handle=delivery if len(self._queues) == 1 else Routed(delivery.receipt, task, index),
            errors=len(task.errors),
        )

    def _by_queue(self, handles: list[Any]) -> dict[int, list[int]]:
        """Positions of `handles` grouped by the queue each came from."""
        groups: dict[int, list[int]] = {}
        for position, handle in enumerate(handles):
            groups.setdefault(handle.queue if isinstance(handle, Routed) else 0, []).append(position)
        return groups

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        done = [False] * len(delivered)
        try:
            for index, positions in self._by_queue([d.handle for d in delivered]).items():
                outcomes = await self._queues[index].ack([delivered[p].handle.receipt for p in positions])
                for position, outcome in zip(positions, outcomes, strict=True):
                    done[position] = outcome is Outcome.DONE
        except _UNKNOWN as exc:
            raise AdapterUnavailable(str(exc)) from exc
        return done

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        results = ["refused"] * len(failed)
        try:
            for index, positions in self._by_queue([d.handle for d, _ in failed]).items():
                chunk = [(failed[p][0].handle.receipt, failed[p][1]) for p in positions]
                outcomes = await self._queues[index].fail(chunk)
                for position, outcome in zip(positions, outcomes, strict=True):
                    results[position] = _FAIL_OUTCOMES.get(outcome, "refused")
        except _UNKNOWN as exc:
            raise AdapterUnavailable(str(exc)) from exc
        return results

    async def stats(self, queue: TaskQueue | None = None) -> QueueStats:
        """A queue's counts (the first's by default), as the harness, not the agents, reads them for depth
        and the final state."""
        return await (queue or self.queue).stats()

    async def depth(self) -> dict[str, int]:
        totals = {"ready": 0, "pending": 0, "delayed": 0, "dead": 0, "completed": 0}
        try:
            for queue in self._queues:
                stats = await self.stats(queue)
                totals["ready"] += stats.total_ready
                totals["pending"] += stats.total_pending
                totals["delayed"] += stats.delayed
                totals["dead"] += stats.dead
                totals["completed"] += stats.counters["tasks_completed"]
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc
        return totals

    async def final_state(self) -> FinalState:
        try:
            states = [await _final_state(queue, await self.stats(queue)) for queue in self._queues]
        except RedisUnavailable as exc:
            raise AdapterUnavailable(str(exc)) from exc
        if len(states) == 1:
            return states[0]
        merged = FinalState()
        for state in states:
            for name in ("ready", "pending", "delayed", "dead", "acked_not_deleted"):
                getattr(merged, name).extend(getattr(state, name))
            for key, value in state.stats.items():
                if isinstance(value, int):
                    merged.stats[key] = merged.stats.get(key, 0) + value
        return FinalState(**{**merged.as_value(), "foreign": sum(s.foreign for s in states)})


async def _final_state(queue: TaskQueue, stats: QueueStats) -> FinalState:
    redis = queue.redis
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
    return FinalState(
        ready=ready,
        pending=pending,
        delayed=[t for t in delayed if t],
        dead=dead,
        acked_not_deleted=acked_not_deleted,
        foreign=foreign,
        stats=stats.as_dict(),
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
