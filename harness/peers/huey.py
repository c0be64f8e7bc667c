"""`--queue peer:huey[:VARIANT]`: huey 3.5 on Redis, run through `huey_consumer` (its CLI).

Producers enqueue through huey's own client: the harness's task registered on a Huey of their own,
each task built with the task's tid as its id and huey's per-task `retries` (the task's max_retries)
and `retry_delay` (the scenario's base retry delay), then `huey.enqueue(task)`; huey has no batch
enqueue. Every consumer slot is one `python -m huey.bin.huey_consumer harness.peers.huey.HUEY -w N -k
thread -q`: one process, N worker threads (huey's default worker type), a scheduler thread that
moves due scheduled tasks (retries with a delay) to the queue every second, warnings-only logging
(huey logs two INFO lines per task otherwise). The Huey the consumer imports is built from the
environment (the URL travels there, never on the command line). Messages and results are JSON
(huey's default serializer is pickle, which the harness never puts in Redis).

How huey works on Redis (huey/storage.py, huey/api.py, huey/consumer.py): the queue is a list
`huey.redis.NAME` (LPUSH, BRPOP); a worker thread pops a task and runs it: nothing in Redis says it
is running, and there is no acknowledgement. A task that raised is re-enqueued with one retry less
while it has retries (through the schedule, a sorted set `huey.schedule.NAME`, when it has a retry
delay); out of retries, its error is stored in the result hash `huey.results.NAME` (the error of an
earlier try is stored there too: `retries` in the stored error says which). SIGINT is huey's
graceful shutdown, SIGTERM its immediate one: running tasks are abandoned.

Variants:

- `default`: `RedisHuey(name, url=...)`: one list, no priorities.
- `priorities`: `PriorityRedisHuey`: the queue is a sorted set (BZPOPMIN) by priority, the harness's
  priority 0 (the highest) as huey priority 3 (higher runs first).

huey keeps no count of completed tasks and no record of running ones: the progress count and the
"pending" figure are read from the harness journals (harness.hosted.tally, harness.hosted.inflight).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from huey import PriorityRedisHuey, RedisHuey  # type: ignore[import-untyped]  # huey ships no type information
from huey.api import Huey, Task  # type: ignore[import-untyped]
from huey.registry import Message  # type: ignore[import-untyped]
from huey.serializer import Serializer  # type: ignore[import-untyped]
from huey.utils import Error  # type: ignore[import-untyped]

from harness.adapters.base import AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.agents.common import URL_ENV
from harness.hosted.base import QUEUE_NAME_ENV, HostedAdapter, WorkerCommand, WorkerLaunch, hosted_payload
from harness.hosted.handler import PlannedFailure, current
from harness.hosted.inflight import JournalInFlight
from harness.hosted.tally import JournalTally
from harness.peers.blocking import BlockingCalls

TASK = "harness_run"
SETTINGS_ENV = "HARNESS_HUEY"
PRIORITIES = 4
RETRIES_EXHAUSTED = "retries exhausted"
# The harness's own clients (producers, the runner) give up on a reply after this long.
CLIENT_SOCKET_TIMEOUT_S = 5.0
# The consumer's client is redis-py's default, with no socket timeout: a reply held by a fault arrives
# when the fault ends (the harness holds replies at most 6 s), one that was dropped never does.
WORKER_REPLY_BOUND_S = 10.0
# The result hash is decoded whole to count the dead: at most this often.
DEAD_CACHE_S = 2.0


class JsonSerializer(Serializer):  # type: ignore[misc]  # huey's Serializer is untyped
    """huey's messages (Message named tuples with datetimes) and stored errors, as JSON instead of pickle."""

    def _serialize(self, data: Any) -> bytes:
        return json.dumps(_encode(data), separators=(",", ":")).encode()

    def _deserialize(self, data: bytes) -> Any:
        return _decode(json.loads(data))


