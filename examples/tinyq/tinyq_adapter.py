"""The harness adapter for tinyq: how the harness enqueues, consumes, acks and fails through tinyq, and
reads what is left in it after a run. Started from `harness new adapter tinyq` (docs/your-queue.md).

    harness check-adapter tinyq_adapter:factory
    pytest -m chaos tests/test_tinyq_chaos.py
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import ConnectionError, TimeoutError
from tinyq import TinyQ

from harness.adapters import AdapterUnavailable, Delivered, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises

T = TypeVar("T")


async def _reach(call: Awaitable[T]) -> T:
    """A lost connection or a timeout leaves the outcome unknown: the harness must hear AdapterUnavailable."""
    try:
        return await call
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise AdapterUnavailable(f"tinyq: {exc}") from exc


class TinyqAdapter:
    name = "tinyq"
    # tinyq has one stream (no priorities) and acks by entry id (no ownership check).
    promises = Promises(priorities=False, ownership_checked=False, defaults="lease = the scenario's pending_timeout_s")

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self.q, self.block_ms = TinyQ(url, queue_name, lease_s=options.pending_timeout_s), options.block_ms
        await _reach(self.q.setup())

    async def close(self) -> None:
        await self.q.close()

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        batch = [(t.tid, {"priority": t.priority, "payload": t.payload}, t.max_retries) for t in tasks]
        await _reach(self.q.put(batch))

    async def consume(self, consumer: str, count: int) -> list[Delivered]:
        taken = await _reach(self.q.take(consumer, count, self.block_ms))
        return [_delivered(entry_id, fields, again) for entry_id, fields, again in taken]

    async def complete(self, consumer: str, delivered: list[Delivered]) -> list[bool]:
        return [await _reach(self.q.done(d.handle[0])) for d in delivered]

    async def fail(self, consumer: str, failed: list[tuple[Delivered, str]]) -> list[str]:
        return [await _reach(self.q.fail(d.handle[0], d.handle[1], error)) for d, error in failed]

    async def depth(self) -> dict[str, int]:
        q = self.q
        async with q.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(q.stream).xpending(q.stream, q.group).xlen(q.dead).hget(q.stats, "done")
            length, pending, dead, done = await _reach(pipe.execute())
        # Done tasks are deleted: what the stream holds is either handed out (pending) or waiting.
        held = pending["pending"]
        return {"ready": length - held, "pending": held, "delayed": 0, "dead": dead, "completed": int(done or 0)}

    async def final_state(self) -> FinalState:
        r, q = self.q.redis, self.q
        held = await _reach(r.xpending_range(q.stream, q.group, "-", "+", 1_000_000))
        owner = {row["message_id"]: row["consumer"] for row in held}
        ready, pending = [], []
        for entry_id, fields in await _reach(r.xrange(q.stream)):
            tid, prio = fields["id"], json.loads(fields["body"])["priority"]
            if entry_id in owner:
                pending.append((tid, prio, owner[entry_id]))
            else:
                ready.append((tid, prio))
        dead = [(f["id"], "retries exhausted", int(f["attempt"]), len(json.loads(f["errors"])))
                for _, f in await _reach(r.xrange(q.dead))]  # fmt: skip
        return FinalState(ready=ready, pending=pending, dead=dead)


def _delivered(entry_id: str, fields: dict[str, str], taken_over: bool) -> Delivered:
    body = json.loads(fields["body"])
    return Delivered(
        tid=fields["id"], priority=body["priority"], attempt=int(fields["attempt"]),
        max_retries=int(fields["max_retries"]), deliveries=2 if taken_over else 1,  # at least 2: tinyq does not count
        payload=body["payload"], handle=(entry_id, fields),
    )  # fmt: skip


def factory() -> TinyqAdapter:
    return TinyqAdapter()
