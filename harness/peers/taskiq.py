"""`--queue peer:taskiq[:VARIANT]`: taskiq 0.13 with taskiq-redis 1.2.4, run through `taskiq worker`.

Producers kick tasks through taskiq's own client (a broker with the harness's task registered, started
as taskiq's docs ask of a client: `await broker.startup()`); every consumer slot is one
`python -m taskiq worker harness.peers.taskiq:worker_broker --workers 1 --max-async-tasks N`, a process
manager with one worker child that it restarts when it dies. The broker factory reads its settings
from the environment (the URL travels there, never on the command line).

Variants (the library's defaults first):

- `default`: `RedisStreamBroker` as constructed with a URL and a queue name only: consumer group
  "taskiq" created at `$`, XREADGROUP of 100 entries, an entry acked (XACK, never XDEL) after the
  task ran and its result was "saved" (ack_type when_saved, the worker's default), idle entries taken
  over by XAUTOCLAIM after `idle_timeout` = 600 s; no retry middleware, no result backend.
- `short-idle`: the same with `idle_timeout` set to the scenario's pending timeout (1 s in the worker
  fault scenarios), so that a reclaim shows within seconds.
- `retry`: the defaults plus `SmartRetryMiddleware(default_retry_label=True)`, taskiq's retry
  middleware, each task's `max_retries` label set so that it gets the harness's retry budget.
- `list`: `ListQueueBroker`: LPUSH and BRPOP on one list, no acknowledgement.

Where the library leaves a fact out, the adapter says so rather than guess: taskiq counts no
completions and keeps no failed-task registry (a task that raised is acked and, without a result
backend, forgotten), and a list broker cannot tell what its workers hold.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AsyncBroker, Context, SmartRetryMiddleware, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq.exceptions import SendTaskError
from taskiq_redis import ListQueueBroker, RedisStreamBroker

from harness.adapters.base import AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.hosted.base import QUEUE_NAME_ENV, WorkerCommand, WorkerLaunch, hosted_payload
from harness.hosted.handler import current

TASK_NAME = "harness"
# taskiq-redis's own names and defaults (taskiq_redis/redis_broker.py, RedisStreamBroker.__init__).
GROUP = "taskiq"
DEFAULT_IDLE_TIMEOUT_MS = 600_000
# The worker reads these from its environment (set by worker(), below).
URL_ENV = "HARNESS_TASKIQ_URL"
SETTINGS_ENV = "HARNESS_TASKIQ_SETTINGS"
# The harness's own clients (producers, the runner) give up on a reply after this long; taskiq's
# default is to wait forever, which a fault that holds replies would turn into a hung producer.
CLIENT_SOCKET_TIMEOUT_S = 5.0
# What one XRANGE or LRANGE call reads of a queue at the final read.
SCAN_COUNT = 5000

BrokerKind = Literal["stream", "list"]


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskiqSettings:
    """What a variant changes: the broker, its idle timeout, and the retry middleware."""

    broker: BrokerKind = "stream"
    # None: the library's default (600 s); set by worker() from the scenario for `short-idle`.
    idle_timeout_ms: int | None = None
    short_idle: bool = False
    retries: bool = False

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> TaskiqSettings:
        raw = os.environ.get(SETTINGS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


def make_broker(settings: TaskiqSettings, url: str, queue_name: str, **connection: Any) -> AsyncBroker:
    """The broker a taskiq user would build for these settings, with the harness's task registered."""
    broker: AsyncBroker
    if settings.broker == "list":
        broker = ListQueueBroker(url, queue_name=queue_name, **connection)
    elif settings.idle_timeout_ms is not None:
        broker = RedisStreamBroker(url, queue_name=queue_name, idle_timeout=settings.idle_timeout_ms, **connection)
    else:
        broker = RedisStreamBroker(url, queue_name=queue_name, **connection)
    if settings.retries:
        broker.add_middlewares(SmartRetryMiddleware(default_retry_label=True))
    broker.register_task(harness_task, task_name=TASK_NAME)
    return broker


async def harness_task(payload: dict[str, Any], context: Context = TaskiqDepends()) -> None:  # noqa: B008  taskiq's documented way to ask for the context
    """The harness's handler as taskiq calls it. SmartRetryMiddleware counts earlier tries in the
    `_retries` label (absent before the first retry, and always without the middleware)."""
    message = context.message
    attempt = int(message.labels.get("_retries", 0))
    await current().run(payload, attempt=attempt, delivered_id=message.task_id)


def worker_broker() -> AsyncBroker:
    """The factory `taskiq worker harness.peers.taskiq:worker_broker` calls in each worker child."""
    broker = make_broker(TaskiqSettings.from_env(), os.environ[URL_ENV], os.environ[QUEUE_NAME_ENV])

    def up(_state: TaskiqState) -> None:
        # taskiq's own worker-startup hook: the consumer group exists already (the runner's client
        # created it at connect), and the receiver starts reading right after this.
        current().ready()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, up)
    return broker


