"""tinyq: a small task queue on one Redis stream, the example of docs/your-queue.md.

A task is a stream entry (id, body as JSON, attempt, max_retries, errors). Workers read through a
consumer group and take over the tasks of a worker that died once their lease (`lease_s`) ran out.
done() acks and deletes the entry and counts it, in one script; fail() re-adds it with attempt + 1, or
moves it to a dead-letter stream once its retries are spent. No priorities, and no ownership check: a
late done() from a worker whose lease ran out still acks the entry.

THE RACE (planted on purpose; fix-the-race.patch fixes it): fail() acks the failed delivery in one
round trip and adds the retry in a second. A worker killed between the two loses the task (acked, its
retry never added), and a fail that comes after another worker took the task over still adds a retry
(a second copy of the task).
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

# Ack and delete a delivery and count it done, at once; nothing if it was settled already.
DONE = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
return redis.call('HINCRBY', KEYS[2], 'done', 1)
"""
Entry = tuple[str, dict[str, str], bool]  # entry id, fields, taken over from a worker whose lease ran out


class TinyQ:
    def __init__(self, url: str, name: str, *, lease_s: float = 30.0) -> None:
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self.stream, self.dead, self.group = f"tinyq:{name}", f"tinyq:{name}:dead", "workers"
        self.stats, self.lease_ms = f"tinyq:{name}:stats", int(lease_s * 1000)
        self.done_script = self.redis.register_script(DONE)

    async def setup(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def put(self, tasks: list[tuple[str, Any, int]]) -> None:
        """Add (id, body, max_retries) tasks, all of them or none."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for task_id, body, max_retries in tasks:
                fields = {"id": task_id, "body": json.dumps(body), "attempt": 0, "max_retries": max_retries}
                pipe.xadd(self.stream, {**fields, "errors": "[]"})
            await pipe.execute()

    async def take(self, worker: str, count: int, block_ms: int = 100) -> list[Entry]:
        """Up to `count` tasks: first those whose lease ran out, then new ones."""
        _, claimed, _ = await self.redis.xautoclaim(self.stream, self.group, worker, self.lease_ms, count=count)
        if claimed:
            return [(entry_id, fields, True) for entry_id, fields in claimed]
        found = await self.redis.xreadgroup(self.group, worker, {self.stream: ">"}, count=count, block=block_ms)
        return [(entry_id, fields, False) for entry_id, fields in (found[0][1] if found else [])]

    async def done(self, entry_id: str) -> bool:
        return bool(await self.done_script(keys=[self.stream, self.stats], args=[self.group, entry_id]))

    async def fail(self, entry_id: str, fields: dict[str, str], error: str) -> str:
        """Retry the task with attempt + 1, or dead-letter it once its retries are spent."""
        attempt, errors = int(fields["attempt"]), [*json.loads(fields["errors"]), error]
        retry = attempt < int(fields["max_retries"])
        again = {**fields, "attempt": attempt + 1 if retry else attempt, "errors": json.dumps(errors)}
        # THE RACE: the ack and the re-add are two round trips, and the re-add happens even if the ack found
        # the delivery gone.
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.xack(self.stream, self.group, entry_id).xdel(self.stream, entry_id).execute()
        await self.redis.xadd(self.stream if retry else self.dead, again)
        return "retried" if retry else "dead"

    async def close(self) -> None:
        await self.redis.aclose()
