"""The raw ceiling adapter against a real Redis: it does the work taskq does, without the guarantees."""

from __future__ import annotations

from harness.adapters import QueueOptions, RawAdapter, TaskSpec, adapter_factory
from harness.providers import LocalRedis
from tests.integration.workers import poll_until


def spec(tid: str, prio: int = 2, max_retries: int = 1) -> TaskSpec:
    return TaskSpec(tid=tid, priority=prio, max_retries=max_retries, payload={"tid": tid, "ms": 0.0, "due": 1})


async def connected(url: str, name: str, **options: float) -> RawAdapter:
    adapter = RawAdapter()
    await adapter.connect(url, name, QueueOptions(block_ms=50, **options))  # type: ignore[arg-type]
    return adapter


def test_raw_is_a_queue_the_command_line_can_name() -> None:
    assert adapter_factory("raw") is RawAdapter


async def test_enqueue_consume_complete_and_final_state(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = await connected(redis_server.url, queue_name)
    try:
        await adapter.enqueue([spec("a", prio=3), spec("b", prio=0), spec("c")])
        got = await adapter.consume("c1", 10)
        assert [(d.tid, d.priority, d.attempt, d.deliveries) for d in got] == [("b", 0, 0, 1), ("c", 2, 0, 1),
                                                                              ("a", 3, 0, 1)]  # fmt: skip
        assert got[0].payload == {"tid": "b", "ms": 0.0, "due": 1}
        assert await adapter.depth() == {"ready": 0, "pending": 3, "delayed": 0, "dead": 0}
        assert await adapter.complete("c1", got[:2]) == [True, True]
        final = await adapter.final_state()
        assert (final.pending, final.ready, final.acked_not_deleted) == ([("a", 3, "c1")], [], [])
        assert await adapter.consume("c1", 10) == []  # blocks block_ms, then nothing
    finally:
        await adapter.close()


async def test_fail_retries_then_dead_letters(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = await connected(redis_server.url, queue_name)
    try:
        await adapter.enqueue([spec("t", max_retries=1)])
        [first] = await adapter.consume("c", 1)
        assert await adapter.fail("c", [(first, "boom")]) == ["retried"]
        [second] = await adapter.consume("c", 1)
        assert (second.tid, second.attempt) == ("t", 1)
        assert await adapter.fail("c", [(second, "boom")]) == ["dead"]
        final = await adapter.final_state()
        assert final.dead == [("t", "retries exhausted", 1, 2)]
        assert (await adapter.depth())["dead"] == 1
    finally:
        await adapter.close()


async def test_expired_leases_are_reclaimed(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = await connected(redis_server.url, queue_name, pending_timeout_s=0.05)
    try:
        await adapter.enqueue([spec("x")])
        assert [d.tid for d in await adapter.consume("dead-worker", 1)] == ["x"]
        # Taken again once past the visibility timeout (the reclaim cadence is a quarter of it).
        found = await poll_until(lambda: adapter.consume("live-worker", 1), timeout_s=5, what="the lease reclaimed")
        assert [(d.tid, d.deliveries) for d in found] == [("x", 2)]
    finally:
        await adapter.close()
