"""Unit tests of tinyq, against a throwaway redis-server (the harness plugin's redis_server fixture)."""

from __future__ import annotations

import asyncio

from tinyq import TinyQ


def test_a_task_is_taken_and_done(redis_server):
    async def go():
        q = TinyQ(redis_server.url, "unit")
        await q.setup()
        await q.put([("t1", {"n": 1}, 0)])
        [(entry_id, fields, taken_over)] = await q.take("w1", 10)
        assert (fields["id"], taken_over) == ("t1", False)
        assert await q.done(entry_id)
        assert await q.take("w1", 10) == []
        await q.close()

    asyncio.run(go())


def test_a_task_out_of_retries_is_dead_lettered(redis_server):
    async def go():
        q = TinyQ(redis_server.url, "unit")
        await q.setup()
        await q.put([("t1", {"n": 1}, 0)])
        [(entry_id, fields, _)] = await q.take("w1", 10)
        assert await q.fail(entry_id, fields, "boom") == "dead"
        assert await q.redis.xlen(q.dead) == 1
        await q.close()

    asyncio.run(go())
