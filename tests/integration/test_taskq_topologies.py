"""taskq past one server: through Sentinel (following a failover), on a Redis Cluster (queues over the
shards, the library on every primary), the WAIT durability option, and what delivery counts do on replicas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from harness.providers import ClusterRedis, LocalRedis, RedisConfig, ReplicatedRedis, make_provider
from harness.providers.cluster import slot_of
from harness.providers.nodes import admin
from taskq import RedisUnavailable, ReplicationTimeout, TaskQueue, Worker, WorkerGroup, WorkerSettings
from taskq.keys import QueueKeys
from taskq.task import Task

pytestmark = pytest.mark.timeout(180)


def fresh() -> str:
    return f"topo-{uuid.uuid4().hex[:10]}"


async def connected(queue: TaskQueue, timeout_s: float = 30.0) -> TaskQueue:
    """Connect, retrying while the Sentinels still converge on a failover of an earlier test (one of them
    may name the old primary, now a replica, for a round or two of their hello messages)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await queue.connect()
            return queue
        except RedisUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
async def sentinel_queue(replicated: ReplicatedRedis) -> AsyncIterator[TaskQueue]:
    queue = await connected(TaskQueue(replicated.url, name=fresh(), pending_timeout=0.5, socket_timeout_s=2.0))
    yield queue
    await queue.disconnect()


