"""TaskQueue: enqueue, read, settle, recover and inspect one queue.

The method names of the seed queue (add_task, consume_tasks, complete_task,
fail_task, get_queue_stats) are kept, so code written against it runs unchanged.
Each method is one atomic call into taskq.lua; the batch forms (add_tasks, ack,
fail) settle many tasks in one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from enum import IntEnum
from types import TracebackType
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)

from taskq.codec import codec_tag
from taskq.connection import Client, close_redis, open_redis, redacted, topology_of
from taskq.dlq import DeadLetters
from taskq.errors import (
    ConfigError,
    DecodeError,
    LeaseLost,
    NotConnected,
    RedisUnavailable,
    TaskqError,
    WrongKeyType,
)
from taskq.keys import QueueKeys
from taskq.scripts import UNAVAILABLE, Library, unavailable
from taskq.settings import QueueSettings
from taskq.stats import QueueStats
from taskq.task import Delivery, Receipt, Task, TaskPriority, decode_task, encode_task, new_task_id

log = logging.getLogger("taskq")

_ENQUEUE_CHUNK = 1000
# Receipts per ack call: bounded so a function call never runs long on the server.
_SETTLE_CHUNK = 1000


class Outcome(IntEnum):
    """What became of one settle request (ack, fail, renew, release)."""

    LEASE_LOST = -1  # another delivery owns the entry now; nothing was changed
    NOT_PENDING = 0  # already settled, or lost with its consumer group; nothing was changed
    DONE = 1  # acked, renewed or released
    RETRIED = 2  # failed and scheduled for another attempt
    DEAD = 3  # failed and moved to the dead-letter queue


_REFUSAL_REASONS = {
    Outcome.LEASE_LOST: "its lease expired and another consumer took it over",
    Outcome.NOT_PENDING: "it is not pending: already settled, or lost with its consumer group",
}


class TaskQueue:
    """A priority task queue on Redis Streams (see DESIGN.md for the key layout)."""

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        *,
        name: str = "tasks",
        pending_timeout: float = 30.0,
        batch_size: int = 10,
        retry_base_delay: float = 1.0,
        settings: QueueSettings | None = None,
        client: Client | None = None,
        **options: Any,
    ) -> None:
        unknown = set(options) - QueueSettings.option_names()
        if unknown:
            raise ConfigError(
                f"unknown TaskQueue option(s) {sorted(unknown)}; valid ones: {sorted(QueueSettings.option_names())}"
            )
        if settings is None:
            settings = QueueSettings(
                name=name,
                pending_timeout_s=pending_timeout,
                batch_size=batch_size,
                retry_base_delay_s=retry_base_delay,
                **options,
            )
        self.redis_url = redis_url
        # A client shared with other queues (many queues over a cluster's shards in one process): used as
        # it is, and left open by disconnect(). None: the queue opens its own from redis_url.
        self._shared = client
        self.settings = settings
        self.keys = QueueKeys(settings.name)
        self.events: Counter[str] = Counter()
        self._codec_tag = codec_tag(settings.codec)
        self._redis: Client | None = None
        self._library: Library | None = None
        self._run_id: str | None = None

    # -- connection -------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection, load the Functions library and create the consumer group."""
        if self._redis is not None:
            return
        settings = self.settings
        self._redis = self._shared or open_redis(self.redis_url, socket_timeout_s=settings.socket_timeout_s)
        self._library = Library(
            self._redis, self.keys, replicas_to_wait=settings.replicas_to_wait,
            replica_wait_timeout_ms=settings.replica_wait_timeout_ms,
        )  # fmt: skip
        try:
            await self._prepare_server()
        except BaseException:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        redis, self._redis, self._library = self._redis, None, None
        if redis is not None and redis is not self._shared:
            await close_redis(redis)

    async def __aenter__(self) -> TaskQueue:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    @property
    def redis(self) -> Client:
        """The underlying client, for inspection and tests."""
        if self._redis is None:
            raise NotConnected("the queue is not connected: call `await queue.connect()` or use `async with`")
        return self._redis

    def _lib(self) -> Library:
        if self._library is None:
            raise NotConnected("the queue is not connected: call `await queue.connect()` or use `async with`")
        return self._library

    async def _prepare_server(self) -> None:
        redis = self.redis
        try:
            info = await server_info(redis)
            require_functions(info, self.redis_url)
            if await self._lib().load():
                self.events["functions_loaded"] += 1
            for stream in self.keys.streams:
                await self._create_group(stream)
        except AuthenticationError as exc:  # a ConnectionError to redis-py: retried like one
            raise RedisUnavailable(
                f"Redis at {redacted(self.redis_url)} refused the login ({exc}); "
                "check the user name and password in the URL (redis://user:password@host:port/db)"
            ) from exc
        except NoPermissionError as exc:
            raise ConfigError(
                f"the Redis user of {redacted(self.redis_url)} may not run a command taskq needs ({exc}); "
                "grant it with ACL SETUSER, or load the Functions library once as an admin "
                "if the user may not run FUNCTION LOAD"
            ) from exc
        except (ClusterDownError, MovedError, AskError, TryAgainError) as exc:
            raise _topology_error(exc, self.redis_url) from exc
        except (*UNAVAILABLE, RedisClusterException) as exc:
            raise RedisUnavailable(
                f"cannot reach Redis at {redacted(self.redis_url)} ({type(exc).__name__}: {exc}); "
                f"{_reach_hint(self.redis_url)}"
            ) from exc
        except ResponseError as exc:
            raise _topology_error(exc, self.redis_url) from exc
        run_id = str(info.get("run_id", ""))
        if self._run_id is not None and run_id != self._run_id:
            self.events["redis_restarted"] += 1
        self._run_id = run_id

    async def _create_group(self, stream: str) -> None:
        try:
            await self.redis.xgroup_create(stream, self.settings.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return
            if "WRONGTYPE" in str(exc) or "required key" in str(exc):
                raise WrongKeyType(
                    f"{stream} exists but is not a stream ({exc}); taskq owns every key under "
                    f"{self.keys.prefix}: delete or rename the foreign key"
                ) from exc
            raise

    async def recover_server_state(self) -> None:
        """After Redis came back: reload what it lost (Functions, groups) and note a restart."""
        await self._prepare_server()

    def _now(self) -> str:
        clock = self.settings.clock_ms
        return "" if clock is None else str(clock())

    # -- enqueue ------------------------------------------------------------------------

    async def add_task(
        self,
        task_type: str,
        payload: Any,
        priority: TaskPriority | int = TaskPriority.NORMAL,
        max_retries: int = 3,
        timeout: float = 300.0,
        retry_count: int = 0,
        task_id: str | None = None,
        *,
        delay_s: float = 0.0,
    ) -> str:
        """Enqueue one task; returns its id. With delay_s > 0 it becomes ready later."""
        task = Task(
            task_id=task_id or new_task_id(),
            task_type=task_type,
            payload=payload,
            priority=_priority(priority),
            max_retries=max_retries,
            timeout=timeout,
            retry_count=retry_count,
        )
        await self.add_tasks([task], delay_s=delay_s)
        return task.task_id

    async def add_tasks(self, tasks: Iterable[Task], *, delay_s: float = 0.0) -> list[str]:
        """Enqueue many tasks, a thousand per round trip; returns their ids in order.

        Each chunk is atomic; if Redis goes away mid-way, RedisUnavailable is raised
        and the chunk in flight may or may not have been stored.
        """
        if delay_s < 0:
            raise ConfigError(f"delay_s must be zero or positive, got {delay_s}")
        due = 0 if delay_s == 0 else self._due_ms(delay_s)
        tag, limit = self._codec_tag, self.settings.max_payload_bytes
        ids: list[str] = []
        batch: list[tuple[int, int, list[bytes | str]]] = []
        for task in tasks:
            _check_task(task)
            batch.append((int(task.priority), due, encode_task(task, tag, limit)))
            ids.append(task.task_id)
            if len(batch) == _ENQUEUE_CHUNK:
                await self._lib().enqueue(self.settings.group, self._now(), batch)
                batch = []
        if batch:
            await self._lib().enqueue(self.settings.group, self._now(), batch)
        return ids

    enqueue_many = add_tasks

    def _due_ms(self, delay_s: float) -> int:
        clock = self.settings.clock_ms
        now_ms = clock() if clock is not None else int(time.time() * 1000)
        return now_ms + int(delay_s * 1000)

    # -- read -----------------------------------------------------------------------------

    async def read(self, consumer: str, count: int | None = None, *, block_ms: int | None = None) -> list[Delivery]:
        """Deliver up to `count` ready tasks to `consumer`, highest priority first.

        Due retries are promoted first. When nothing is ready, waits up to `block_ms`
        (default: settings.block_ms) for new tasks without polling.
        """
        count = count or self.settings.batch_size
        block = self.settings.block_ms if block_ms is None else block_ms
        reply = await self._lib().read(self.settings.group, consumer, count, self._now(), self.settings.promote_limit)
        deliveries = await self._decode(consumer, _entries_of_read(reply))
        if deliveries or reply[1:] or block <= 0:
            return deliveries
        wait_ms = reply[0]
        if wait_ms >= 0:
            block = min(block, wait_ms)
        if block <= 0:
            return []
        return await self._blocking_read(consumer, count, block)

    async def _blocking_read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        streams: Any = {stream: ">" for stream in self.keys.streams}
        try:
            reply: Any = await self.redis.xreadgroup(
                self.settings.group, consumer, streams, count=count, block=block_ms
            )
        except UNAVAILABLE as exc:
            raise unavailable(exc, "waiting for tasks") from exc
        except ResponseError as exc:
            # The group or the stream vanished under the wait (deleted, FLUSHALL): the
            # next read recreates what is missing inside the script.
            if "NOGROUP" in str(exc) or "UNBLOCKED" in str(exc):
                return []
            if str(exc).startswith(("READONLY", "MASTERDOWN", "LOADING")):
                raise unavailable(exc, "waiting for tasks (the server is no primary now)") from exc
            raise
        priority_of = {stream.encode(): prio for prio, stream in enumerate(self.keys.streams)}
        entries = [
            (priority_of[stream], entry_id, 1, fields)
            for stream, stream_entries in sorted(reply or [], key=lambda item: priority_of[item[0]])
            for entry_id, fields in stream_entries
            if fields is not None
        ]
        return await self._decode(consumer, entries)

    async def reclaim(self, consumer: str, count: int | None = None) -> list[Delivery]:
        """Take over deliveries idle past pending_timeout (their worker died or hung).

        Entries delivered `delivery_cap` times without an ack or fail go to the DLQ.
        """
        reply = await self._lib().reclaim(
            self.settings.group,
            consumer,
            int(self.settings.pending_timeout_s * 1000),
            count or self.settings.batch_size,
            self.settings.delivery_cap,
            self._now(),
        )
        entries = [(reply[i], reply[i + 1], reply[i + 2], reply[i + 3]) for i in range(0, len(reply), 4)]
        return await self._decode(consumer, entries)

    async def _decode(
        self, consumer: str, entries: Iterable[tuple[int, bytes, int, list[bytes] | Mapping[bytes, bytes]]]
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        malformed: list[tuple[Receipt, str]] = []
        for prio, entry_id, deliveries_count, fields in entries:
            receipt = Receipt(prio, entry_id.decode(), deliveries_count, consumer)
            try:
                deliveries.append(Delivery(receipt, decode_task(fields, prio)))
            except DecodeError as exc:
                malformed.append((receipt, f"malformed entry: {exc}"))
        if malformed:
            await self.bury(malformed)
        return deliveries

    async def promote(self) -> int:
        """Move delayed tasks that are due to their ready streams (reads do this too)."""
        return await self._lib().promote(self.settings.group, self._now(), self.settings.promote_limit)

    async def consume_tasks(self, worker_id: str) -> AsyncIterator[tuple[str, Task]]:
        """Yield (receipt, task) forever, including tasks reclaimed from dead consumers.

        Settle each with complete_task(receipt) or fail_task(receipt, error). Tasks read
        but not yet yielded when the generator is closed are released at once.
        """
        interval_s = self.settings.reclaim_interval_s
        next_reclaim = 0.0
        backoff_s = 0.05
        while True:
            _raise_if_cancel_was_swallowed()
            try:
                batch: list[Delivery] = []
                if time.monotonic() >= next_reclaim:
                    batch = await self.reclaim(worker_id)
                    next_reclaim = time.monotonic() + interval_s
                if not batch:
                    wait_ms = max(1, int((next_reclaim - time.monotonic()) * 1000))
                    batch = await self.read(worker_id, block_ms=min(self.settings.block_ms, wait_ms))
                backoff_s = 0.05
            except RedisUnavailable as exc:
                log.warning("consume_tasks(%s): %s; retrying in %.2fs", worker_id, exc, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)
                await self._reconnect_quietly()
                continue
            for position, delivery in enumerate(batch):
                try:
                    yield str(delivery.receipt), delivery.task
                except GeneratorExit:
                    await self._release_quietly(worker_id, [d.receipt for d in batch[position + 1 :]])
                    raise

    async def _reconnect_quietly(self) -> None:
        with contextlib.suppress(RedisUnavailable):
            await self.recover_server_state()

    async def _release_quietly(self, consumer: str, receipts: Sequence[Receipt]) -> None:
        if receipts and self._library is not None:
            try:
                await self.release(consumer, receipts)
            except RedisUnavailable:
                log.warning("could not release %d deliveries; they return after pending_timeout", len(receipts))

    # -- settle ----------------------------------------------------------------------------

    async def ack(self, receipts: Sequence[str | Receipt]) -> list[Outcome]:
        """Complete many deliveries in one round trip; an Outcome per receipt, never raises LeaseLost."""
        parsed = [Receipt.parse(text) for text in receipts]
        outcomes: list[Outcome] = []
        for start in range(0, len(parsed), _SETTLE_CHUNK):
            statuses = await self._lib().ack(self.settings.group, parsed[start : start + _SETTLE_CHUNK])
            outcomes += map(Outcome, statuses)
        return outcomes

    async def fail(self, failures: Sequence[tuple[str | Receipt, str]]) -> list[Outcome]:
        """Fail many deliveries: each is retried with backoff or, out of retries, dead-lettered."""
        args = [(*Receipt.parse(text), error, random.random()) for text, error in failures]
        if not args:
            return []
        settings = self.settings
        statuses = await self._lib().fail(
            settings.group,
            self._now(),
            int(settings.retry_base_delay_s * 1000),
            int(settings.retry_max_delay_s * 1000),
            args,
        )
        return [Outcome(s) for s in statuses]

    async def complete_task(self, message_id: str | Receipt) -> None:
        """Ack one delivery. Raises LeaseLost if it is no longer yours (nothing is changed then)."""
        [outcome] = await self.ack([message_id])
        _raise_if_refused(message_id, outcome)

    async def fail_task(
        self, message_id: str | Receipt, error: str | BaseException, task: Task | None = None
    ) -> Outcome:
        """Fail one delivery: RETRIED (same task id, retry_count + 1) or DEAD once out of retries.

        `task` is accepted for compatibility and ignored: the retry count stored in Redis
        decides, so a stale or edited Task object cannot reset it.
        """
        [outcome] = await self.fail([(message_id, str(error) or type(error).__name__)])
        _raise_if_refused(message_id, outcome)
        return outcome

    async def bury(self, entries: Sequence[tuple[str | Receipt, str]]) -> list[Outcome]:
        """Move deliveries straight to the DLQ with a reason (for entries that cannot be decoded)."""
        args = [(*Receipt.parse(text), reason) for text, reason in entries]
        if not args:
            return []
        return [Outcome(s) for s in await self._lib().bury(self.settings.group, self._now(), args)]

    async def renew(self, consumer: str, receipts: Sequence[str | Receipt]) -> list[Outcome]:
        """Reset the idle time of deliveries `consumer` still owns, so nobody reclaims them."""
        args = _lease_args(receipts)
        if not args:
            return []
        return [Outcome(s) for s in await self._lib().renew(self.settings.group, consumer, args)]

    async def release(self, consumer: str, receipts: Sequence[str | Receipt]) -> list[Outcome]:
        """Give owned deliveries back at once, unprocessed (graceful shutdown)."""
        args = _lease_args(receipts)
        if not args:
            return []
        return [Outcome(s) for s in await self._lib().release(self.settings.group, consumer, args)]

    # -- inspect -----------------------------------------------------------------------------

    async def stats(self) -> QueueStats:
        """Counts and counters; keys that do not exist yet read as zero."""
        return QueueStats.from_reply(await self._lib().stats(self.settings.group))

    async def get_queue_stats(self) -> dict[str, Any]:
        """stats() as a plain dict (the seed's format plus per-priority detail)."""
        return (await self.stats()).as_dict()

    @property
    def dlq(self) -> DeadLetters:
        """The dead-letter queue: list, inspect, requeue, purge."""
        return DeadLetters(self)

    @property
    def library(self) -> Library:
        return self._lib()


# Redis Functions, which hold every transition, came with Redis 7.0.
FUNCTIONS_SINCE = (7, 0, 0)


async def server_info(redis: Client) -> dict[str, Any]:
    """INFO server of the server taskq writes to (any primary of a cluster: they run one version)."""
    if isinstance(redis, RedisCluster):
        try:
            await redis.initialize()
        except IndexError:  # redis-py finds no primary to make its default node
            primaries = []
        else:
            primaries = redis.get_primaries()
        if not primaries:
            raise RedisClusterException("the cluster serves no slot: it was never formed, or lost every shard")
        node = primaries[0]
        found = await redis.execute_command("INFO", "server", target_nodes=node)
        info: dict[str, Any] = found.get(node.name, found) if isinstance(found, dict) and node.name in found else found
        return info
    return await redis.info("server")


def require_functions(info: Mapping[str, Any], url: str) -> None:
    """ConfigError naming the version found when the server is older than Redis 7 (no Functions)."""
    found = str(info.get("redis_version", "0"))
    numbers = tuple(int(part) for part in found.split(".")[:3] if part.isdigit())
    if numbers < FUNCTIONS_SINCE:
        raise ConfigError(
            f"Redis at {redacted(url)} is version {found}, but taskq needs Redis 7.0 or later "
            "(its transitions are Redis Functions): upgrade the server (or use Valkey 7.2+)"
        )


def _reach_hint(url: str) -> str:
    topology = topology_of(url)
    if topology is None:
        return "start redis-server or fix the URL (redis://host:port, rediss:// for TLS)"
    if topology.kind == "sentinel":
        return (
            f"check that the Sentinels at {', '.join(f'{h}:{p}' for h, p in topology.hosts)} run and watch a primary "
            f"called {topology.service!r} (SENTINEL MASTERS), and that the primary is up"
        )
    return "check that the cluster nodes run and the cluster is fully formed (redis-cli --cluster check HOST:PORT)"


def _topology_error(exc: ResponseError, url: str) -> TaskqError:
    """A server that answered, but is not what the URL says (a cluster node behind redis://, not a Sentinel)."""
    message = f"{type(exc).__name__}: {exc}"
    cluster_reply = isinstance(exc, (ClusterDownError, MovedError, AskError, TryAgainError))
    if cluster_reply and topology_of(url) is None:
        return ConfigError(
            f"Redis at {redacted(url)} is a Redis Cluster node ({message}): use redis+cluster://HOST:PORT/"
        )
    if cluster_reply:
        return RedisUnavailable(
            f"the cluster at {redacted(url)} cannot serve the queue now ({message}); {_reach_hint(url)}"
        )
    if "unknown command" in message.lower() and "sentinel" in message.lower():
        return ConfigError(
            f"{redacted(url)} names a server that is not a Sentinel ({message}): give the Sentinels' addresses"
        )
    return TaskqError(f"preparing the queue at {redacted(url)} failed: {message}")


def _priority(value: TaskPriority | int) -> TaskPriority:
    try:
        return TaskPriority(value)
    except ValueError:
        names = ", ".join(f"{p.value} ({p.name})" for p in TaskPriority)
        raise ConfigError(f"priority must be one of {names}; got {value!r}") from None


def _check_task(task: Task) -> None:
    task.priority = _priority(task.priority)
    if not isinstance(task.task_type, str) or not task.task_type:
        raise ConfigError(f"task_type must be a non-empty string, got {task.task_type!r}")
    if task.max_retries < 0 or task.retry_count < 0:
        raise ConfigError("max_retries and retry_count must be zero or positive")
    if not task.timeout > 0:
        raise ConfigError(f"timeout must be positive seconds, got {task.timeout!r}")


def _entries_of_read(reply: list[Any]) -> list[tuple[int, bytes, int, list[bytes]]]:
    return [(reply[i], reply[i + 1], 1, reply[i + 2]) for i in range(1, len(reply), 3)]


def _lease_args(receipts: Sequence[str | Receipt]) -> list[tuple[int, str, int]]:
    """Receipts as (priority, entry id, deliveries): renew and release name the consumer once."""
    return [Receipt.parse(text)[:3] for text in receipts]


def _raise_if_cancel_was_swallowed() -> None:
    """Honour a cancel that asyncio.wait_for (inside redis-py) swallowed.

    On Python 3.11, wait_for returns the inner result when a cancel lands as the inner
    call completes; the task's cancel request stays counted, so it can be seen here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _raise_if_refused(message_id: str | Receipt, outcome: Outcome) -> None:
    if outcome in _REFUSAL_REASONS:
        raise LeaseLost(str(message_id), _REFUSAL_REASONS[outcome])
