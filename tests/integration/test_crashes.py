"""Crashes, pauses and long tasks, with real worker processes and real signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from harness.providers.local import LocalRedis
from taskq import Outcome, Task, TaskQueue, Worker, WorkerSettings
from tests.conftest import QueueFactory
from tests.integration.workers import (
    RunningWorker,
    eventually,
    poll_until,
    start_worker,
    stop_worker,
    wait_for_file,
)


async def test_sigkilled_worker_task_is_reclaimed_by_another_worker(
    queue: TaskQueue, redis_server: LocalRedis, tmp_path: Path
) -> None:
    task_id = await queue.add_task("hang_once", {"marker": str(tmp_path)})
    victim = start_worker(redis_server.url, queue.keys.name, consumer="victim")
    try:
        victim_pid = (await wait_for_file(tmp_path / f"{task_id}.started")).strip()
    finally:
        victim.kill()
        stop_worker(victim)
    rescuer = start_worker(redis_server.url, queue.keys.name, consumer="rescuer")
    try:
        done_by = (await wait_for_file(tmp_path / f"{task_id}.done")).strip()
        await eventually(lambda: _completed(queue, 1), what="the rescuer acked")
    finally:
        stop_worker(rescuer)
    assert done_by == str(rescuer.pid) != victim_pid
    stats = await queue.get_queue_stats()
    assert (stats["tasks_recovered"], stats["total_pending"], stats["tasks_dead"]) == (1, 0, 0)


async def test_poison_task_that_kills_every_worker_ends_in_dlq(
    queue: TaskQueue, redis_server: LocalRedis, tmp_path: Path
) -> None:
    task_id = await queue.add_task("crash", {"marker": str(tmp_path)})
    deaths = 0
    while not await queue.dlq.length():
        assert deaths <= 3, "the delivery cap of 3 should have stopped the poison task"
        worker = start_worker(redis_server.url, queue.keys.name, consumer=f"w{deaths}", delivery_cap=3)
        try:
            await eventually(lambda w=worker: _exited_or_buried(w, queue), timeout_s=15)  # type: ignore[misc]
        finally:
            stop_worker(worker)
        deaths += worker.returncode == 17
    assert deaths == 3
    [dead] = await queue.dlq.entries()
    assert dead.task is not None and dead.task.task_id == task_id
    assert dead.reason.startswith("delivery cap: delivered 3 times")
    assert (await queue.get_queue_stats())["total_pending"] == 0


async def test_paused_worker_late_ack_is_refused(
    make_queue: QueueFactory, redis_server: LocalRedis, tmp_path: Path
) -> None:
    queue = make_queue(pending_timeout=1.0)
    await queue.connect()
    task_id = await queue.add_task("sleep", {"seconds": 0.3, "marker": str(tmp_path)})
    paused = start_worker(redis_server.url, queue.keys.name, consumer="paused", pending_timeout=1.0)
    report = ""
    try:
        await wait_for_file(tmp_path / f"{task_id}.started")
        os.kill(paused.pid, signal.SIGSTOP)
        # The lease runs out while the worker is stopped: reclaim takes the task as soon as it may.
        [taken] = await poll_until(lambda: queue.reclaim("rescuer"), timeout_s=10, what="the paused lease expired")
        os.kill(paused.pid, signal.SIGCONT)

        async def keep_our_lease() -> None:
            while True:
                assert await queue.renew("rescuer", [taken.receipt]) == [Outcome.DONE]
                await asyncio.sleep(0.25)

        keeper = asyncio.create_task(keep_our_lease())
        try:
            await wait_for_file(tmp_path / f"{task_id}.done")
            # A graceful stop settles what the worker finished (its late ack) before it exits.
            report = await asyncio.to_thread(stop_worker, paused)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper  # a renewal refused on the way fails the test here
        assert paused.returncode == 0, report
        [pending] = await queue.redis.xpending_range(queue.keys.stream(2), "taskq", "-", "+", 10)
        assert (pending["consumer"], pending["times_delivered"]) == (b"rescuer", 2)
        assert (await queue.get_queue_stats())["tasks_completed"] == 0
        assert await queue.ack([taken.receipt]) == [Outcome.DONE]
    finally:
        if paused.poll() is None:
            report = stop_worker(paused)
    assert "lease_lost" in report


async def test_long_task_with_lease_renewal_is_not_stolen(make_queue: QueueFactory) -> None:
    queue, thief = make_queue(pending_timeout=0.3), make_queue(pending_timeout=0.3)
    await queue.connect()
    await thief.connect()
    started = asyncio.Event()

    async def long_task(task: Task) -> None:
        started.set()
        await asyncio.sleep(1.2)

    await queue.add_task("long", {}, timeout=5)
    stolen = []
    async with RunningWorker(Worker(queue, {"long": long_task}, WorkerSettings(concurrency=1))):
        await asyncio.wait_for(started.wait(), 5)

        async def completed_while_a_thief_tries() -> bool:
            stolen.extend(await thief.reclaim("thief"))
            return await _completed(queue, 1)

        # The task runs four visibility timeouts; the thief tries all along, until it completes.
        await eventually(completed_while_a_thief_tries, timeout_s=10, what="the long task completed")
    assert stolen == []
    assert (await queue.get_queue_stats())["tasks_recovered"] == 0


async def test_graceful_stop_releases_unfinished_tasks_at_once(make_queue: QueueFactory) -> None:
    queue = make_queue(pending_timeout=30)
    await queue.connect()
    started = asyncio.Event()

    async def stuck(task: Task) -> None:
        started.set()
        await asyncio.sleep(60)

    task_id = await queue.add_task("stuck", {})
    worker = Worker(queue, {"stuck": stuck}, WorkerSettings(concurrency=1, shutdown_timeout_s=0.1))
    async with RunningWorker(worker):
        await asyncio.wait_for(started.wait(), 5)
    assert worker.counts["released"] == 1
    [again] = await queue.read("next", block_ms=0)  # no 30 s visibility timeout to wait out
    assert again.task.task_id == task_id and again.task.retry_count == 0


async def _completed(queue: TaskQueue, n: int) -> bool:
    return bool((await queue.get_queue_stats())["tasks_completed"] == n)


async def _exited_or_buried(worker: object, queue: TaskQueue) -> bool:
    return worker.poll() is not None or bool(await queue.dlq.length())


async def test_poison_task_takes_no_innocent_batch_mates_into_the_dlq(
    queue: TaskQueue, redis_server: LocalRedis, tmp_path: Path
) -> None:
    marker = {"marker": str(tmp_path)}
    poison = await queue.add_task("crash", marker)
    innocent = [await queue.add_task("sleep", {**marker, "seconds": 0}) for _ in range(3)]
    for attempt in range(6):
        if await queue.dlq.length():
            break
        worker = start_worker(redis_server.url, queue.keys.name, consumer=f"w{attempt}", delivery_cap=3)
        try:
            await eventually(lambda w=worker: _exited_or_buried(w, queue), timeout_s=15)  # type: ignore[misc]
        finally:
            stop_worker(worker)
    finisher = start_worker(redis_server.url, queue.keys.name, consumer="finisher", delivery_cap=3)
    try:
        for tid in innocent:
            await wait_for_file(tmp_path / f"{tid}.done")
    finally:
        stop_worker(finisher)
    assert [d.task.task_id for d in await queue.dlq.entries() if d.task] == [poison]