def _encode(value: Any) -> Any:
    if isinstance(value, Message):
        return {"__message__": [_encode(field) for field in value]}
    if isinstance(value, Error):
        return {"__error__": _encode(value.metadata)}
    if isinstance(value, datetime.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((kind, inner),) = value.items()
        if kind == "__message__":
            return Message(*(_decode(field) for field in inner))
        if kind == "__error__":
            return Error(_decode(inner))
        if kind == "__datetime__":
            return datetime.datetime.fromisoformat(inner)
        if kind == "__tuple__":
            return tuple(_decode(item) for item in inner)
    return {key: _decode(item) for key, item in value.items()}


@dataclass(frozen=True, kw_only=True, slots=True)
class HueySettings:
    priorities: bool = False


def make_huey(queue_name: str, settings: HueySettings, **storage: Any) -> tuple[Huey, Any]:
    """The Huey a user builds for these settings (huey's defaults otherwise), and the harness's task on it
    (huey's TaskWrapper)."""
    kind = PriorityRedisHuey if settings.priorities else RedisHuey
    huey = kind(queue_name, serializer=JsonSerializer(), **storage)
    return huey, huey.task(name=TASK, context=True)(run)


def run(payload: dict[str, Any], task: Task) -> None:
    """The harness's handler as a huey worker thread runs it. huey counts a task's retries down: the
    tries before this one are the budget minus what is left. It counts no deliveries."""
    budget = int(payload.get("max_retries", 0))
    attempt = budget - int(task.retries or 0)
    current().run_sync(payload, attempt=attempt, delivered_id=str(task.id))


def _worker_huey() -> Huey | None:
    """The Huey `huey_consumer harness.peers.huey.HUEY` runs, from the environment worker() set (None
    where this module is imported by anything else: producers, the runner)."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        return None
    huey, _ = make_huey(os.environ[QUEUE_NAME_ENV], HueySettings(**json.loads(raw)), url=os.environ[URL_ENV])
    # huey's own hook: each worker thread calls it as it starts, before its first pop.
    huey.on_startup(name="harness_ready")(lambda: current().ready())
    return huey


class HueyAdapter:
    """huey under the harness: its client to enqueue, its Redis structures to read."""

    socket_timeout_s = WORKER_REPLY_BOUND_S

    def __init__(self, variant: str, settings: HueySettings) -> None:
        self.name = f"peer:huey:{variant}"
        self.settings = settings
        self.promises = _promises(settings)
        self._options = QueueOptions()
        self._huey: Huey | None = None
        self._task: Any = None
        # huey's client is synchronous: one thread talks to Redis, in order.
        self._call = BlockingCalls("huey")
        self._tally = JournalTally()
        self._in_flight = JournalInFlight()
        self._dead_cache: tuple[float, int] = (0.0, 0)

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options = options
        pool = redis.ConnectionPool.from_url(url, socket_timeout=CLIENT_SOCKET_TIMEOUT_S,
                                             socket_connect_timeout=CLIENT_SOCKET_TIMEOUT_S)  # fmt: skip
        self._huey, self._task = make_huey(queue_name, self.settings, connection_pool=pool)
        try:
            await self._call(self._storage().conn.ping)
        except AdapterUnavailable:
            # The agents call connect again on the same adapter (harness.agents.common.connect): keep the
            # client's thread, drop its connections.
            self._storage().conn.close()
            raise

    async def close(self) -> None:
        if self._huey is not None:
            await self._call(self._storage().conn.close)
        self._call.shutdown()

    def _storage(self) -> Any:
        assert self._huey is not None, "connect first"
        return self._huey.storage

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        huey, wrapper = self._huey, self._task
        assert huey is not None, "connect first"
        built = [
            wrapper.s(hosted_payload(task), id=task.tid, retries=task.max_retries,
                      retry_delay=self._options.retry_base_delay_s, priority=self._priority(task.priority))
            for task in tasks
        ]  # fmt: skip

        def send() -> None:
            for task in built:
                huey.enqueue(task)

        await self._call(send)

    def _priority(self, priority: int) -> int | None:
        """huey runs higher priorities first; the plain RedisHuey refuses any priority."""
        return PRIORITIES - 1 - priority if self.settings.priorities else None

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        self._tally.watch(launch.journal)
        self._in_flight.watch(launch.journal)
        argv = [
            sys.executable, "-m", "huey.bin.huey_consumer", f"{__name__}.HUEY", "-w", str(launch.concurrency),
            "-k", "thread", "-q",
        ]  # fmt: skip
        return WorkerCommand(argv=argv, env={SETTINGS_ENV: json.dumps({"priorities": self.settings.priorities})})

    # -- reading huey's structures ------------------------------------------------------------------

    async def depth(self) -> dict[str, int]:
        storage = self._storage()

        def read() -> tuple[int, int]:
            return int(storage.queue_size()), int(storage.schedule_size())

        ready, delayed = await self._call(read)
        return {"ready": ready, "pending": self._in_flight.count(), "delayed": delayed,
                "dead": await self._dead_count(), "completed": self._tally.completed()}  # fmt: skip

    async def _dead_count(self) -> int:
        at, count = self._dead_cache
        if time.monotonic() - at > DEAD_CACHE_S:
            count = len(await self._dead())
            self._dead_cache = (time.monotonic(), count)
        return count

    async def _dead(self) -> list[tuple[str, str, int, int]]:
        storage = self._storage()
        results: dict[str, bytes] = await self._call(storage.result_items)
        dead = []
        for key, raw in results.items():
            try:
                value = self._huey_serializer().deserialize(raw)
            except ValueError:
                continue
            if isinstance(value, Error) and int(value.metadata.get("retries") or 0) == 0:
                dead.append(_dead(key, value.metadata))
        return dead

    def _huey_serializer(self) -> Any:
        assert self._huey is not None, "connect first"
        return self._huey.serializer

    async def final_state(self) -> FinalState:
        storage = self._storage()

        def read() -> tuple[list[bytes], list[bytes]]:
            return list(storage.enqueued_items()), list(storage.scheduled_items())

        queued, scheduled = await self._call(read)
        foreign = 0

        def task(raw: bytes) -> tuple[str, int] | None:
            nonlocal foreign
            payload = self._payload(raw)
            if payload is None:
                foreign += 1
                return None
            return str(payload["tid"]), int(payload.get("prio", 2))

        ready = [t for raw in queued if (t := task(raw)) is not None]
        delayed = [t[0] for raw in scheduled if (t := task(raw)) is not None]
        dead = await self._dead()
        stats = {"queued": len(queued), "scheduled": len(scheduled), "dead": len(dead)}
        # huey keeps no record of tasks in progress: nothing can be pending.
        return FinalState(ready=ready, delayed=delayed, dead=dead, foreign=foreign, stats=stats)

    def _payload(self, raw: bytes) -> dict[str, Any] | None:
        try:
            message = self._huey_serializer().deserialize(raw)
        except ValueError:
            return None
        args = getattr(message, "args", None)
        payload = args[0] if isinstance(args, tuple) and args else None
        return payload if isinstance(payload, dict) and "tid" in payload else None


def _dead(key: str, metadata: dict[str, Any]) -> tuple[str, str, int, int]:
    """A task out of retries: huey stores the error of its last try (under the task id) and neither the
    tries it made nor their errors."""
    error = str(metadata.get("error", "(no error recorded)"))
    reason = f"{RETRIES_EXHAUSTED}: {error}" if PlannedFailure.__name__ in error else error
    return str(metadata.get("task_id") or key), reason, -1, -1


def _promises(settings: HueySettings) -> Promises:
    # huey's docs (consumer.html, "Consumer shutdown"): "Huey does not guarantee at-least-once delivery
    # of messages, and does not do acknowledgement of completed tasks"; a task running when its consumer
    # is killed is lost (huey #418, #559, #733, #844). Retries re-enqueue the task (api.py
    # _requeue_task); the error of a task out of retries is kept in the result store, the closest huey
    # has to a dead-letter record. PriorityRedisHuey pops the highest priority first (BZPOPMIN). A
    # RedisHuey pops in the order tasks were pushed (LPUSH, BRPOP), but huey promises no order of
    # execution: N threads per consumer run what they popped at once, and a popped task waits for its
    # thread (or its stopped process) while later ones start elsewhere.
    return Promises(
        delivery="at-most-once", priorities=settings.priorities, fifo=False, retries=True,
        dlq=True, ownership_checked=False, renews_lease=False, visibility_timeout_s=None,
        defaults=f"{'PriorityRedisHuey' if settings.priorities else 'RedisHuey'}(name, url=...), results=True, "
        "huey_consumer -w N -k thread (SIGINT graceful, SIGTERM immediate), retries=max_retries, "
        "retry_delay from the scenario, JSON serializer",
        notes="huey #418, #559, #733, #844: no acknowledgement, a task popped by a consumer that dies is gone; "
        "errors of earlier tries stay in the result store",
    )  # fmt: skip


VARIANTS: dict[str, Callable[[], HostedAdapter]] = {
    "default": lambda: HueyAdapter("default", HueySettings()),
    "priorities": lambda: HueyAdapter("priorities", HueySettings(priorities=True)),
}

# `huey_consumer harness.peers.huey.HUEY`: the consumer's Huey (None elsewhere).
HUEY = _worker_huey()
