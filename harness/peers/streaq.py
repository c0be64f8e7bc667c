"""`--queue peer:streaq[:VARIANT]`: streaq 7.2.0, run through its own CLI (`python -m streaq run`).

Producers enqueue through a streaq `Worker` used as a client (`async with worker:` loads streaq's
Functions library; `enqueue_many` pipelines the batch), with the harness's tid as streaq's task id.
Every consumer slot is one `python -m streaq run harness.peers.streaq:worker`: the CLI imports the
module attribute `worker`, which is built on first access from the environment the fleet set (the
URL travels there, never on the command line).

Variants (the library's defaults first):

- `default`: `Worker(redis_url=..., queue_name=..., concurrency=N)` with streaq's defaults: one
  priority, prefetch of `concurrency` beyond the running tasks, `idle_timeout` = 60 s (a running task's
  stream entry is XCLAIMed back to its worker every 0.9 of it; an entry idle for longer is taken over
  by the next read of any worker), `max_tries` = 3 deliveries per task, results kept 5 minutes.
- `short-idle`: `idle_timeout` set to the scenario's pending timeout (1 s in the worker fault
  scenarios), so that a reclaim shows within seconds.

One setting differs from streaq's defaults in every variant: task data and results are serialized as
JSON (streaq's documented `serializer`/`deserializer` options) instead of pickle, which the harness
never puts in Redis. It changes no guarantee; an exception in a result is stored as its text.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson
from coredis.exceptions import RedisError, ResponseError, StreamConsumerGroupError
from coredis.response.types import StreamPending, StreamPendingExt
from streaq import TaskStatus, Worker
from streaq.constants import REDIS_GROUP

from harness.adapters.base import AdapterRefused, AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.hosted.base import QUEUE_NAME_ENV, WorkerCommand, WorkerLaunch, hosted_payload
from harness.hosted.handler import current

TASK_NAME = "harness"
# streaq's own defaults (streaq/worker.py, Worker.__init__ and Worker.task).
DEFAULT_IDLE_TIMEOUT_S = 60.0
DEFAULT_MAX_TRIES = 3
URL_ENV = "HARNESS_STREAQ_URL"
SETTINGS_ENV = "HARNESS_STREAQ_SETTINGS"
# The harness's own clients give up on a reply after this long (coredis waits forever by default).
CLIENT_TIMEOUT_S = 5.0
# Results the final read asks streaq for: more than any run enqueues.
RESULTS_LIMIT = 10_000_000
SCAN_COUNT = 5000


@dataclass(frozen=True, kw_only=True, slots=True)
class StreaqSettings:
    """What a variant changes, and what the worker needs to know of the run."""

    # None: streaq's default (60 s); set by worker() from the scenario for `short-idle`.
    idle_timeout_s: float | None = None
    short_idle: bool = False
    concurrency: int = 16

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> StreaqSettings:
        raw = os.environ.get(SETTINGS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


def _unreachable(exc: BaseException) -> bool:
    """A connection failure, possibly wrapped by coredis's anyio task groups in an exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_unreachable(inner) for inner in exc.exceptions)
    return isinstance(exc, RedisError | OSError | TimeoutError) and not isinstance(exc, ResponseError)


def _json_default(value: object) -> str:
    """What JSON cannot carry (a failed task's exception, in its result) is stored as its text."""
    return f"{type(value).__name__}: {value}"


def serialize_json(data: Any) -> bytes:
    return orjson.dumps(data, default=_json_default)


