"""celery with the Redis broker (kombu): `--queue peer:celery[:VARIANT]`.

The harness publishes through celery's own client (`send_task`, JSON, the task id is the harness's
tid, the priority onto kombu's priority lists) and starts `celery -A harness.peers.celery worker`,
the prefork pool, as users run it. Variants:

- `default`: celery's defaults: the message is acknowledged when a pool process accepts the task
  (before it runs), prefetch multiplier 4, kombu's visibility_timeout 3600 s, restore sweep every
  10 s scanning every 10th time.
- `acks-late`: `task_acks_late` + `task_reject_on_worker_lost`, and a short visibility timeout (the
  scenario's pending_timeout_s) with a restore sweep every second, so the redelivery of what a dead
  worker held, and of what a live one holds too long, shows within a run.

What the broker holds (kombu's Redis transport, every key under a per-run `global_keyprefix`):
ready messages in one list per priority step (`Q`, `Q\\x06\\x163`, `...6`, `...9`), messages handed
to a worker and not yet acknowledged in the `unacked` hash (with their delivery time in the
`unacked_index` zset). Celery keeps no count and no record of success; its result backend (the same
Redis) is configured to keep errors only (`task_ignore_result` + `task_store_errors_even_if_ignored`),
so a task that failed for good is read from celery's own FAILURE record. The "completed" progress
count is read from the harness journal (harness.hosted.tally): celery has no structure for it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_ready
from kombu.exceptions import KombuError, OperationalError

from harness.adapters.base import AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.hosted.base import PLAN_ENV, PROCESS_ENV, QUEUE_NAME_ENV, HostedAdapter, WorkerCommand, WorkerLaunch
from harness.hosted.base import hosted_payload as make_payload
from harness.hosted.handler import PlannedFailure, current
from harness.hosted.tally import JournalTally
from harness.peers.blocking import BlockingCalls
from harness.plan import Plan

TASK_NAME = "harness.run"
SETTINGS_ENV = "HARNESS_CELERY"
# kombu's Redis transport: a queue's lists per priority step, joined by its separator.
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEP = "\x06\x16"
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"
RESULT_PREFIX = "celery-task-meta-"
CLIENT_SOCKET_TIMEOUT_S = 5.0
WORKER_SILENCE_S = 1 + 2 * 25.0
DEAD_CACHE_S = 1.0
RETRIES_EXHAUSTED = "retries exhausted"


@dataclass(frozen=True, kw_only=True, slots=True)
class CelerySettings:
    """What a variant changes from celery's defaults (None: the library's own value)."""

    acks_late: bool = False
    reject_on_worker_lost: bool = False
    # The visibility timeout and restore sweep follow the scenario's pending_timeout_s (short), or
    # keep kombu's 3600 s and its sweep every 10 s that scans one call in 10.
    short_visibility: bool = False
    prefetch_multiplier: int = 4


def key_prefix(queue_name: str) -> str:
    """kombu's and the result backend's global_keyprefix: every key of a run under its queue name."""
    return f"{queue_name}."


def priority_lists(queue_name: str) -> list[str]:
    """The ready lists of a queue, highest priority first, with their prefix (as they are in Redis)."""
    prefix = key_prefix(queue_name)
    return [prefix + queue_name + (f"{PRIORITY_SEP}{step}" if step else "") for step in PRIORITY_STEPS]


def transport_options(settings: CelerySettings, options: QueueOptions, queue_name: str) -> dict[str, Any]:
    found: dict[str, Any] = {"global_keyprefix": key_prefix(queue_name)}
    if settings.short_visibility:
        found |= {"visibility_timeout": options.pending_timeout_s, "unacked_restore_interval": 1,
                  "unacked_restore_throttle": 1}  # fmt: skip
    return found


def configure(app: Celery, settings: CelerySettings, options: QueueOptions, queue_name: str) -> None:
    """The app as both sides see it: JSON only, keys under the run's prefix, errors kept in the backend."""
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json",
        task_default_queue=queue_name, task_acks_late=settings.acks_late,
        task_reject_on_worker_lost=settings.reject_on_worker_lost,
        worker_prefetch_multiplier=settings.prefetch_multiplier,
        broker_transport_options=transport_options(settings, options, queue_name),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True, task_store_errors_even_if_ignored=True, result_extended=True,
        result_backend_transport_options={"global_keyprefix": key_prefix(queue_name)},
    )  # fmt: skip


