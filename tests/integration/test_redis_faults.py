"""The Redis fault handlers (harness/nemesis/redis.py) against real redis-server processes: each does
what it says, journals its start and end with the facts the checkers need, and leaves the server whole;
and taskq, hit by them, notices what Redis lost and carries on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.errors import SetupError
from harness.fleet import Fleet
from harness.history import Journal, Op, read_journal
from harness.nemesis import FAULTS, FaultContext
from harness.nemesis.redis import require_redis_faults
from harness.plan import FaultEvent, Plan, make_plan
from harness.providers import make_provider
from harness.providers.external import ExternalRedis
from harness.providers.local import LocalRedis, RedisConfig
from harness.scenario import load_scenario
from taskq import RedisUnavailable, Task, TaskQueue
from tests.conftest import start_redis
from tests.integration.workers import eventually

DEBUG_OK = ("--enable-debug-command", "local")


def plan_for(scenario: str = "redis_crash_aof_always", redis_spec: str = "local") -> Plan:
    return make_plan(load_scenario(scenario), seed=1, queue="taskq", redis=redis_spec, queue_name="q")


async def _completed() -> int:
    return 0


async def strike(provider: Any, kind: str, folder: Path, *, duration_s: float = 0.3) -> list[Op]:
    """Run one fault handler to its end; returns what it journaled."""
    path = folder / f"nemesis-{kind}-{time.monotonic_ns()}.jsonl"
    with Journal(path) as journal:
        ctx = FaultContext(
            fleet=Fleet(folder, folder / "plan.json", provider.url), journal=journal, provider=provider,
            plan=plan_for(), completed=_completed,
        )  # fmt: skip
        event = FaultEvent(kind=kind, target="redis", duration_s=duration_s, at_s=0.0, aim="any")
        await asyncio.wait_for(FAULTS[kind](ctx, event, "nemesis-0"), timeout=30)
    return read_journal(path)


def sync_client(server: LocalRedis, timeout_s: float = 2.0) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[Any]:
    started: list[LocalRedis] = []

    def start(persistence: str = "none") -> LocalRedis:
        server = start_redis(
            tmp_path / f"redis-{persistence}", RedisConfig(persistence=persistence, extra_args=DEBUG_OK)
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def queue_on(queue_name: str) -> AsyncIterator[Any]:
    made: list[TaskQueue] = []

    async def connect(server: LocalRedis) -> TaskQueue:
        queue = TaskQueue(server.url, name=queue_name, pending_timeout=0.5, retry_base_delay=0)
        await queue.connect()
        made.append(queue)
        return queue

    yield connect
    for queue in made:
        await queue.disconnect()


def assert_journaled(ops: list[Op], kind: str) -> dict[str, Any]:
    """One fault, invoked then ended ok; returns the invoke's value."""
    assert [(op["type"], op["f"]) for op in ops] == [("invoke", "fault"), ("ok", "fault")], ops
    assert ops[0]["value"]["kind"] == kind
    assert ops[1]["time_ns"] > ops[0]["time_ns"]
    value: dict[str, Any] = ops[0]["value"]
    return value


async def blocked_clients(server: LocalRedis, at_least: int) -> bool:
    with sync_client(server) as probe:
        return int(probe.info("clients")["blocked_clients"]) >= at_least


