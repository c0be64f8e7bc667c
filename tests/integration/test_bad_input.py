"""Bad payloads, bad arguments, foreign keys, no server, no connection: each a clear taskq error."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.providers.local import LocalRedis, free_port
from taskq import (
    ConfigError,
    NotConnected,
    PayloadError,
    PayloadTooLarge,
    RedisUnavailable,
    Task,
    TaskPriority,
    TaskqError,
    TaskQueue,
    WrongKeyType,
)
from tests.conftest import QueueFactory

NOW_MS = 1_900_000_000_000


async def nothing_enqueued(queue: TaskQueue) -> None:
    stats = await queue.stats()
    assert (stats.counters["tasks_added"], stats.total_ready, stats.delayed) == (0, 0, 0)
    for stream in queue.keys.streams:
        assert await queue.redis.xlen(stream) == 0


# -- payloads -----------------------------------------------------------------------------


async def test_oversized_payload_is_refused_with_both_sizes(make_queue: QueueFactory) -> None:
    queue = make_queue(max_payload_bytes=1000)
    await queue.connect()
    with pytest.raises(PayloadTooLarge, match=r"is 1011 bytes, over the limit of 1000; store large data elsewhere"):
        await queue.add_task("upload", {"blob": "x" * 1000})  # {"blob":"..."} is 1011 bytes
    await nothing_enqueued(queue)
    await queue.add_task("upload", {"blob": "x" * 989})  # exactly 1000 bytes fits
    assert (await queue.stats()).total_ready == 1


async def test_one_oversized_task_keeps_its_whole_batch_out(make_queue: QueueFactory) -> None:
    queue = make_queue(max_payload_bytes=100)
    await queue.connect()
    with pytest.raises(PayloadTooLarge):
        await queue.add_tasks([Task("ok-1", "job", {}), Task("big", "job", "y" * 200), Task("ok-2", "job", {})])
    await nothing_enqueued(queue)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@pytest.mark.parametrize("payload", [{"when": object()}, {1, 2}, {"f": print}], ids=["object", "set", "function"])
async def test_unserialisable_payload_is_a_payload_error(make_queue: QueueFactory, codec: str, payload: Any) -> None:
    queue = make_queue(codec=codec)
    await queue.connect()
    with pytest.raises(PayloadError, match="pass plain data"):
        await queue.add_task("job", payload)
    await nothing_enqueued(queue)


async def test_nan_in_a_json_payload_is_a_payload_error(queue: TaskQueue) -> None:
    with pytest.raises(PayloadError):
        await queue.add_task("job", {"x": float("nan")})
    await nothing_enqueued(queue)


# -- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"task_type": ""}, "task_type must be a non-empty string"),
        ({"max_retries": -1}, "max_retries and retry_count must be zero or positive"),
        ({"retry_count": -1}, "max_retries and retry_count must be zero or positive"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"delay_s": -1}, "delay_s must be zero or positive"),
        ({"priority": 9}, "priority"),
        ({"priority": -1}, "priority"),
    ],
)
async def test_invalid_task_arguments_are_config_errors(
    queue: TaskQueue, arguments: dict[str, Any], message: str
) -> None:
    arguments = {"task_type": "job", "payload": {}, **arguments}
    with pytest.raises(ConfigError, match=message):
        await queue.add_task(**arguments)
    await nothing_enqueued(queue)


@pytest.mark.parametrize("name", ["", "{", "}", "a{b}c", "{tasks}"])
def test_invalid_queue_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match=r"queue name .* is invalid"):
        TaskQueue(name=name)


async def test_invalid_redis_url_fails_at_connect_with_a_config_error() -> None:
    queue = TaskQueue("http://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match=r"invalid Redis URL.*redis://\[user:password@\]host:port/db"):
        await queue.connect()
    with pytest.raises(NotConnected):
        queue.redis  # noqa: B018


# -- keys of the wrong type ---------------------------------------------------------------


async def test_stream_key_holding_a_string_fails_connect_naming_it(
    make_queue: QueueFactory, redis_server: LocalRedis
) -> None:
    queue = make_queue()
    async with TaskQueue(redis_server.url, name="unrelated-admin") as admin:
        await admin.redis.set(queue.keys.stream(2), "not a stream")
    with pytest.raises(WrongKeyType, match=r"taskq:\{.*\}:p2 exists but is not a stream.*delete or rename") as caught:
        await queue.connect()
    assert queue.keys.stream(2) in str(caught.value)
    with pytest.raises(NotConnected):
        queue.redis  # noqa: B018 - a failed connect leaves nothing open


async def check_wrong_type(action: Callable[[], Awaitable[object]], key: str) -> None:
    with pytest.raises(WrongKeyType) as caught:
        await action()
    message = str(caught.value)
    assert key in message, f"the message should name {key}: {message}"
    assert "delete or rename" in message


async def test_stats_key_holding_a_list(queue: TaskQueue) -> None:
    await queue.redis.rpush(queue.keys.stats, "foreign")
    await check_wrong_type(lambda: queue.add_task("job", {}), queue.keys.stats)
    await check_wrong_type(queue.stats, queue.keys.stats)
    await nothing_enqueued_raw(queue)


async def nothing_enqueued_raw(queue: TaskQueue) -> None:
    for stream in queue.keys.streams:
        assert await queue.redis.xlen(stream) == 0


async def test_delayed_key_holding_a_string(queue: TaskQueue) -> None:
    await queue.redis.set(queue.keys.delayed, "foreign")
    await check_wrong_type(lambda: queue.add_task("job", {}, delay_s=5), queue.keys.delayed)
    await check_wrong_type(lambda: queue.read("w", block_ms=0), queue.keys.delayed)


async def test_ready_stream_replaced_after_connect(queue: TaskQueue) -> None:
    await queue.add_task("job", {}, priority=TaskPriority.LOW)
    await queue.redis.delete(queue.keys.stream(1))
    await queue.redis.set(queue.keys.stream(1), "foreign")
    # Not skipped silently: HIGH tasks would never be served again.
    await check_wrong_type(lambda: queue.read("w", block_ms=0), queue.keys.stream(1))
    await check_wrong_type(lambda: queue.read("w", block_ms=50), queue.keys.stream(1))


async def test_batch_is_stored_whole_or_not_at_all_when_a_stream_is_foreign(queue: TaskQueue) -> None:
    await queue.redis.delete(queue.keys.stream(1))
    await queue.redis.set(queue.keys.stream(1), "foreign")
    batch = [
        Task("crit", "job", {}, priority=TaskPriority.CRITICAL),
        Task("high", "job", {}, priority=TaskPriority.HIGH),
    ]
    await check_wrong_type(lambda: queue.add_tasks(batch), queue.keys.stream(1))
    assert await queue.redis.xlen(queue.keys.stream(0)) == 0  # the CRITICAL task was not stored either


async def test_dlq_key_holding_a_hash(queue: TaskQueue) -> None:
    await queue.add_task("job", {}, max_retries=0)
    [delivery] = await queue.read("w", block_ms=0)
    await queue.redis.hset(queue.keys.dlq, "foreign", "1")
    await check_wrong_type(queue.dlq.entries, queue.keys.dlq)
    await check_wrong_type(queue.dlq.length, queue.keys.dlq)
    await check_wrong_type(queue.dlq.purge, queue.keys.dlq)
    assert await queue.redis.hget(queue.keys.dlq, "foreign") == b"1"  # purge left the foreign key alone
    await check_wrong_type(lambda: queue.fail_task(delivery.receipt, "boom"), queue.keys.dlq)
    assert (await queue.redis.xpending(queue.keys.stream(2), "taskq"))["pending"] == 1  # nothing half-done


# -- no server, no connection ---------------------------------------------------------------


async def test_unreachable_redis_fails_fast_saying_what_to_do() -> None:
    port = free_port()  # bound and released: nobody listens there
    queue = TaskQueue(f"redis://:s3cret-pw@127.0.0.1:{port}/0", socket_timeout_s=5)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match="start redis-server or fix the URL") as caught:
        await queue.connect()
    assert time.monotonic() - started < 2
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message, "the password must not end up in logs"
    with pytest.raises(NotConnected):
        queue.redis  # noqa: B018


@pytest.mark.parametrize(
    "use",
    [
        lambda q: q.add_task("job", {}),
        lambda q: q.add_tasks([Task("t", "job", {})]),
        lambda q: q.read("w", block_ms=0),
        lambda q: q.reclaim("w"),
        lambda q: q.ack(["2:1-0:1:w"]),
        lambda q: q.fail([("2:1-0:1:w", "x")]),
        lambda q: q.renew("w", ["2:1-0:1:w"]),
        lambda q: q.release("w", ["2:1-0:1:w"]),
        lambda q: q.promote(),
        lambda q: q.stats(),
        lambda q: q.get_queue_stats(),
        lambda q: q.dlq.length(),
        lambda q: q.dlq.entries(),
        lambda q: q.dlq.purge(),
    ],
)
async def test_use_before_connect_raises_not_connected(use: Callable[[TaskQueue], Awaitable[object]]) -> None:
    queue = TaskQueue("redis://127.0.0.1:1/0")
    with pytest.raises(NotConnected, match=r"call `await queue.connect\(\)` or use `async with`"):
        await use(queue)


async def test_use_after_disconnect_raises_not_connected(queue: TaskQueue) -> None:
    await queue.disconnect()
    with pytest.raises(NotConnected):
        await queue.add_task("job", {})
    with pytest.raises(NotConnected):
        queue.library  # noqa: B018
    await queue.disconnect()  # twice is fine


async def test_every_error_is_a_taskq_error() -> None:
    for error in (ConfigError, NotConnected, PayloadError, PayloadTooLarge, RedisUnavailable, WrongKeyType):
        assert issubclass(error, TaskqError)


# -- codecs -------------------------------------------------------------------------------

PAYLOAD = {"text": "héllo ☃", "n": [1, 2.5, None, True], "nested": {"k": {"deep": []}}}


async def stored_codec(queue: TaskQueue) -> bytes:
    [(_, fields)] = await queue.redis.xrange(queue.keys.stream(2))
    return bytes(fields[b"enc"])


async def test_msgpack_round_trip(make_queue: QueueFactory) -> None:
    queue = make_queue(codec="msgpack")
    await queue.connect()
    payload = {**PAYLOAD, "blob": b"\x00\x01\xff"}  # msgpack carries bytes, JSON cannot
    task_id = await queue.add_task("job", payload)
    assert await stored_codec(queue) == b"m"
    [delivery] = await queue.read("w", block_ms=0)
    assert (delivery.task.task_id, delivery.task.payload) == (task_id, payload)


async def test_msgpack_retry_and_dead_letter_keep_the_payload(make_queue: QueueFactory) -> None:
    queue = make_queue(codec="msgpack")
    await queue.connect()
    await queue.add_task("job", {"blob": b"\xfe"}, max_retries=1)
    [first] = await queue.read("w", block_ms=0)
    await queue.fail_task(first.receipt, "one")
    [second] = await queue.read("w", block_ms=0)
    assert second.task.payload == {"blob": b"\xfe"} and second.task.retry_count == 1
    await queue.fail_task(second.receipt, "two")
    [dead] = await queue.dlq.entries()
    assert dead.task is not None and dead.task.payload == {"blob": b"\xfe"}


@pytest.mark.parametrize(("producer_codec", "consumer_codec"), [("json", "msgpack"), ("msgpack", "json")])
async def test_producer_and_consumer_codecs_interoperate(
    make_queue: QueueFactory, producer_codec: str, consumer_codec: str
) -> None:
    producer, consumer = make_queue(codec=producer_codec), make_queue(codec=consumer_codec)
    await producer.connect()
    await consumer.connect()
    task_id = await producer.add_task("job", PAYLOAD)
    assert await stored_codec(producer) == producer_codec[0].encode()
    [delivery] = await consumer.read("w", block_ms=0)
    assert (delivery.task.task_id, delivery.task.payload) == (task_id, PAYLOAD)
    await consumer.complete_task(delivery.receipt)


# -- scheduled tasks ------------------------------------------------------------------------


async def test_scheduled_task_becomes_ready_at_its_due_time(make_queue: QueueFactory) -> None:
    now = [NOW_MS]
    queue = make_queue(clock_ms=lambda: now[0])
    await queue.connect()
    task_id = await queue.add_task("remind", {"who": "me"}, priority=TaskPriority.HIGH, delay_s=2.5)
    [(_, due)] = await queue.redis.zrange(queue.keys.delayed, 0, -1, withscores=True)
    assert due == NOW_MS + 2500
    stats = await queue.stats()
    assert (stats.delayed, stats.total_ready, stats.counters["tasks_added"]) == (1, 0, 1)

    for at in (NOW_MS, NOW_MS + 2499):
        now[0] = at
        assert await queue.read("w", block_ms=0) == []
    now[0] = NOW_MS + 2500
    [delivery] = await queue.read("w", block_ms=0)
    assert (delivery.task.task_id, delivery.task.payload) == (task_id, {"who": "me"})
    assert delivery.task.priority is TaskPriority.HIGH and delivery.task.retry_count == 0
    assert (await queue.stats()).delayed == 0


async def test_scheduled_batch_and_immediate_tasks(make_queue: QueueFactory) -> None:
    now = [NOW_MS]
    queue = make_queue(clock_ms=lambda: now[0])
    await queue.connect()
    later = await queue.add_tasks([Task(f"later-{i}", "job", {"i": i}) for i in range(3)], delay_s=60)
    soon = await queue.add_task("job", {}, delay_s=0)
    [delivery] = await queue.read("w", 10, block_ms=0)
    assert delivery.task.task_id == soon
    now[0] += 60_000
    assert sorted(d.task.task_id for d in await queue.read("w", 10, block_ms=0)) == later
