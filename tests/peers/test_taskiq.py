"""taskiq + taskiq-redis under the harness: the adapter against a real redis-server, the library's own
reclaim mechanics behind the findings, and short runs through `harness run` (steady is valid on the
list broker; on the stream broker it shows the never-deleted entries, finding taskiq-acked-never-deleted)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("taskiq", reason="taskiq is not installed: pip install -e '.[peers]'")
pytest.importorskip("taskiq_redis", reason="taskiq-redis is not installed: pip install -e '.[peers]'")

from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

from harness.adapters.base import QueueOptions, TaskSpec
from harness.peers.taskiq import GROUP, VARIANTS, TaskiqAdapter
from harness.providers.local import LocalRedis
from tests.peers.common import figures, invalid_checkers, run_for_verdict

pytestmark = pytest.mark.peers
REPO = Path(__file__).resolve().parents[2]
FINDINGS = REPO / "reports" / "findings" / "plans"


def spec(n: int, prio: int = 2) -> TaskSpec:
    tid = f"t{n}"
    return TaskSpec(tid=tid, priority=prio, max_retries=2, payload={"tid": tid, "ms": 0})


@pytest.fixture
async def stream(redis_server: LocalRedis, queue_name: str) -> AsyncIterator[TaskiqAdapter]:
    adapter = VARIANTS["default"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    yield adapter
    await adapter.close()


async def wait_s(seconds: float) -> None:
    """Let a worker's broker run on its own for a while (the point of the test is what it does meanwhile)."""
    await asyncio.sleep(seconds)


def tid_of(message: Any) -> str:
    return str(json.loads(message.data)["args"][0]["tid"])


# -- the adapter ------------------------------------------------------------------------------------


async def test_stream_adapter_reads_ready_pending_and_acked_entries(
    stream: TaskiqAdapter, redis_server: LocalRedis
) -> None:
    await stream.enqueue([spec(n, prio=n % 4) for n in range(5)])
    assert await stream.depth() == {"ready": 5, "pending": 0, "delayed": 0, "dead": 0, "completed": 0}
    # A worker's broker reads two and acks one, as taskiq does (XACK only).
    worker = RedisStreamBroker(redis_server.url, queue_name=stream._queue, consumer_name="w1", xread_count=2)
    listener = worker.listen()
    first, second = await anext(listener), await anext(listener)  # one XREADGROUP of two
    assert isinstance(first, AckableMessage) and isinstance(second, AckableMessage)
    await first.ack()  # type: ignore[misc]
    assert await stream.depth() == {"ready": 3, "pending": 1, "delayed": 0, "dead": 0, "completed": 1}
    final = await stream.final_state()
    prios = {f"t{n}": n % 4 for n in range(5)}
    read = {tid_of(first), tid_of(second)}
    assert sorted(final.ready) == sorted((tid, prio) for tid, prio in prios.items() if tid not in read)
    assert final.pending == [(tid_of(second), prios[tid_of(second)], "w1")]
    assert final.acked_not_deleted == [tid_of(first)]  # acked, still in the stream
    await listener.aclose()  # type: ignore[attr-defined]
    await worker.shutdown()


async def test_list_adapter_reads_what_is_queued(redis_server: LocalRedis, queue_name: str) -> None:
    adapter = VARIANTS["list"]()
    await adapter.connect(redis_server.url, queue_name, QueueOptions())
    try:
        await adapter.enqueue([spec(n) for n in range(3)])
        assert (await adapter.depth())["ready"] == 3
        assert sorted(tid for tid, _ in (await adapter.final_state()).ready) == ["t0", "t1", "t2"]
        assert adapter.promises.delivery == "at-most-once"
    finally:
        await adapter.close()


def test_short_idle_worker_gets_the_scenario_timeout_and_the_url_in_its_environment() -> None:
    adapter = VARIANTS["short-idle"]()
    assert adapter.promises.visibility_timeout_s == QueueOptions().pending_timeout_s
    assert VARIANTS["default"]().promises.visibility_timeout_s == 600


# -- taskiq-redis's reclaim, as the findings describe it --------------------------------------------


async def _pending_of_a_dead_worker(url: str, queue: str) -> Redis:
    """One entry read by a consumer that then died: pending, idle from now on."""
    client = RedisStreamBroker(url, queue_name=queue)
    await client.startup()  # the group, at `$`
    redis = Redis.from_url(url)
    await redis.xadd(queue, {b"data": json.dumps({"args": [{"tid": "held"}]}).encode()})
    await redis.xreadgroup(GROUP, "dead", {queue: ">"}, count=1)
    await client.shutdown()
    return redis