async def until_answers(queue: TaskQueue, timeout_s: float = 30.0) -> None:
    """Poll (with the deadline) until the queue reaches a primary again, as a worker's reconnect loop does."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await queue.recover_server_state()
            await queue.stats()
            return
        except RedisUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_queue_follows_the_sentinels_to_the_new_primary(
    replicated: ReplicatedRedis, sentinel_queue: TaskQueue
) -> None:
    await sentinel_queue.add_task("t", {"n": 1})
    old = replicated.primary()
    assert old is not None
    with admin(old.port) as client:
        client.execute_command("WAIT", 2, 2000)
    await asyncio.to_thread(old.kill)
    new = await asyncio.to_thread(replicated.wait_new_primary, old)
    await until_answers(sentinel_queue)
    [delivery] = await sentinel_queue.read("c1", 10)  # the task, its group and the library came over
    assert delivery.task.payload == {"n": 1}
    assert await sentinel_queue.ack([delivery.receipt]) == [1]
    await asyncio.to_thread(replicated.restart_as_replica, old, new)
    await asyncio.to_thread(replicated.wait_synced, old)


async def test_a_worker_keeps_working_across_a_failover(replicated: ReplicatedRedis) -> None:
    name, done = fresh(), asyncio.Event()
    seen: set[int] = set()

    async def handle(task: Task) -> None:
        seen.add(task.payload["n"])
        if len(seen) == 40:
            done.set()

    queue = await connected(TaskQueue(replicated.url, name=name, pending_timeout=1.0, socket_timeout_s=2.0))
    producer = await connected(TaskQueue(replicated.url, name=name, socket_timeout_s=2.0))
    worker = Worker(queue, {"t": handle}, WorkerSettings(concurrency=4, reconnect_max_delay_s=0.5))
    running = asyncio.create_task(worker.serve())
    try:
        for n in range(20):
            await producer.add_task("t", {"n": n})
        old = replicated.primary()
        assert old is not None
        with admin(old.port) as client:
            client.execute_command("WAIT", 2, 2000)
        await asyncio.to_thread(old.kill)
        new = await asyncio.to_thread(replicated.wait_new_primary, old)
        await until_answers(producer)
        for n in range(20, 40):
            await producer.add_task("t", {"n": n})
        await asyncio.wait_for(done.wait(), 60)
        await asyncio.to_thread(replicated.restart_as_replica, old, new)
        await asyncio.to_thread(replicated.wait_synced, old)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
        await queue.disconnect()
        await producer.disconnect()
    assert seen == set(range(40))
    assert worker.counts["redis_errors"] >= 1  # it did see the primary go


async def test_wait_confirms_writes_and_says_when_replicas_did_not(replicated: ReplicatedRedis) -> None:
    queue = await connected(TaskQueue(replicated.url, name=fresh(), replicas_to_wait=2, replica_wait_timeout_ms=300))
    try:
        await queue.add_task("t", {"n": 1})  # both replicas confirmed
        primary = replicated.primary()
        assert primary is not None
        lagging = replicated.replicas_of(primary)[0]
        replicated.cut_off(primary, (replicated.replication_user(lagging),))
        try:
            with pytest.raises(ReplicationTimeout, match="only 1 of the 2 replica") as raised:
                await queue.add_task("t", {"n": 2})
            assert raised.value.result == 1  # the enqueue ran, and stands on the primary: WAIT rolls nothing back
            deliveries = await queue.read("c1", 10)
            assert sorted(d.task.payload["n"] for d in deliveries) == [1, 2]
            with pytest.raises(ReplicationTimeout) as acked:
                await queue.ack([d.receipt for d in deliveries])
            assert acked.value.result == [1, 1]
            assert (await queue.stats()).total_pending == 0
        finally:
            replicated.heal()
        await asyncio.to_thread(replicated.wait_synced, lagging)
    finally:
        await queue.disconnect()


async def test_delivery_counts_reach_the_replicas(replicated: ReplicatedRedis, sentinel_queue: TaskQueue) -> None:
    """XREADGROUP and XCLAIM reach replicas as XCLAIM ... RETRYCOUNT: a promoted replica has the counts
    up to what it received. They go back only with writes a failover lost (the checker's window)."""
    await sentinel_queue.add_task("t", {"n": 1})
    await sentinel_queue.read("c1", 1)
    await asyncio.sleep(0.6)  # past the 0.5 s visibility timeout
    [reclaimed] = await sentinel_queue.reclaim("c2", 1)
    assert reclaimed.receipt.deliveries == 2
    primary = replicated.primary()
    assert primary is not None
    stream = sentinel_queue.keys.stream(reclaimed.receipt.priority)
    with admin(primary.port) as client:
        client.execute_command("WAIT", 2, 2000)
    for replica in replicated.replicas_of(primary):
        with admin(replica.port) as client:
            [entry] = client.xpending_range(stream, "taskq", "-", "+", 10)
        assert (entry["consumer"], entry["times_delivered"]) == (b"c2", 2)


async def test_queues_spread_over_the_shards_and_one_process_serves_them(cluster: ClusterRedis) -> None:
    names = [f"{fresh()}-{i}" for i in range(9)]
    owners = {cluster.owner(slot_of(QueueKeys(name).stream(0))) for name in names}
    assert len(owners) >= 2, "nine random queue names all fell on one shard"
    first = TaskQueue(cluster.url, name=names[0], pending_timeout=1.0)
    await first.connect()
    queues = [
        first,
        *(TaskQueue(cluster.url, name=name, pending_timeout=1.0, client=first.redis) for name in names[1:]),
    ]
    seen: list[str] = []
    done = asyncio.Event()

    async def handle(task: Task) -> None:
        seen.append(task.payload["q"])
        if len(seen) == 3 * len(names):
            done.set()

    for queue in queues[1:]:
        await queue.connect()  # the shared client: one cluster map for nine queues
    group = WorkerGroup(queues, {"t": handle}, WorkerSettings(concurrency=2))
    running = asyncio.create_task(group.run())
    try:
        for queue in queues:
            for _ in range(3):
                await queue.add_task("t", {"q": queue.settings.name})
        await asyncio.wait_for(done.wait(), 60)
    finally:
        group.stop()
        await asyncio.wait_for(running, 30)
        for queue in queues[1:]:
            await queue.disconnect()
        assert await first.stats() is not None  # the others left the shared client open
        await first.disconnect()
    assert sorted(seen) == sorted(name for name in names for _ in range(3))
    assert group.counts["done"] == 27


async def test_the_library_is_on_every_primary_and_reloaded_where_it_went_missing(cluster: ClusterRedis) -> None:
    queue = TaskQueue(cluster.url, name=fresh())
    await queue.connect()
    try:
        primaries = [node for node in cluster.nodes if node.role() == "master"]
        for node in primaries:
            with admin(node.port) as client:
                assert client.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "taskq")
        owner = cluster.owner(slot_of(queue.keys.stream(0)))
        assert owner is not None
        with admin(owner.port) as client:
            client.execute_command("FUNCTION", "FLUSH")
        await queue.add_task("t", {})
        assert queue.library.reloads == 1
    finally:
        await queue.disconnect()


