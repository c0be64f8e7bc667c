"""The raw ceiling: the same work as taskq done by a plain redis-py loop, no framework.

`--queue raw` runs any scenario with it, on the same Redis and the same agent
processes as `--queue taskq`, so their figures can be set side by side: taskq's
throughput and latency are reported as a ratio of this.

What it does, per operation, with pipelined commands and nothing else:

    enqueue   XADD per task to the task's priority stream (one pipeline per batch)
    consume   one XREADGROUP ... BLOCK over the four streams (COUNT applies per stream);
              every reclaim interval, XPENDING IDLE + XCLAIM for expired leases
    complete  XACK + XDEL per stream (one pipeline)
    fail      XADD the retry (or a DLQ entry), XACK + XDEL (one pipeline)

What it does not do is what taskq is for: no atomic transitions (a crash between
the XADD and the XACK of a retry duplicates the task), no ownership check on ack
(a paused worker's late ack settles the new owner's delivery), no strict priority
across streams, no retry backoff, no stats counters, no delivery cap. It is a
ceiling for fault-free benchmarks, not a queue to trust under faults.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from harness.adapters.base import AdapterUnavailable, Delivered, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises

GROUP = "raw"
PRIORITIES = range(4)
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


class RawAdapter:
    """A plain redis-py loop over four streams and one consumer group."""

    name = "raw"
    # What the module docstring says it does not do, as promises the checkers read.
    promises = Promises(
        priorities=False,
        ownership_checked=False,
        notes="a ceiling for fault-free benchmarks: no ownership check on ack, no strict priority, no delivery cap",
    )

    def __init__(self) -> None:
        self._redis: aioredis.Redis | None = None
        self._streams: list[str] = []
        self._dlq = ""
        self._options = QueueOptions()
        self._next_reclaim = 0.0

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise AdapterUnavailable("the raw adapter is not connected")
        return self._redis

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options = options
        self._streams = [f"raw:{{{queue_name}}}:p{prio}" for prio in PRIORITIES]
        self._dlq = f"raw:{{{queue_name}}}:dlq"
        # The same client settings as taskq's: no automatic resend of a write that may have run.
        self._redis = aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=5.0)
        try:
            for stream in self._streams:
                try:
                    await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
        except _UNAVAILABLE as exc:
            await self.close()
            raise AdapterUnavailable(f"raw adapter cannot reach Redis: {exc}") from exc

    async def close(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    async def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Plain commands in one round trip."""
        return await self._typed(lambda pipe: [pipe.execute_command(*command) for command in commands])

    async def _typed(self, build: Callable[[Any], object]) -> list[Any]:
        """One round trip of redis-py's typed pipeline methods (their replies parsed)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                build(pipe)
                replies: list[Any] = await pipe.execute()
                return replies
        except _UNAVAILABLE as exc:
            raise AdapterUnavailable(str(exc)) from exc

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        await self._pipeline([self._xadd(t.priority, t.tid, 0, t.max_retries, orjson.dumps(t.payload)) for t in tasks])

    def _xadd(
        self, prio: int, tid: str, retry: int, max_retries: int, data: bytes, stream: str = ""
    ) -> tuple[Any, ...]:
        return ("XADD", stream or self._streams[prio], "*", "id", tid, "data", data, "retry", retry, "max", max_retries)

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        if time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + max(0.05, self._options.pending_timeout_s / 4)
            found = await self._reclaim(consumer, count)
            if found:
                return found
        streams: Any = dict.fromkeys(self._streams, ">")
        try:
            reply: Any = await self.redis.xreadgroup(
                GROUP, consumer, streams, count=count, block=max(1, self._options.block_ms)
            )
        except _UNAVAILABLE as exc:
            raise AdapterUnavailable(str(exc)) from exc
        prio_of = {stream.encode(): prio for prio, stream in enumerate(self._streams)}
        return [
            _delivered(prio_of[stream], entry_id, fields, 1)
            for stream, entries in sorted(reply or [], key=lambda item: prio_of[item[0]])
            for entry_id, fields in entries
            if fields
        ]

    async def _reclaim(self, consumer: str, count: int) -> list[Delivered]:
        """Entries idle past the visibility timeout, taken over with XCLAIM."""
        min_idle_ms = int(self._options.pending_timeout_s * 1000)
        pendings = await self._typed(
            lambda pipe: [pipe.xpending_range(s, GROUP, "-", "+", count, idle=min_idle_ms) for s in self._streams]
        )
        wanted = [
            (prio, row["message_id"], int(row["times_delivered"])) for prio, rows in enumerate(pendings) for row in rows
        ]
        if not wanted:
            return []
        streams = self._streams
        claims = await self._typed(
            lambda pipe: [
                pipe.xclaim(streams[prio], GROUP, consumer, min_idle_ms, [entry_id]) for prio, entry_id, _ in wanted
            ]
        )
        found = [
            _delivered(prio, claimed_id, fields, deliveries + 1)
            for (prio, _, deliveries), claimed in zip(wanted, claims, strict=True)
            for claimed_id, fields in claimed
            if fields
        ]
        return found

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        await self._pipeline(self._settle([d.handle for d in delivered]))
        return [True] * len(delivered)

    def _settle(self, handles: list[tuple[int, bytes]]) -> list[tuple[Any, ...]]:
        by_stream: dict[int, list[bytes]] = defaultdict(list)
        for prio, entry_id in handles:
            by_stream[prio].append(entry_id)
        commands: list[tuple[Any, ...]] = []
        for prio, ids in by_stream.items():
            commands += [("XACK", self._streams[prio], GROUP, *ids), ("XDEL", self._streams[prio], *ids)]
        return commands

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        commands: list[tuple[Any, ...]] = []
        outcomes: list[str] = []
        for d, _ in failed:
            retried = d.attempt < d.max_retries
            data = orjson.dumps(d.payload)
            stream = "" if retried else self._dlq
            commands.append(
                self._xadd(d.priority, d.tid, d.attempt + (1 if retried else 0), d.max_retries, data, stream)
            )
            outcomes.append("retried" if retried else "dead")
        await self._pipeline(commands + self._settle([d.handle for d, _ in failed]))
        return outcomes

    async def depth(self) -> dict[str, int]:
        streams = self._streams
        replies = await self._typed(
            lambda pipe: [
                *(pipe.xlen(s) for s in streams),
                *(pipe.xpending(s, GROUP) for s in streams),
                pipe.xlen(self._dlq),
            ]
        )
        lengths, summaries = replies[:4], replies[4:8]
        pending = [int(summary["pending"]) for summary in summaries]
        return {
            "ready": sum(max(0, int(n) - p) for n, p in zip(lengths, pending, strict=True)),
            "pending": sum(pending),
            "delayed": 0,
            "dead": int(replies[8]),
        }

    async def _stream_state(self, stream: str) -> list[Any]:
        """Pending entries with their owners, the group's last delivered id, and every entry."""
        return await self._typed(
            lambda pipe: [
                pipe.xpending_range(stream, GROUP, "-", "+", 1_000_000),
                pipe.xinfo_groups(stream),
                pipe.xrange(stream),
            ]
        )

    async def final_state(self) -> FinalState:
        ready: list[tuple[str, int]] = []
        pending: list[tuple[str, int, str]] = []
        acked_not_deleted: list[str] = []
        foreign = 0
        for prio, stream in enumerate(self._streams):
            rows, groups, entries = await self._stream_state(stream)
            owners = {row["message_id"]: row["consumer"].decode() for row in rows}
            last = next((_entry_key(g["last-delivered-id"]) for g in groups if g["name"] == GROUP.encode()), (-1, -1))
            for entry_id, fields in entries:
                tid = (fields or {}).get(b"id")
                if tid is None:
                    foreign += 1
                elif entry_id in owners:
                    pending.append((tid.decode(), prio, owners[entry_id]))
                elif _entry_key(entry_id) > last:
                    ready.append((tid.decode(), prio))
                else:
                    acked_not_deleted.append(tid.decode())
        [dlq] = await self._typed(lambda pipe: pipe.xrange(self._dlq))
        dead = [(f[b"id"].decode(), "retries exhausted", int(f[b"retry"]), int(f[b"retry"]) + 1) for _, f in dlq if f]
        return FinalState(ready=ready, pending=pending, acked_not_deleted=acked_not_deleted, dead=dead, foreign=foreign)


def _delivered(prio: int, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> Delivered:
    payload = orjson.loads(fields[b"data"])
    return Delivered(
        tid=fields[b"id"].decode(),
        priority=prio,
        attempt=int(fields[b"retry"]),
        max_retries=int(fields[b"max"]),
        deliveries=deliveries,
        payload=payload,
        handle=(prio, entry_id),
    )


def _entry_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)