async def test_an_idle_worker_never_reclaims_only_one_that_reads_new_entries_does(
    redis_server: LocalRedis, queue_name: str
) -> None:
    redis = await _pending_of_a_dead_worker(redis_server.url, queue_name)
    worker = RedisStreamBroker(redis_server.url, queue_name=queue_name, idle_timeout=100, xread_block=200)
    listener = worker.listen()
    waiting = asyncio.ensure_future(anext(listener))
    await wait_s(1.5)
    # Idle far past idle_timeout, yet not reclaimed: XAUTOCLAIM runs only after an XREADGROUP that got something.
    assert not waiting.done()
    await redis.xadd(queue_name, {b"data": json.dumps({"args": [{"tid": "new"}]}).encode()})
    got = [await asyncio.wait_for(waiting, 5.0), await asyncio.wait_for(anext(listener), 5.0)]
    assert sorted(tid_of(m) for m in got) == ["held", "new"]
    # Closed at a yield, never cancelled inside a read (taskiq's listener may then never finish).
    await listener.aclose()  # type: ignore[attr-defined]
    await worker.shutdown()
    await redis.aclose()


async def test_a_stale_reclaim_lock_does_not_stop_the_reclaim(redis_server: LocalRedis, queue_name: str) -> None:
    """taskiq-redis #131 describes a lock left by a killed worker blocking every reclaim. In 1.2.4 the lock
    is taken and released inside one MULTI/EXEC with the XAUTOCLAIM (no kill can split it), and a lock
    key that is already there does not stop the XAUTOCLAIM either."""
    redis = await _pending_of_a_dead_worker(redis_server.url, queue_name)
    await redis.set(f"autoclaim:{GROUP}:{queue_name}", "left-by-a-killed-worker")
    await wait_s(0.2)
    await redis.xadd(queue_name, {b"data": json.dumps({"args": [{"tid": "new"}]}).encode()})
    worker = RedisStreamBroker(redis_server.url, queue_name=queue_name, idle_timeout=100)
    listener = worker.listen()
    got = [await asyncio.wait_for(anext(listener), 5.0) for _ in range(2)]
    assert sorted(tid_of(m) for m in got) == ["held", "new"]
    assert await redis.get(f"autoclaim:{GROUP}:{queue_name}") == b"left-by-a-killed-worker"
    await listener.aclose()  # type: ignore[attr-defined]
    await worker.shutdown()
    await redis.aclose()


async def test_entries_added_before_the_group_exists_are_never_delivered(
    redis_server: LocalRedis, queue_name: str
) -> None:
    """What a Redis restart without persistence does to taskiq: producers recreate the stream with XADD,
    a restarted worker creates the group at `$`, past them."""
    redis = Redis.from_url(redis_server.url)
    await redis.xadd(queue_name, {b"data": json.dumps({"args": [{"tid": "early"}]}).encode()})
    worker = RedisStreamBroker(redis_server.url, queue_name=queue_name, xread_block=200)
    await worker.startup()
    listener = worker.listen()
    waiting = asyncio.ensure_future(anext(listener))
    await wait_s(1.0)
    assert not waiting.done()
    await redis.xadd(queue_name, {b"data": json.dumps({"args": [{"tid": "late"}]}).encode()})
    assert tid_of(await asyncio.wait_for(waiting, 5.0)) == "late"
    await listener.aclose()  # type: ignore[attr-defined]
    await worker.shutdown()
    await redis.aclose()


# -- through `harness run` --------------------------------------------------------------------------


SHORT_STEADY = ("--duration", "2", "--rate", "600", "--tasks", "1200", "--drain-timeout", "15", "--seed", "3")


def test_steady_on_the_list_broker_is_valid(tmp_path: Path) -> None:
    verdict = run_for_verdict("run", "steady", "--queue", "peer:taskiq:list", *SHORT_STEADY, out=tmp_path)
    assert verdict["valid"] is True, invalid_checkers(verdict)
    assert figures(verdict, "delivery")["completed"] == 1200


def test_finding_acked_entries_are_never_deleted_reproduces(tmp_path: Path) -> None:
    plan = FINDINGS / "taskiq-acked-never-deleted.json"
    verdict = run_for_verdict("replay", str(plan), out=tmp_path)
    assert invalid_checkers(verdict) == {"leaks"}
    delivery, leaks = figures(verdict, "delivery"), figures(verdict, "leaks")
    assert delivery["lost"] == 0 and delivery["completed"] == delivery["enqueued_ok"] > 0
    assert leaks["acked_not_deleted"] == delivery["completed"]  # every task, acked and left in the stream