async def test_wait_on_a_cluster_counts_the_shards_replica(cluster: ClusterRedis) -> None:
    queue = TaskQueue(cluster.url, name=fresh(), replicas_to_wait=1, replica_wait_timeout_ms=1000)
    await queue.connect()
    try:
        await queue.add_task("t", {})
        [delivery] = await queue.read("c1", 1)
        assert await queue.ack([delivery.receipt]) == [1]
    finally:
        await queue.disconnect()
    strict = TaskQueue(cluster.url, name=fresh(), replicas_to_wait=2, replica_wait_timeout_ms=100)
    await strict.connect()
    try:
        with pytest.raises(ReplicationTimeout, match="only 1 of the 2"):
            await strict.add_task("t", {})  # each shard has one replica
    finally:
        await strict.disconnect()


async def test_a_queue_works_through_a_slot_migration(cluster: ClusterRedis) -> None:
    queue = TaskQueue(cluster.url, name=fresh(), replicas_to_wait=1)
    await queue.connect()
    try:
        await queue.add_task("t", {"n": 1})
        slot = slot_of(queue.keys.stream(0))
        source = cluster.owner(slot)
        assert source is not None
        target = next(n for n in cluster.nodes if n is not source and n.role() == "master")
        await asyncio.to_thread(cluster.begin_migration, slot, source, target)
        with pytest.raises(RedisUnavailable, match="being migrated"):
            await queue.add_task("t", {"n": 2})  # TRYAGAIN: the queue's keys are split; nothing ran
        await asyncio.to_thread(cluster.finish_migration, slot, source, target)
        await queue.add_task("t", {"n": 3})  # MOVED, followed (with WAIT on the new owner's connection)
        deliveries = await queue.read("c1", 10)
        assert sorted(d.task.payload["n"] for d in deliveries) == [1, 3]
    finally:
        await queue.disconnect()


def test_the_harness_journal_names_what_ran(tmp_path: Path) -> None:
    """Every run folder records the server binary, its version and the topology (verdict.json "redis")."""
    provider = make_provider("cluster", tmp_path)
    facts = provider.describe()
    assert {"server", "server_version", "server_binary", "topology"} <= facts.keys()


async def test_a_wait_cut_short_by_a_demotion_is_an_unknown_outcome(tmp_path: Path) -> None:
    """The primary is made a replica while an enqueue waits for its replicas: Redis answers the WAIT with
    UNBLOCKED after the write ran there. That is RedisUnavailable (outcome unknown), never a crash."""
    primary = LocalRedis(tmp_path / "primary")
    primary.start()
    replica = LocalRedis(tmp_path / "replica", RedisConfig(extra_args=("--replicaof", "127.0.0.1", str(primary.port))))
    replica.start()
    queue = TaskQueue(primary.url, name=fresh(), replicas_to_wait=2, replica_wait_timeout_ms=20_000)
    try:
        await queue.connect()
        waiting = asyncio.create_task(queue.add_task("t", {}))  # one replica only: WAIT 2 blocks
        await asyncio.sleep(0.3)
        with admin_of(primary) as client:
            client.execute_command("REPLICAOF", "127.0.0.1", replica.port)
        with pytest.raises(RedisUnavailable, match="UNBLOCKED"):
            await asyncio.wait_for(waiting, 10)
    finally:
        await queue.disconnect()
        replica.stop()
        primary.stop()


def admin_of(server: LocalRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=5)