def _tid_of(raw: bytes) -> tuple[str, int] | None:
    """(tid, prio) of a taskiq message the harness sent; None for anything else."""
    try:
        payload = orjson.loads(raw)["args"][0]
        return str(payload["tid"]), int(payload.get("prio", 2))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        return None


class TaskiqAdapter:
    """taskiq's client for producers and the final read; `taskiq worker` for consumers."""

    socket_timeout_s = CLIENT_SOCKET_TIMEOUT_S

    def __init__(self, name: str, settings: TaskiqSettings) -> None:
        self.name = name
        self.settings = settings
        self._options = QueueOptions()
        self._queue = ""
        self._broker: AsyncBroker | None = None
        self._redis: Redis | None = None

    @property
    def promises(self) -> Promises:
        return _promises(self.settings, self._idle_timeout_ms(self._options))

    def _idle_timeout_ms(self, options: QueueOptions) -> int:
        if self.settings.short_idle:
            return max(1, round(options.pending_timeout_s * 1000))
        return self.settings.idle_timeout_ms or DEFAULT_IDLE_TIMEOUT_MS

    # -- the client ---------------------------------------------------------------------------

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options, self._queue = options, queue_name
        timeouts = {"socket_timeout": CLIENT_SOCKET_TIMEOUT_S, "socket_connect_timeout": CLIENT_SOCKET_TIMEOUT_S}
        broker = make_broker(self.settings, url, queue_name, **timeouts)
        try:
            # A client starts its broker (taskiq's docs); RedisStreamBroker then creates its group at `$`.
            await broker.startup()
        except (RedisError, OSError) as exc:
            await broker.shutdown()
            raise AdapterUnavailable(f"taskiq could not start its broker: {exc}") from exc
        self._broker = broker
        self._redis = Redis.from_url(
            url, socket_timeout=CLIENT_SOCKET_TIMEOUT_S, socket_connect_timeout=CLIENT_SOCKET_TIMEOUT_S
        )

    async def close(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def broker(self) -> AsyncBroker:
        if self._broker is None:
            raise RuntimeError("connect() first")
        return self._broker

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("connect() first")
        return self._redis

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        """taskiq kicks one message per call (no batch API): the batch's kicks go out together."""
        task = self.broker.find_task(TASK_NAME)
        assert task is not None
        kicks = []
        for spec in tasks:
            kicker = task.kicker().with_task_id(spec.tid)
            if self.settings.retries:
                # SmartRetryMiddleware gives up once `_retries + 1 >= max_retries`: the label is the
                # number of tries in all, one more than the harness's budget of retries.
                kicker = kicker.with_labels(max_retries=spec.max_retries + 1)
            kicks.append(kicker.kiq(hosted_payload(spec)))
        outcomes = await asyncio.gather(*kicks, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            cause = failed[0].__cause__ if isinstance(failed[0], SendTaskError) else failed[0]
            raise AdapterUnavailable(f"{len(failed)} of {len(tasks)} kicks failed: {cause!r}")

    # -- reading the state --------------------------------------------------------------------

    async def depth(self) -> dict[str, int]:
        try:
            if self.settings.broker == "list":
                return {"ready": int(await self.redis.llen(self._queue)), "pending": 0, "delayed": 0, "dead": 0}
            return await self._stream_depth()
        except (RedisError, OSError) as exc:
            raise AdapterUnavailable(f"depth: {exc}") from exc

    async def _group(self) -> dict[str, Any] | None:
        try:
            groups = await self.redis.xinfo_groups(self._queue)
        except ResponseError:  # no stream (yet, or after a flush)
            return None
        return next((g for g in groups if _text(g["name"]) == GROUP), None)

    async def _stream_depth(self) -> dict[str, int]:
        length = int(await self.redis.xlen(self._queue))
        group = await self._group()
        if group is None:
            return {"ready": length, "pending": 0, "delayed": 0, "dead": 0, "completed": 0}
        pending, read = int(group["pending"]), int(group.get("entries-read") or 0)
        lag = group.get("lag")
        ready = int(lag) if lag is not None else max(0, length - read)
        # taskiq counts no completions; an entry read and no longer pending was acked, and taskiq acks
        # after the task ran: the closest count the library's structures give.
        return {"ready": ready, "pending": pending, "delayed": 0, "dead": 0, "completed": max(0, read - pending)}

    async def final_state(self) -> FinalState:
        try:
            if self.settings.broker == "list":
                return await self._final_list()
            return await self._final_stream()
        except (RedisError, OSError) as exc:
            raise AdapterUnavailable(f"final state: {exc}") from exc

    async def _final_list(self) -> FinalState:
        raw = await self.redis.lrange(self._queue, 0, -1)
        ready, foreign = [], 0
        for item in raw:
            found = _tid_of(_bytes(item))
            if found is None:
                foreign += 1
            else:
                ready.append(found)
        return FinalState(ready=ready, foreign=foreign, stats={"list_length": len(raw)})

    async def _final_stream(self) -> FinalState:
        entries = await self._all_entries()
        group = await self._group()
        owners: dict[bytes, str] = {}
        last = (0, 0)
        if group is not None:
            last = _entry_id(group["last-delivered-id"])
            for row in await self.redis.xpending_range(self._queue, GROUP, "-", "+", max(1, len(entries))):
                owners[_bytes(row["message_id"])] = _text(row["consumer"])
        ready: list[tuple[str, int]] = []
        pending: list[tuple[str, int, str]] = []
        acked: list[str] = []
        foreign = 0
        for entry_id, fields in entries:
            found = _tid_of(_bytes(fields.get(b"data", b"")))
            if found is None:
                foreign += 1
            elif entry_id in owners:
                pending.append((found[0], found[1], owners[entry_id]))
            elif _entry_id(entry_id) > last:
                ready.append(found)
            else:
                # Read by the group and not pending: acked and left in the stream. (An entry the group
                # skipped, having been created at `$` after it, looks the same to Redis.)
                acked.append(found[0])
        stats = {"stream_length": len(entries), "group": group is not None, "pending_entries": len(owners)}
        return FinalState(ready=ready, pending=pending, acked_not_deleted=acked, foreign=foreign, stats=stats)

    async def _all_entries(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        found: list[tuple[bytes, dict[bytes, bytes]]] = []
        start = "-"
        while True:
            batch = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self.redis.xrange(self._queue, min=start, max="+", count=SCAN_COUNT),
            )
            found.extend(batch)
            if len(batch) < SCAN_COUNT:
                return found
            start = "(" + _text(batch[-1][0])

    # -- the worker ---------------------------------------------------------------------------

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        idle_ms = self._idle_timeout_ms(launch.options) if self.settings.short_idle else self.settings.idle_timeout_ms
        settings = replace(self.settings, idle_timeout_ms=idle_ms)
        argv = [
            sys.executable, "-m", "taskiq", "worker", f"{__name__}:worker_broker",
            "--workers", "1", "--max-async-tasks", str(launch.concurrency),
        ]  # fmt: skip
        return WorkerCommand(argv=argv, env={URL_ENV: launch.url, SETTINGS_ENV: settings.to_env()})


def _promises(settings: TaskiqSettings, idle_timeout_ms: int) -> Promises:
    # From taskiq's docs and code: taskiq/receiver/receiver.py (ack after the result is saved),
    # taskiq_redis/redis_broker.py (XREADGROUP, XACK, XAUTOCLAIM after idle_timeout; BRPOP for lists),
    # taskiq/middlewares/smart_retry_middleware.py (retries re-kick the message, no dead letters).
    # Nothing in taskiq or taskiq-redis promises priorities or an order of execution.
    common = {"priorities": False, "fifo": False, "dlq": False, "ownership_checked": False}
    if settings.broker == "list":
        return Promises(
            delivery="at-most-once", retries=False, **common,
            defaults="ListQueueBroker(queue_name=...): LPUSH/BRPOP, no acknowledgement; taskiq worker --workers 1",
            notes="a message is off the list once a worker pops it: whatever a killed worker held is gone",
        )  # fmt: skip
    idle_s = idle_timeout_ms / 1000
    defaults = (
        f"RedisStreamBroker(idle_timeout={idle_timeout_ms} ms, consumer_id='$', xread_count=100, maxlen=None), "
        "ack_type=when_saved, no result backend"
        + (", SmartRetryMiddleware(default_retry_label=True, default_delay=5)" if settings.retries else ", no retries")
    )
    return Promises(
        delivery="at-least-once", retries=settings.retries, renews_lease=False, visibility_timeout_s=idle_s,
        defaults=defaults, **common,
        notes="taskiq-redis #131 (reclaim lock), #101 (tasks longer than idle_timeout run twice); acked entries "
        "are never deleted (XACK without XDEL)",
    )  # fmt: skip


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _entry_id(value: Any) -> tuple[int, int]:
    ms, _, seq = _text(value).partition("-")
    return int(ms), int(seq or 0)


def _variant(name: str, settings: TaskiqSettings) -> Callable[[], TaskiqAdapter]:
    def factory() -> TaskiqAdapter:
        return TaskiqAdapter(name, settings)

    return factory


VARIANTS: dict[str, Callable[[], TaskiqAdapter]] = {
    "default": _variant("peer:taskiq", TaskiqSettings()),
    "short-idle": _variant("peer:taskiq:short-idle", TaskiqSettings(short_idle=True)),
    "retry": _variant("peer:taskiq:retry", TaskiqSettings(retries=True)),
    "list": _variant("peer:taskiq:list", TaskiqSettings(broker="list")),
}