def celery_priority(prio: int) -> int:
    """The harness's priority (0 highest) onto kombu's Redis priority steps (0 is popped first)."""
    return PRIORITY_STEPS[prio]


# -- the worker side ------------------------------------------------------------------------

app = Celery("harness")


def _run(self: Any, payload: dict[str, Any]) -> None:
    """The harness's handler as celery runs it: request.retries is the number of tries before this one."""
    current().run_sync(payload, attempt=int(self.request.retries), delivered_id=str(self.request.id))


def _on_worker_ready(**_: Any) -> None:
    if os.environ.get(PROCESS_ENV):
        current().ready()


# Registered by call, not by decorator: celery's decorators are untyped.
run_task = app.task(name=TASK_NAME, bind=True, autoretry_for=(PlannedFailure,))(_run)
worker_ready.connect(_on_worker_ready, weak=False)


def _configure_worker() -> None:
    """In a worker the fleet started: the variant's settings and the scenario's retry budget."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None or not os.environ.get(PLAN_ENV):
        return
    plan = Plan.load(Path(os.environ[PLAN_ENV]))
    settings = CelerySettings(**json.loads(raw))
    configure(app, settings, plan.scenario.queue, os.environ[QUEUE_NAME_ENV])
    # Per task (autoretry): the workload gives every task the same budget; celery's own default
    # delay (180 s) would outlast any run, so the scenario's retry delay is used.
    run_task.max_retries = plan.scenario.workload.max_retries
    run_task.default_retry_delay = plan.scenario.queue.retry_base_delay_s


_configure_worker()


# -- the client side ------------------------------------------------------------------------


class CeleryAdapter:
    """celery under the harness: publish with celery's client, read kombu's lists and hash."""

    # The worker's connections have no socket timeout (kombu's default); kombu drops a BRPOP connection
    # whose reply is overdue and reconnects "within about brpop_timeout + 2 * health_check_interval
    # seconds (51 by default)" (kombu/transport/redis.py). The harness's producers wait 5 s.
    socket_timeout_s = WORKER_SILENCE_S

    def __init__(self, variant: str, settings: CelerySettings) -> None:
        self.name = f"peer:celery:{variant}"
        self.settings = settings
        self._options = QueueOptions()
        self._queue = ""
        self._app: Celery | None = None
        self._redis: redis.Redis | None = None
        # celery's client is synchronous and not thread-safe: one thread publishes, in order.
        self._call = BlockingCalls("celery", (OperationalError, KombuError))
        self._tally = JournalTally()
        self._dead_cache: tuple[float, int] = (0.0, 0)
        self.promises = self._promises()

    def _promises(self) -> Promises:
        # Celery's docs (userguide/tasks "acks_late", FAQ "Should I use retry or acks_late?"): by default
        # the message is acknowledged just before the task runs, so a task whose worker dies mid-run
        # is not run again; with acks_late it is, and may run twice. Redis caveats (getting-started/
        # backends-and-brokers/redis): a message not acknowledged within the visibility timeout is
        # redelivered, ETA/countdown tasks included; priorities on Redis are emulated by lists per step
        # and prefetched messages run in arrival order. Acks go by delivery tag, with no owner check.
        late = self.settings.acks_late
        visibility_s = self._options.pending_timeout_s if self.settings.short_visibility else 3600.0
        return Promises(
            delivery="at-least-once" if late else "at-most-once", priorities=False, fifo=False, dlq=False,
            ownership_checked=False, renews_lease=False, visibility_timeout_s=visibility_s,
            defaults=f"acks_late={late}, reject_on_worker_lost={self.settings.reject_on_worker_lost}, "
            f"prefetch_multiplier={self.settings.prefetch_multiplier}, visibility_timeout={visibility_s:g}s, "
            "prefork pool; autoretry_for the planned failure; errors kept in the Redis result backend",
            notes="kombu #337 (ETA past the visibility timeout runs again), celery #5935 (a long task is "
            "redelivered while it runs), celery #8030 and #10205 (consumption stops after Redis resets)",
        )  # fmt: skip

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options, self._queue = options, queue_name
        self.promises = self._promises()  # the short visibility timeout is the scenario's
        client = Celery("harness-client", broker=url, set_as_current=False)
        configure(client, self.settings, options, queue_name)
        # The harness's producers must not wait forever on a held reply (kombu's default): 5 s.
        client.conf.broker_transport_options = {
            **client.conf.broker_transport_options,
            "socket_timeout": CLIENT_SOCKET_TIMEOUT_S, "socket_connect_timeout": CLIENT_SOCKET_TIMEOUT_S,
        }  # fmt: skip
        self._app = client
        self._redis = redis.Redis.from_url(url, socket_timeout=CLIENT_SOCKET_TIMEOUT_S, retry=None)
        try:
            await self._call(self._redis.ping)
        except AdapterUnavailable:
            await self.close()
            raise

    async def close(self) -> None:
        if self._app is not None:
            await self._call(self._app.close)
        if self._redis is not None:
            await self._call(self._redis.close)
        self._call.shutdown()

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        client = self._app
        assert client is not None, "connect first"

        def publish() -> None:
            # One producer (and connection) for the batch: celery has no batch publish on Redis.
            try:
                with client.producer_or_acquire() as producer:
                    for task in tasks:
                        client.send_task(
                            TASK_NAME, args=[make_payload(task)], task_id=task.tid, queue=self._queue,
                            priority=celery_priority(task.priority), producer=producer,
                        )  # fmt: skip
            except AttributeError as exc:
                # kombu's channel loses its connection under a publish retry after a killed connection and
                # raises "'NoneType' object has no attribute 'client'": an unknown outcome, not our bug.
                raise AdapterUnavailable(f"celery: kombu lost its channel's connection: {exc}") from exc

        await self._call(publish)

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        self._tally.watch(launch.journal)
        argv = [
            sys.executable, "-m", "celery", "-A", __name__, "worker", "-Q", launch.queue_name,
            "-c", str(launch.concurrency), "-P", "prefork", "-n", f"{launch.consumer_name}@%h",
            "--prefetch-multiplier", str(self.settings.prefetch_multiplier),
        ]  # fmt: skip
        # The URL travels in the environment (celery reads CELERY_BROKER_URL): argv is visible to ps.
        env = {"CELERY_BROKER_URL": launch.url, "CELERY_RESULT_BACKEND": launch.url,
               SETTINGS_ENV: json.dumps(asdict(self.settings))}  # fmt: skip
        return WorkerCommand(argv=argv, env=env)

    # -- reading the broker -------------------------------------------------------------------

    async def depth(self) -> dict[str, int]:
        r = self._redis
        assert r is not None, "connect first"
        lists = priority_lists(self._queue)
        prefix = key_prefix(self._queue)

        def read() -> list[int]:
            with r.pipeline(transaction=False) as pipe:
                for key in lists:
                    pipe.llen(key)
                pipe.hlen(prefix + UNACKED)
                return [int(n) for n in pipe.execute()]

        counts = await self._call(read)
        return {"ready": sum(counts[:-1]), "pending": counts[-1], "delayed": 0, "dead": await self._dead_count(),
                "completed": self._tally.completed()}  # fmt: skip

    async def _dead_count(self) -> int:
        at, count = self._dead_cache
        if time.monotonic() - at > DEAD_CACHE_S:
            count = sum(1 for meta in await self._results() if meta.get("status") == "FAILURE")
            self._dead_cache = (time.monotonic(), count)
        return count

    async def _results(self) -> list[dict[str, Any]]:
        """Every task record the result backend keeps (errors and retries only, as configured)."""
        r = self._redis
        assert r is not None
        pattern = _glob_escape(key_prefix(self._queue) + RESULT_PREFIX) + "*"

        def read() -> list[Any]:
            keys = list(r.scan_iter(match=pattern, count=1000))
            return list(r.mget(keys)) if keys else []

        found = []
        for raw in await self._call(read):
            if raw is not None:
                try:
                    found.append(json.loads(raw))
                except ValueError:
                    continue
        return found

    async def final_state(self) -> FinalState:
        r = self._redis
        assert r is not None, "connect first"
        lists = priority_lists(self._queue)
        prefix = key_prefix(self._queue)

        def read() -> tuple[list[list[bytes]], dict[bytes, bytes]]:
            with r.pipeline(transaction=False) as pipe:
                for key in lists:
                    pipe.lrange(key, 0, -1)
                pipe.hgetall(prefix + UNACKED)
                found = pipe.execute()
            return found[:-1], found[-1]

        queued, unacked = await self._call(read)
        ready: list[tuple[str, int]] = []
        pending: list[tuple[str, int, str]] = []
        foreign = 0
        for raw in (raw for raw_list in queued for raw in raw_list):
            task = _task_of(_loads(raw))
            if task is None:
                foreign += 1
            else:
                ready.append(task)
        for raw in unacked.values():
            held = _loads(raw)
            task = _task_of(held[0]) if isinstance(held, list) and held else None
            if task is None:
                foreign += 1
            else:
                pending.append((task[0], task[1], "unacked"))  # kombu does not record the holder
        results = await self._results()
        dead = [_dead(meta, _budget(meta)) for meta in results if meta.get("status") == "FAILURE"]
        return FinalState(ready=ready, pending=pending, dead=dead, foreign=foreign,
                          stats={"unacked": len(unacked), "result_records": len(results)})  # fmt: skip


def _budget(meta: dict[str, Any]) -> int:
    """The task's max_retries, from the payload celery keeps in the record (result_extended)."""
    args = meta.get("args") or [{}]
    budget = args[0].get("max_retries") if isinstance(args[0], dict) else None
    return int(budget) if isinstance(budget, int) else -1


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _task_of(envelope: Any) -> tuple[str, int] | None:
    """(tid, prio) of a kombu message envelope carrying a harness task (None: something else)."""
    if not isinstance(envelope, dict):
        return None
    try:
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        payload = args[0]
        return str(payload["tid"]), int(payload.get("prio", 2))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _dead(meta: dict[str, Any], max_retries: int) -> tuple[str, str, int, int]:
    """A FAILURE record as a dead task: celery stores the last error only, so errors are unknown (-1)."""
    args = meta.get("args") or []
    tid = str(args[0]["tid"]) if args and isinstance(args[0], dict) and "tid" in args[0] else str(meta["task_id"])
    result = meta.get("result") or {}
    exc_type = str(result.get("exc_type", "?")) if isinstance(result, dict) else "?"
    message = result.get("exc_message") if isinstance(result, dict) else result
    retries = meta.get("retries")
    attempts = int(retries) if isinstance(retries, int) else -1
    reason = f"{exc_type}: {message}"
    if exc_type == PlannedFailure.__name__ and 0 <= max_retries <= attempts:
        reason = f"{RETRIES_EXHAUSTED}: {reason}"
    return tid, reason, attempts, -1


VARIANTS: dict[str, Callable[[], HostedAdapter]] = {
    "default": lambda: CeleryAdapter("default", CelerySettings()),
    "acks-late": lambda: CeleryAdapter(
        "acks-late", CelerySettings(acks_late=True, reject_on_worker_lost=True, short_visibility=True)
    ),
}
