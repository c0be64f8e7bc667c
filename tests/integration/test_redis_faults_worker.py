"""taskq's Worker under Redis and network faults: it carries on through them, and it can always be stopped.

Regression: a worker stopped while Redis was unreachable retried its unsettled acks forever and never
exited (SIGTERM during a Redis outage hung `taskq worker`); now it gives them up shutdown_timeout_s
after stop(), and their tasks run again after pending_timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.providers.local import LocalRedis, RedisConfig
from harness.proxy import FaultProxy, ProxyFaults
from taskq import Task, TaskQueue, Worker, WorkerSettings
from taskq.settings import QueueSettings
from tests.conftest import start_redis
from tests.integration.workers import add_retrying, eventually


def settings(name: str) -> QueueSettings:
    return QueueSettings(name=name, pending_timeout_s=1.0, socket_timeout_s=0.5, block_ms=100, retry_base_delay_s=0)


@pytest.fixture
async def durable_redis(tmp_path: Path) -> AsyncIterator[LocalRedis]:
    server = start_redis(tmp_path / "redis", RedisConfig(persistence="aof-always"))
    yield server
    server.stop()


async def test_a_worker_stopped_while_redis_is_paused_exits_within_its_shutdown_timeout(
    own_redis: LocalRedis, queue_name: str
) -> None:
    queue = TaskQueue(own_redis.url, settings=settings(queue_name))
    await queue.connect()
    release, started = asyncio.Event(), asyncio.Event()

    async def job(task: Task) -> None:
        started.set()
        await release.wait()

    worker = Worker(
        queue, {"job": job}, WorkerSettings(concurrency=2, shutdown_timeout_s=1.0, reconnect_max_delay_s=0.2)
    )
    running = asyncio.create_task(worker.run())
    try:
        await queue.add_tasks([Task("t1", "job", {})])
        await asyncio.wait_for(started.wait(), 5)
        own_redis.pause()
        release.set()  # the handler finishes: its ack cannot reach Redis
        await asyncio.sleep(0.2)
        stopped_at = time.monotonic()
        worker.stop()
        await asyncio.wait_for(asyncio.shield(running), 8)
        assert time.monotonic() - stopped_at < 1.0 + 3 * 0.5 + 1.0  # the timeout, a few socket timeouts
        assert worker.counts["unsettled"] == 1
    finally:
        own_redis.resume()
        if not running.done():
            worker.stop()
            await asyncio.wait_for(running, 15)
    # The ack's outcome is unknown (it may sit in the paused server's socket): acked, or pending and
    # back after pending_timeout; never lost.
    stats = await queue.stats()
    assert stats.total_pending + stats.counters["tasks_completed"] == 1
    await queue.disconnect()


async def test_a_worker_carries_on_through_network_faults_and_a_redis_crash(
    durable_redis: LocalRedis, queue_name: str
) -> None:
    producer = TaskQueue(durable_redis.url, settings=settings(queue_name))
    await producer.connect()
    done: dict[str, int] = {}

    async def job(task: Task) -> None:
        done[task.task_id] = done.get(task.task_id, 0) + 1
        await asyncio.sleep(0.01)

    with FaultProxy({"worker": ("127.0.0.1", durable_redis.port)}, seed=3) as proxy:
        host, port = proxy.address("worker")
        queue = TaskQueue(f"redis://{host}:{port}/0", settings=settings(queue_name))
        await queue.connect()
        worker = Worker(queue, {"job": job}, WorkerSettings(concurrency=4, reconnect_max_delay_s=0.2))
        running = asyncio.create_task(worker.run())
        tasks = [f"t{i}" for i in range(200)]
        await producer.add_tasks([Task(tid, "job", {}) for tid in tasks[:50]])
        for faults in (ProxyFaults(latency_ms=20, jitter_ms=40), ProxyFaults(reply_delay_ms=800),
                       ProxyFaults(drop_replies=0.5), ProxyFaults(blackhole=True)):  # fmt: skip
            proxy.set_faults(faults)
            await asyncio.sleep(0.7)
            proxy.heal()
        proxy.reset()
        await producer.add_tasks([Task(tid, "job", {}) for tid in tasks[50:150]])
        durable_redis.kill()
        await asyncio.sleep(0.3)
        durable_redis.start()
        await add_retrying(producer, [Task(tid, "job", {}) for tid in tasks[150:]])

        async def all_done() -> bool:
            stats = await producer.stats()
            return set(done) == set(tasks) and stats.total_ready + stats.total_pending + stats.delayed == 0

        try:
            await eventually(all_done, timeout_s=30, what="every task handled and settled after the faults")
        finally:
            worker.stop()
            await asyncio.wait_for(running, 15)
            await queue.disconnect()
    await producer.disconnect()
    assert worker.counts["redis_errors"] >= 1  # the faults did reach it