def deserialize_json(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def make_worker(
    settings: StreaqSettings, url: str, queue_name: str, *, lifespan: Callable[[], Any] | None = None, **redis: Any
) -> Worker[Any]:
    """The streaq Worker a user would build for these settings, with the harness's task registered."""
    options: dict[str, Any] = {"concurrency": settings.concurrency, "serializer": serialize_json,
                               "deserializer": deserialize_json}  # fmt: skip
    if settings.idle_timeout_s is not None:
        options["idle_timeout"] = settings.idle_timeout_s
    if lifespan is not None:
        options["lifespan"] = lifespan
    worker: Worker[Any] = Worker(redis_url=url, queue_name=queue_name, redis_kwargs=redis or None, **options)

    async def harness_task(payload: dict[str, Any]) -> None:
        # streaq counts every run of a task (a retry, or a redelivery after its worker died) in `tries`,
        # and retries no plain exception: a delivery count, not an attempt number.
        context = registered.context
        await current().run(payload, attempt=None, deliveries=context.tries, delivered_id=context.task_id)

    registered = worker.task(name=TASK_NAME)(harness_task)
    return worker


@asynccontextmanager
async def _ready() -> AsyncIterator[None]:
    """streaq's lifespan hook: entered once the worker has loaded its Functions library; the consumer
    groups follow at once, created at 0, so nothing enqueued meanwhile is skipped."""
    current().ready()
    yield None


def __getattr__(name: str) -> Any:
    """`streaq run harness.peers.streaq:worker` imports `worker`: built from the fleet's environment."""
    if name != "worker":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    settings = StreaqSettings.from_env()
    return make_worker(settings, os.environ[URL_ENV], os.environ[QUEUE_NAME_ENV], lifespan=_ready)


class StreaqAdapter:
    """streaq's Worker as a client for producers and the final read; `streaq run` for consumers."""

    socket_timeout_s = CLIENT_TIMEOUT_S

    def __init__(self, name: str, settings: StreaqSettings) -> None:
        self.name = name
        self.settings = settings
        self._options = QueueOptions()
        self._stack = AsyncExitStack()
        self._worker: Worker[Any] | None = None

    @property
    def promises(self) -> Promises:
        return _promises(self._idle_timeout_s(self._options))

    def _idle_timeout_s(self, options: QueueOptions) -> float:
        if self.settings.short_idle:
            return options.pending_timeout_s
        return self.settings.idle_timeout_s or DEFAULT_IDLE_TIMEOUT_S

    @property
    def client(self) -> Worker[Any]:
        if self._worker is None:
            raise RuntimeError("connect() first")
        return self._worker

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options = options
        worker = make_worker(self.settings, url, queue_name, stream_timeout=CLIENT_TIMEOUT_S,
                             connect_timeout=CLIENT_TIMEOUT_S)  # fmt: skip
        try:
            await self._stack.enter_async_context(worker)
        except Exception as exc:
            if not _unreachable(exc):
                raise
            raise AdapterUnavailable(f"streaq could not connect: {exc!r}") from exc
        self._worker = worker

    async def close(self) -> None:
        await self._stack.aclose()

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        worker = self.client
        registered = worker.registry[TASK_NAME]
        batch = []
        for spec in tasks:
            task = registered.enqueue(hosted_payload(spec))
            task.id = spec.tid
            batch.append(task)
        try:
            await worker.enqueue_many(batch)
        except ResponseError as exc:
            # The server refused the pipeline's calls (no such Function after a restart, ...): nothing ran.
            raise AdapterRefused(f"streaq's enqueue was refused: {exc}") from exc
        except Exception as exc:
            if not _unreachable(exc):
                raise
            raise AdapterUnavailable(f"streaq's enqueue failed: {exc!r}") from exc

    # -- reading the state --------------------------------------------------------------------

    async def depth(self) -> dict[str, int]:
        worker = self.client
        try:
            ready = pending = delayed = 0
            for priority in worker.priorities:
                stream = worker.stream_key + priority
                length = await worker.redis.xlen(stream)
                held = await self._pending_count(stream)
                ready += length - held
                pending += held
                delayed += await worker.redis.zcard(worker.queue_key + priority)
            # streaq indexes every finished task's result (kept 5 minutes): the closest completion count.
            finished = await worker.redis.zcard(worker.prefix + ":index:results")
        except Exception as exc:
            if not _unreachable(exc):
                raise
            raise AdapterUnavailable(f"depth: {exc!r}") from exc
        # Failed tasks are counted at the final read only (telling them apart means reading every result).
        return {"ready": ready, "pending": pending, "delayed": delayed, "dead": 0, "completed": finished}

    async def _pending_count(self, stream: str) -> int:
        try:
            summary = await self.client.redis.xpending(stream, REDIS_GROUP)
        except (ResponseError, StreamConsumerGroupError):  # no stream or no group (yet, or after a flush)
            return 0
        return int(summary.pending) if isinstance(summary, StreamPending) else len(summary)

    async def final_state(self) -> FinalState:
        try:
            return await self._final_state()
        except Exception as exc:
            if not _unreachable(exc):
                raise
            raise AdapterUnavailable(f"final state: {exc!r}") from exc

    async def _final_state(self) -> FinalState:
        worker = self.client
        queued: list[str] = []
        held: list[tuple[str, str]] = []
        delayed: list[str] = []
        for priority in worker.priorities:
            stream = worker.stream_key + priority
            owners = await self._owners(stream)
            for entry in await self._entries(stream):
                tid = str(entry.field_values.get("task_id", ""))
                if entry.identifier in owners:
                    held.append((tid, owners[entry.identifier]))
                else:
                    queued.append(tid)
            delayed.extend(str(t) for t in await worker.redis.zrange(worker.queue_key + priority, 0, -1))
        prios = await self._priorities([*queued, *(tid for tid, _ in held)])
        dead = []
        for result in await worker.get_tasks_by_status(TaskStatus.DONE, limit=RESULTS_LIMIT):
            if not result.success:
                dead.append((result.task_id, f"failed: {result.exception}", result.tries, -1))
        return FinalState(
            ready=[(tid, prios.get(tid, 2)) for tid in queued],
            pending=[(tid, prios.get(tid, 2), consumer) for tid, consumer in held],
            delayed=delayed, dead=dead,
            stats={"priorities": list(worker.priorities), "failed_results": len(dead)},
        )  # fmt: skip

    async def _owners(self, stream: str) -> dict[str, str]:
        try:
            rows = await self.client.redis.xpending(stream, REDIS_GROUP, start="-", end="+", count=RESULTS_LIMIT)
        except (ResponseError, StreamConsumerGroupError):  # no stream or no group
            return {}
        return {str(row.identifier): str(row.consumer) for row in rows if isinstance(row, StreamPendingExt)}

    async def _entries(self, stream: str) -> list[Any]:
        found: list[Any] = []
        start = "-"
        while True:
            batch = await self.client.redis.xrange(stream, start=start, end="+", count=SCAN_COUNT)
            found.extend(batch)
            if len(batch) < SCAN_COUNT:
                return found
            start = "(" + str(batch[-1].identifier)

    async def _priorities(self, tids: list[str]) -> dict[str, int]:
        """The harness priority of each task, from the payload streaq stores with it."""
        worker = self.client
        found: dict[str, int] = {}
        for at in range(0, len(tids), SCAN_COUNT):
            chunk = tids[at : at + SCAN_COUNT]
            for tid, raw in zip(chunk, await worker.redis.mget([worker.task_key + t for t in chunk]), strict=True):
                if raw:
                    found[tid] = int(deserialize_json(raw)["a"][0].get("prio", 2))
        return found

    # -- the worker ---------------------------------------------------------------------------

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        idle_s = self._idle_timeout_s(launch.options) if self.settings.short_idle else self.settings.idle_timeout_s
        settings = replace(self.settings, idle_timeout_s=idle_s, concurrency=launch.concurrency)
        argv = [sys.executable, "-m", "streaq", "run", f"{__name__}:worker"]
        return WorkerCommand(argv=argv, env={URL_ENV: launch.url, SETTINGS_ENV: settings.to_env()})


def _promises(idle_timeout_s: float) -> Promises:
    # From streaq's docs and code (streaq/worker.py): entries are acked (XACK + XDEL) after the task
    # finishes; running tasks' entries are XCLAIMed back every 0.9 * idle_timeout; an entry idle past
    # idle_timeout is taken over by the next read; a plain exception fails the task for good (only
    # StreaqRetry retries); `max_tries` caps deliveries; results, failed ones too, expire after 5 minutes.
    return Promises(
        delivery="at-least-once", priorities=False, fifo=False, retries=False, dlq=False, ownership_checked=False,
        renews_lease=True, visibility_timeout_s=idle_timeout_s,
        defaults=f"Worker(idle_timeout={idle_timeout_s:g}s, one priority, prefetch=concurrency, max_tries="
        f"{DEFAULT_MAX_TRIES}, result ttl 300 s), JSON serializer",
        notes="a task whose worker is paused past idle_timeout runs again (its renewal stops with it); the "
        "Functions library and consumer groups are created only when a worker or client starts",
    )  # fmt: skip


def _variant(name: str, settings: StreaqSettings) -> Callable[[], StreaqAdapter]:
    def factory() -> StreaqAdapter:
        return StreaqAdapter(name, settings)

    return factory


VARIANTS: dict[str, Callable[[], StreaqAdapter]] = {
    "default": _variant("peer:streaq", StreaqSettings()),
    "short-idle": _variant("peer:streaq:short-idle", StreaqSettings(short_idle=True)),
}