async def until_answers(queue: TaskQueue, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await queue.stats()
            return
        except RedisUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_kill_under_aof_always_keeps_every_acknowledged_task(
    server_with: Any, queue_on: Any, tmp_path: Path
) -> None:
    server = server_with("aof-always")
    queue: TaskQueue = await queue_on(server)
    await queue.add_tasks([Task(f"t{i}", "job", {"i": i}) for i in range(50)])
    held = await queue.read("c0", 10)
    port = server.port
    facts = assert_journaled(await strike(server, "redis-kill", tmp_path), "redis-kill")
    assert facts["persistence"] == "aof-always"
    assert server.port == port and server.starts == 2
    await until_answers(queue)
    stats = await queue.stats()
    assert (stats.total_ready, stats.total_pending) == (40, 10)
    assert await queue.ack([d.receipt for d in held]) == [1] * 10  # the leases survived too


async def test_kill_without_persistence_loses_everything_and_taskq_rebuilds(
    server_with: Any, queue_on: Any, tmp_path: Path
) -> None:
    server = server_with("none")
    queue: TaskQueue = await queue_on(server)
    await queue.add_tasks([Task(f"t{i}", "job", {}) for i in range(5)])
    [delivery] = await queue.read("c0", 1)
    assert assert_journaled(await strike(server, "redis-kill", tmp_path), "redis-kill")["persistence"] == "none"
    await until_answers(queue)  # the Functions library is gone: the call reloads it
    assert queue.library.reloads >= 1
    assert (await queue.stats()).total_ready == 0
    assert await queue.ack([delivery.receipt]) == [0]  # not pending any more: refused, never a silent ack
    await queue.add_tasks([Task("after", "job", {})])
    [again] = await queue.read("c0", 1)  # the consumer group was recreated on the way
    assert again.task.task_id == "after"
    await queue.recover_server_state()
    assert queue.events["redis_restarted"] == 1


async def test_kill_under_rdb_journals_when_the_last_snapshot_was_taken(server_with: Any, tmp_path: Path) -> None:
    server = server_with("rdb")
    with sync_client(server) as client:
        client.set("k", "v")
        client.bgsave()
    before_ns = time.monotonic_ns()
    facts = assert_journaled(await strike(server, "redis-kill", tmp_path), "redis-kill")
    assert facts["persistence"] == "rdb"
    assert facts["durable_until_ns"] <= before_ns


async def test_pause_freezes_the_server_and_resumes_it(server_with: Any, tmp_path: Path) -> None:
    server = server_with()
    with sync_client(server, timeout_s=0.2) as client:
        task = asyncio.create_task(strike(server, "redis-pause", tmp_path, duration_s=1.0))

        async def ping_times_out() -> bool:
            try:
                await asyncio.to_thread(client.ping)
            except redis.exceptions.TimeoutError:
                return True
            return False

        await eventually(ping_times_out, timeout_s=5, what="the paused server stopped answering")
        assert_journaled(await task, "redis-pause")
    with sync_client(server) as client:
        assert client.ping()


@pytest.mark.parametrize("kind", ["client-pause", "debug-sleep"])
async def test_stalls_hold_other_clients_for_their_duration(server_with: Any, tmp_path: Path, kind: str) -> None:
    server = server_with()
    task = asyncio.create_task(strike(server, kind, tmp_path, duration_s=0.6))
    await asyncio.sleep(0.15)
    with sync_client(server) as client:
        started = time.monotonic()
        assert await asyncio.to_thread(client.set, "k", "v")
        assert time.monotonic() - started >= 0.3
    assert_journaled(await task, kind)


async def test_client_kill_cuts_connections_in_flight(server_with: Any, tmp_path: Path) -> None:
    server = server_with()
    with sync_client(server, timeout_s=5) as client:
        client.ping()
        blocked = asyncio.create_task(asyncio.to_thread(client.blpop, ["never-filled"], 3))
        await eventually(lambda: blocked_clients(server, 1), timeout_s=5, what="the BLPOP is blocked in the server")
        ops = await strike(server, "client-kill", tmp_path, duration_s=0.2)
        with pytest.raises(redis.exceptions.ConnectionError):
            await blocked
    assert_journaled(ops, "client-kill")
    assert ops[1]["value"]["killed"] >= 1


async def test_flushall_drops_keys_and_functions_and_taskq_reloads(
    server_with: Any, queue_on: Any, tmp_path: Path
) -> None:
    server = server_with()
    queue: TaskQueue = await queue_on(server)
    await queue.add_tasks([Task("t1", "job", {})])
    facts = assert_journaled(await strike(server, "flushall", tmp_path), "flushall")
    assert facts["persistence"] == "flushed"
    with sync_client(server) as client:
        assert client.dbsize() == 0
        assert client.function_list() == []
    await queue.add_tasks([Task("t2", "job", {})])
    assert queue.library.reloads == 1
    [delivery] = await queue.read("c0", 1)
    assert delivery.task.task_id == "t2"


async def test_a_server_the_harness_must_not_hurt_is_refused(redis_server: LocalRedis, tmp_path: Path) -> None:
    external = ExternalRedis(redis_server.url)
    with pytest.raises(SetupError, match="use --redis local or --redis container"):
        require_redis_faults(plan_for(redis_spec=redis_server.url), external)
    require_redis_faults(plan_for("kill_workers", redis_server.url), external)  # worker faults only: fine
    ops = await strike(external, "redis-kill", tmp_path)
    assert [op["type"] for op in ops] == ["invoke", "info"]
    assert "cannot hurt" in ops[1]["value"]["error"]


def test_harness_servers_allow_debug_sleep_from_loopback_only(tmp_path: Path) -> None:
    provider = make_provider("local", tmp_path, "aof-everysec")
    assert isinstance(provider, LocalRedis)
    assert provider.config.extra_args == DEBUG_OK
    assert provider.persistence == "aof-everysec"
    with pytest.raises(SetupError, match="container\\[:IMAGE\\]"):
        make_provider("docker", tmp_path)
