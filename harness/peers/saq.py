"""`--queue peer:saq[:VARIANT]`: saq 0.26 (tobymao/saq) with its Redis queue, run through its own
worker CLI, `python -m saq harness.peers.saq.settings`.

What saq keeps in Redis (saq/queue/redis.py; <q> is the run's queue name):

    saq:<q>:incomplete   sorted set of every unfinished job id; score 0 = queued or active, else when a
                         scheduled job (a retry with a delay) is due (s)
    saq:<q>:queued       list of ready job ids; a worker BLMOVEs one into saq:<q>:active and runs it
    saq:<q>:active       list of job ids taken by workers
    saq:job:<q>:<key>    the job as JSON: status, attempts, error (the last one only), worker_id; kept
                         `ttl` (600 s) after the job finished (complete, failed or aborted)
    saq:<q>:stats, saq:<q>:worker_info:<id>, saq:<q>:schedule, saq:<q>:sweep   workers and locks

What a fault meets (saq/worker.py: Worker.process, upkeep; saq/queue/redis.py: sweep):

- Nothing hands a dead worker's job out again but the sweep: every `sweep` seconds (60) one worker
  looks at every job in saq:<q>:active and takes those that are stuck (running past `timeout`, 10 s,
  or silent past `heartbeat`, off by default) or whose stored status is not "active". It marks the
  job aborting, waits up to 5 s for it to end, then retries it if `retries` allows, or else
  finishes it as aborted ("swept"): with the default retries=1, a killed worker's job is never run
  again.
- `attempts` counts starts, not failures: a kill uses up one of `retries`.
- A worker takes a job (BLMOVE) and only then stores its status "active" (a second write): a sweep
  in between takes a job that has just started (upstream #277).

Variants (VARIANTS):

    default     saq's defaults: Job(timeout=10, heartbeat=0, retries=1, ttl=600), sweep every 60 s
    retries     retries = the task's max_retries + 1 (the scenario's backoff as retry_delay and
                retry_backoff), heartbeat 5 s that the task keeps (job.update() every 2.5 s while
                it runs, as saq asks of jobs with a heartbeat); sweep every 60 s
    fast-sweep  as retries, with a 2 s heartbeat and a sweep every second: the sweep's recovery, and
                its race with a starting job, show within a short run

Every variant runs the scenario's concurrency; saq's own JSON serializer; job keys are the tids.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from saq.job import TERMINAL_STATUSES, Job, Status
from saq.queue.redis import RedisQueue
from saq.types import Context

from harness.adapters.base import AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.hosted.base import QUEUE_NAME_ENV, WorkerCommand, WorkerLaunch, hosted_payload
from harness.hosted.handler import current

TASK_NAME = "harness_task"
VARIANT_ENV, URL_ENV, CONCURRENCY_ENV = "HARNESS_SAQ_VARIANT", "HARNESS_SAQ_URL", "HARNESS_SAQ_CONCURRENCY"
# saq/worker.py Worker.timers and saq/job.py Job: the defaults.
DEFAULT_SWEEP_S, DEFAULT_TIMEOUT_S = 60, 10
# RedisQueue.sweep: how long it waits for a stuck job it marked aborting to end, before it retries or aborts it.
SWEEP_ABORT_WAIT_S = 5.0
CHUNK = 1000
TERMINAL = {str(status.value) for status in TERMINAL_STATUSES}
_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
# saq names no holder for an unlisted job (in its incomplete set, in neither list).
NO_HOLDER = "saq: in the incomplete set only, in neither list"


@dataclass(frozen=True, kw_only=True, slots=True)
class SaqVariant:
    """The saq settings a variant runs with (the rest are saq's defaults)."""

    name: str
    # Job.retries = the task's max_retries + 1, with the scenario's backoff; else saq's default, 1.
    map_retries: bool = False
    heartbeat_s: int = 0  # 0: saq's default, off
    sweep_s: int = DEFAULT_SWEEP_S

    @property
    def stuck_after_s(self) -> int:
        """A running job whose worker died counts as stuck this long after its last sign of life."""
        return self.heartbeat_s or DEFAULT_TIMEOUT_S

    @property
    def recovery_bound_s(self) -> float:
        """The longest a dead worker's job can wait for the sweep to act: stuck, then the next sweep,
        then the sweep's wait for it to end."""
        return self.stuck_after_s + self.sweep_s + SWEEP_ABORT_WAIT_S


DEFAULT = SaqVariant(name="default")
RETRIES = SaqVariant(name="retries", map_retries=True, heartbeat_s=5)
FAST_SWEEP = SaqVariant(name="fast-sweep", map_retries=True, heartbeat_s=2, sweep_s=1)
_BY_NAME = {v.name: v for v in (DEFAULT, RETRIES, FAST_SWEEP)}


# -- the worker's side -----------------------------------------------------------------------------


async def run_task(ctx: Context, *, payload: dict[str, Any]) -> None:
    """The harness's handler as saq calls it. `attempts` counts starts (kills included): it is both the
    delivery count and, minus one, the tries before this one as saq reports them."""
    job = ctx["job"]
    await current().run(payload, attempt=job.attempts - 1, deliveries=job.attempts, delivered_id=job.key)


async def run_task_with_heartbeat(ctx: Context, *, payload: dict[str, Any]) -> None:
    """As run_task, keeping the job's heartbeat while it runs (saq: "a heartbeat can be triggered
    manually within a job by calling await job.update()"); a task shorter than half the heartbeat
    never beats."""
    job = ctx["job"]
    beat = asyncio.create_task(_beat(job, job.heartbeat / 2))
    try:
        await run_task(ctx, payload=payload)
    finally:
        beat.cancel()


async def _beat(job: Job, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await job.update()


async def _startup(ctx: Context) -> None:
    """saq calls this before its worker takes any job."""
    current().ready()


def worker_settings(variant: SaqVariant, url: str, queue_name: str, concurrency: int) -> dict[str, Any]:
    """saq's settings dictionary for this variant (saq.types.SettingsDict)."""
    function = run_task_with_heartbeat if variant.heartbeat_s else run_task
    return {
        "queue": RedisQueue.from_url(url, name=queue_name),
        "functions": [(TASK_NAME, function)],
        "concurrency": concurrency,
        "startup": _startup,
        "timers": {"sweep": variant.sweep_s},
    }


def settings() -> dict[str, Any]:
    """What `saq harness.peers.saq.settings` runs (saq calls a callable setting): only inside a worker
    the fleet started."""
    variant, concurrency = _BY_NAME[os.environ[VARIANT_ENV]], int(os.environ[CONCURRENCY_ENV])
    return worker_settings(variant, os.environ[URL_ENV], os.environ[QUEUE_NAME_ENV], concurrency)


# -- the harness's side ----------------------------------------------------------------------------


class SaqAdapter:
    """Producers enqueue with saq's Queue.enqueue; the final state is read from saq's lists and jobs."""

    socket_timeout_s = 5.0  # our client's (the worker's own has none: saq's from_url sets no timeout)

    def __init__(self, variant: SaqVariant) -> None:
        self.variant = variant
        self.name = f"peer:saq:{variant.name}"
        self._queue: RedisQueue | None = None
        self._options = QueueOptions()

    @property
    def promises(self) -> Promises:
        v = self.variant
        return Promises(
            # Job.retries "the maximum number of attempts" (default 1); RedisQueue.sweep finishes a stuck job
            # that is not retryable as aborted: with the default, a job whose worker died never runs again.
            delivery="at-least-once" if v.map_retries else "at-most-once",
            priorities=False,  # Job.priority is "only available in postgres"
            fifo=False,  # a list, but not promised
            retries=v.map_retries,
            dlq=True,  # failed and aborted jobs keep their status and last error for `ttl` (600 s)
            ownership_checked=False,  # finish() removes the job from active with no check of its holder
            renews_lease=bool(v.heartbeat_s),  # the task's job.update() keeps a live job from the sweep
            visibility_timeout_s=v.recovery_bound_s,
            defaults=(
                f"retries={'max_retries+1' if v.map_retries else '1'}, timeout={DEFAULT_TIMEOUT_S}s, "
                f"heartbeat={v.heartbeat_s}s, ttl=600s, sweep every {v.sweep_s}s (a dead worker's job is "
                f"acted on within {v.recovery_bound_s:g}s), concurrency=concurrency"
            ),
            notes="the sweep retries or aborts a dead worker's job (README: 'Sweeping stuck jobs'); kills "
            "count as attempts; a job can be swept as it starts (#277); the worker's client has no socket timeout",
        )

    def _client(self) -> RedisQueue:
        if self._queue is None:
            raise AdapterUnavailable("saq adapter used before connect()")
        return self._queue

    def _keys(self, kind: str) -> str:
        return str(self._client().namespace(kind))

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options = options
        timeout_s = self.socket_timeout_s
        pool = aioredis.ConnectionPool.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._queue = RedisQueue(aioredis.Redis(connection_pool=pool), name=queue_name)
        try:
            await self._queue.connect()
            await self._queue.redis.ping()
        except _REDIS_ERRORS as exc:
            raise AdapterUnavailable(f"saq's client could not reach Redis: {exc}") from exc

    async def close(self) -> None:
        """Close the client, whatever Redis is doing: saq's disconnect() first unsubscribes, which needs a
        connection (and fails while Redis is down), so the client and its pool are closed either way."""
        queue, self._queue = self._queue, None
        if queue is None:
            return
        try:
            await queue.disconnect()
        except _REDIS_ERRORS:
            await queue.redis.aclose()
            await queue.redis.connection_pool.disconnect()

    def _job_options(self, task: TaskSpec) -> dict[str, Any]:
        if not self.variant.map_retries:
            return {}  # saq's defaults: retries=1, timeout=10, heartbeat=0
        options = self._options
        return {
            "retries": task.max_retries + 1,
            "retry_delay": options.retry_base_delay_s,
            "retry_backoff": options.retry_max_delay_s if options.retry_base_delay_s else False,
            "heartbeat": self.variant.heartbeat_s,
        }

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        """One Queue.enqueue per task, sent together (saq's own Queue.map enqueues many this way, throttled
        by the queue's max_concurrent_ops). A key already queued (a resend) is saq's refusal of a duplicate."""
        queue = self._client()
        sent = [queue.enqueue(TASK_NAME, key=t.tid, payload=hosted_payload(t), **self._job_options(t)) for t in tasks]
        outcomes = await asyncio.gather(*sent, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise AdapterUnavailable(f"saq could not enqueue {len(failed)} of {len(tasks)} jobs: {failed[0]!r}")

    async def depth(self) -> dict[str, int]:
        """Counts from saq's lists and sorted set, in one round trip. "completed" counts finished jobs (their
        records stay `ttl`): every key that is neither an unfinished job's nor the queue's own."""
        redis, key = self._client().redis, self._keys
        own = [key(k) for k in ("incomplete", "queued", "active", "stats", "schedule", "sweep")]
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.llen(key("queued"))
                pipe.llen(key("active"))
                pipe.zcount(key("incomplete"), "(0", "+inf")
                pipe.zcard(key("incomplete"))
                pipe.exists(*own)
                pipe.zcard(key("stats"))  # one worker_info key per worker
                pipe.dbsize()
                queued, active, scheduled, unfinished, structures, workers, keys = await pipe.execute()
        except _REDIS_ERRORS as exc:
            raise AdapterUnavailable(f"saq's depth could not be read: {exc}") from exc
        finished = int(keys) - int(unfinished) - int(structures) - int(workers)
        return {"ready": int(queued), "pending": int(active), "delayed": int(scheduled), "completed": max(0, finished)}

    async def final_state(self) -> FinalState:
        try:
            return await self._final_state()
        except _REDIS_ERRORS as exc:
            raise AdapterUnavailable(f"saq's final state could not be read: {exc}") from exc

    async def _final_state(self) -> FinalState:
        queue, key = self._client(), self._keys
        redis = queue.redis
        queued = _unique(await _lrange(redis, key("queued")))
        active = _unique(await _lrange(redis, key("active")))
        incomplete = [(m.decode(), score) for m, score in await redis.zrange(key("incomplete"), 0, -1, withscores=True)]
        in_lists = set(queued) | set(active)
        unlisted = [job_id for job_id, score in incomplete if not score and job_id not in in_lists]
        scheduled = [job_id for job_id, score in incomplete if score and job_id not in in_lists]
        finished = await self._finished_jobs(set(queued) | set(active) | {job_id for job_id, _ in incomplete})
        records = await self._records([*queued, *active, *unlisted, *scheduled])
        ready = [(_tid(records[i]), _prio(records[i])) for i in queued if _tid(records.get(i))]
        pending = [(_tid(records[i]), _prio(records[i]), _holder(records[i])) for i in active if _tid(records.get(i))]
        pending += [(_tid(records[i]), _prio(records[i]), NO_HOLDER) for i in unlisted if _tid(records.get(i))]
        harness = [r for r in finished if _tid(r)]
        dead = [_dead_entry(r) for r in harness if r.get("status") in (Status.FAILED.value, Status.ABORTED.value)]
        statuses = Counter(str(r.get("status")) for r in harness)
        # Records in no list or set that never reached an end (a sweep's abort left a job "aborting"): no
        # worker or sweep will ever look at them again, so the checkers count them lost; named here.
        stranded = [r for r in harness if r.get("status") not in TERMINAL]
        return FinalState(
            ready=ready,
            pending=pending,
            delayed=[_tid(records[i]) for i in scheduled if _tid(records.get(i))],
            dead=dead,
            foreign=sum(1 for r in [*records.values(), *finished] if not _tid(r)),
            stats={
                "records": len(harness),
                **{s: statuses[s] for s in sorted(statuses)},
                "stranded": [[_tid(r), str(r.get("status")), int(r.get("attempts", 0))] for r in stranded],
            },
        )

    async def _records(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        redis, found = self._client().redis, {}
        for chunk in _chunks(job_ids, CHUNK):
            for job_id, raw in zip(chunk, await redis.mget(chunk)):
                record = _decode(raw)
                if record is not None:
                    found[job_id] = record
        return found

    async def _finished_jobs(self, unfinished: set[str]) -> list[dict[str, Any]]:
        """Every job record of this queue in none of its lists and sets: its complete, failed and aborted
        jobs, and any left behind in another status."""
        redis = self._client().redis
        pattern = self._client().job_id("*")
        ids = [k.decode() async for k in redis.scan_iter(match=pattern, count=CHUNK)]
        records = await self._records([i for i in ids if i not in unfinished])
        return list(records.values())

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        # The URL travels in the environment: a command line (and its password) is visible to ps.
        env = {VARIANT_ENV: self.variant.name, URL_ENV: launch.url, CONCURRENCY_ENV: str(launch.concurrency)}
        return WorkerCommand(argv=[sys.executable, "-m", "saq", f"{__name__}.settings"], env=env)


async def _lrange(redis: aioredis.Redis, key: str) -> list[bytes]:
    # redis-py types list replies as "awaitable or not" for its sync and async clients alike.
    found: list[bytes] = await cast(Awaitable[list[bytes]], redis.lrange(key, 0, -1))
    return found


def _unique(raw_ids: Iterable[bytes]) -> list[str]:
    return list(dict.fromkeys(i.decode() for i in raw_ids))


def _decode(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _payload(record: dict[str, Any] | None) -> dict[str, Any]:
    payload = ((record or {}).get("kwargs") or {}).get("payload")
    return payload if isinstance(payload, dict) else {}


def _tid(record: dict[str, Any] | None) -> str:
    return str(_payload(record).get("tid", ""))


def _prio(record: dict[str, Any]) -> int:
    return int(_payload(record).get("prio", -1))


def _holder(record: dict[str, Any]) -> str:
    return f"saq worker {record.get('worker_id') or '(none recorded)'}"


def _dead_entry(record: dict[str, Any]) -> tuple[str, str, int, int]:
    """A failed or aborted job as a dead entry. saq stops a job when its attempts reach `retries`
    (Job.retryable): a handler error then fails it, the sweep of a dead worker's job aborts it; it keeps
    only the last error, so the error count is not recorded (-1)."""
    attempts, retries = int(record.get("attempts", 0)), int(record.get("retries", 1))
    error = str(record.get("error") or "").strip().splitlines()
    last = error[-1] if error else ""
    where = f"on attempt {attempts} of retries={retries}"
    if record.get("status") == Status.ABORTED.value:
        reason = f"delivery cap: saq aborted the job ({last}) {where}"
    else:
        reason = f"retries exhausted: saq failed the job {where}: {last}"
    return _tid(record), reason, attempts - 1, -1


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _factory(variant: SaqVariant) -> Callable[[], SaqAdapter]:
    def make() -> SaqAdapter:
        return SaqAdapter(variant)

    make.__doc__ = f"saq, variant {variant.name}"
    return make


VARIANTS: dict[str, Callable[[], SaqAdapter]] = {v.name: _factory(v) for v in (DEFAULT, RETRIES, FAST_SWEEP)}

__all__ = ["VARIANTS", "SaqAdapter", "SaqVariant", "run_task", "run_task_with_heartbeat", "settings"]
