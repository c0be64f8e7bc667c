"""`--queue peer:arq[:VARIANT]`: arq 0.28 (python-arq/arq) run through its own worker CLI,
`python -m arq harness.peers.arq.WorkerSettings`.

What arq keeps in Redis (arq.constants; one run's queue is the sorted set named after it):

    <queue>               sorted set of job ids, score = when the job may start (ms); a job stays in it while it runs
    arq:job:<id>          the job (function, args, enqueue time); deleted with the zset entry when the job finishes
    arq:in-progress:<id>  set by the worker that starts the job, TTL job_timeout + 10 s; no other worker starts the
                          job while it exists, and nothing renews or deletes it but that worker's finish
    arq:retry:<id>        incremented at every start: the job_try the function sees
    arq:result:<id>       a finished job's outcome (success, or the exception), kept keep_result (3600 s)

What a fault meets (arq/worker.py: start_jobs, run_job, finish_job):

- A worker killed mid-job leaves arq:in-progress:<id> behind: the job runs again only once that key
  expires, job_timeout + 10 s after the start (310 s with the defaults).
- job_try counts starts, not failures: every kill uses up one of max_tries (5), and the function sees
  its "try" go up without a failed try before it (upstream #267).
- Only arq.Retry (and a cancellation, e.g. SIGTERM) runs a job again; any other exception, or its
  job_timeout, fails it for good, with the exception kept as its result.
- The worker's Redis client has no socket timeout (RedisSettings has none to set), and a dropped
  connection or a Redis restart ends the worker (upstream #435, #498); the fleet restarts it, as a
  supervisor would.

Variants (VARIANTS):

    default        arq's defaults: job_timeout 300 s (a killed job is invisible for 310 s), max_tries 5,
                   keep_result 3600 s, poll_delay 0.5 s; a failed attempt is final
    short-timeout  job_timeout 5 s: a killed job runs again 15 s after it started, within a short run
    retry          job_timeout 5 s, and a failed attempt raises arq.Retry (deferred by the scenario's
                   backoff), max_tries = the task's max_retries + 1: retries as arq users write them

Every variant runs max_jobs = the scenario's concurrency, and serializes jobs and results as JSON
(orjson) instead of arq's default pickle: arq documents custom serializers, and the harness sends
no pickle through Redis. Job ids are the harness's tids.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from arq.connections import ArqRedis, RedisSettings
from arq.constants import abort_jobs_ss, health_check_key_suffix, in_progress_key_prefix, job_key_prefix
from arq.constants import result_key_prefix as RESULT_PREFIX
from arq.constants import retry_key_prefix as RETRY_PREFIX
from arq.worker import Retry, func
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from harness.adapters.base import AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.hosted.base import QUEUE_NAME_ENV, WorkerCommand, WorkerLaunch, hosted_payload
from harness.hosted.handler import PlannedFailure, current

TASK_NAME = "harness_task"
VARIANT_ENV, URL_ENV, MAX_JOBS_ENV = "HARNESS_ARQ_VARIANT", "HARNESS_ARQ_URL", "HARNESS_ARQ_MAX_JOBS"
# The producers' and the runner's client (ours, not the worker's): how long it waits for a reply.
CLIENT_TIMEOUT_S = 5.0
# arq/worker.py: Worker.in_progress_timeout_s = job_timeout + 10.
IN_PROGRESS_EXTRA_S = 10.0
# arq does not record which worker holds a job in progress.
HOLDER_UNKNOWN = "arq: in progress, holder not recorded"
# depth() looks this far into the sorted set for jobs in progress (running jobs are its oldest entries).
DEPTH_SAMPLE = 1000
SCAN_COUNT = 1000
NO_KEY = -2  # PTTL's answer for a key that does not exist
_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True, kw_only=True, slots=True)
class ArqVariant:
    """The arq settings a variant runs with (the rest are arq's defaults)."""

    name: str
    job_timeout_s: float = 300.0  # arq's default
    # A failed attempt raises arq.Retry (arq's documented way to run a job again), and max_tries is the
    # task's max_retries + 1; otherwise a failure is final and max_tries is arq's default, 5.
    retry_failures: bool = False

    @property
    def in_progress_ttl_s(self) -> float:
        return self.job_timeout_s + IN_PROGRESS_EXTRA_S


DEFAULT = ArqVariant(name="default")
# A killed job's in-progress key lives 15 s: the expiry shows within a short run (tasks here run at most 3 s).
SHORT_TIMEOUT = ArqVariant(name="short-timeout", job_timeout_s=5.0)
RETRY = ArqVariant(name="retry", job_timeout_s=5.0, retry_failures=True)
_BY_NAME = {v.name: v for v in (DEFAULT, SHORT_TIMEOUT, RETRY)}


# -- JSON instead of pickle ------------------------------------------------------------------------


def dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, default=_describe)


def _describe(value: object) -> str:
    """What JSON cannot hold (a failed job's exception, kept as its result): as text."""
    return f"{type(value).__name__}: {value}"


def loads(raw: bytes) -> dict[str, Any]:
    found = orjson.loads(raw)
    if not isinstance(found, dict):
        raise ValueError(f"an arq record that is not a JSON object: {raw[:80]!r}")
    return found


# -- the worker's side -----------------------------------------------------------------------------


async def run_task(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
    """The harness's handler as arq calls it. job_try counts starts (kills included): it is both the
    delivery count and, minus one, the tries before this one as arq reports them."""
    job_try = int(ctx["job_try"])
    await current().run(payload, attempt=job_try - 1, deliveries=job_try, delivered_id=str(ctx["job_id"]))


async def run_task_retrying(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
    """The `retry` variant: a failed attempt asks arq to run the job again, after the scenario's backoff."""
    try:
        await run_task(ctx, payload)
    except PlannedFailure as exc:
        options = current().plan.scenario.queue
        delay_s = min(options.retry_base_delay_s * 2 ** (int(ctx["job_try"]) - 1), options.retry_max_delay_s)
        raise Retry(defer=delay_s) from exc


async def _startup(ctx: dict[str, Any]) -> None:
    """arq calls this once its pool answered a PING: the worker is up."""
    current().ready()


def worker_settings(variant: ArqVariant, url: str, queue_name: str, max_jobs: int) -> dict[str, Any]:
    """arq.worker.Worker's keyword arguments for this variant (arq accepts a dict as WorkerSettings)."""
    coroutine = run_task_retrying if variant.retry_failures else run_task
    max_tries = current().plan.scenario.workload.max_retries + 1 if variant.retry_failures else None
    return {
        "functions": [func(coroutine, name=TASK_NAME, max_tries=max_tries)],
        "queue_name": queue_name,
        "redis_settings": RedisSettings.from_dsn(url),
        "max_jobs": max_jobs,
        "job_timeout": variant.job_timeout_s,
        "on_startup": _startup,
        "job_serializer": dumps,
        "job_deserializer": loads,
    }


def _settings_from_env() -> dict[str, Any]:
    if VARIANT_ENV not in os.environ:
        return {}  # imported by the runner or a producer, not by `arq`
    variant, max_jobs = _BY_NAME[os.environ[VARIANT_ENV]], int(os.environ[MAX_JOBS_ENV])
    return worker_settings(variant, os.environ[URL_ENV], os.environ[QUEUE_NAME_ENV], max_jobs)


# What `arq harness.peers.arq.WorkerSettings` runs: filled in only inside a worker the fleet started.
WorkerSettings: dict[str, Any] = _settings_from_env()


# -- the harness's side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    """One entry of the queue's sorted set, read back with its job record."""

    job_id: str
    score_ms: float
    payload: dict[str, Any] | None  # None: no job record, or not one of the harness's
    in_progress_ttl_ms: int  # PTTL of its in-progress key: how long it still lives; -2: there is none

    @property
    def in_progress(self) -> bool:
        return self.in_progress_ttl_ms != NO_KEY

    @property
    def prio(self) -> int:
        return int(self.payload.get("prio", -1)) if self.payload else -1


class ArqAdapter:
    """Producers enqueue with ArqRedis.enqueue_job; the final state is read from arq's keys."""

    socket_timeout_s = CLIENT_TIMEOUT_S

    def __init__(self, variant: ArqVariant) -> None:
        self.variant = variant
        self.name = f"peer:arq:{variant.name}"
        self._redis: ArqRedis | None = None
        self._queue = ""

    @property
    def promises(self) -> Promises:
        v = self.variant
        return Promises(
            # docs/index.rst, "Jobs may be called more than once!": pessimistic execution, a job leaves the
            # queue only when it succeeded or failed; "arq favours multiple times over zero times".
            delivery="at-least-once",
            priorities=False,  # one sorted set, scored by time
            fifo=False,  # started in score order, but concurrently and by several workers: not promised
            retries=v.retry_failures,  # only arq.Retry (or a cancellation) runs a job again
            dlq=True,  # a failed job's result (its exception) is kept keep_result, 3600 s
            ownership_checked=False,  # finish_job deletes and removes with no check of who holds the job
            renews_lease=False,  # arq:in-progress:<id> is set once, with its TTL, and never renewed
            visibility_timeout_s=v.in_progress_ttl_s,
            defaults=(
                f"job_timeout={v.job_timeout_s:g}s (arq:in-progress TTL {v.in_progress_ttl_s:g}s), "
                f"max_tries={'max_retries+1, failures raise arq.Retry' if v.retry_failures else '5'}, "
                "keep_result=3600s, poll_delay=0.5s, max_jobs=concurrency, JSON serializer (arq's default: pickle)"
            ),
            notes="kills count as tries (#267); the worker exits on a dropped connection or a Redis restart "
            "(#435, #498); its Redis client has no socket timeout",
        )

    def _client(self) -> ArqRedis:
        if self._redis is None:
            raise AdapterUnavailable("arq adapter used before connect()")
        return self._redis

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        pool = ConnectionPool.from_url(url, socket_timeout=CLIENT_TIMEOUT_S, socket_connect_timeout=CLIENT_TIMEOUT_S)
        self._redis = ArqRedis(pool, job_serializer=dumps, job_deserializer=loads, default_queue_name=queue_name)
        self._queue = queue_name
        try:
            await self._redis.ping()
        except _REDIS_ERRORS as exc:
            raise AdapterUnavailable(f"arq's client could not reach Redis: {exc}") from exc

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose(close_connection_pool=True)
            self._redis = None

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        """One enqueue_job per task (arq has no batch enqueue), sent together. A job id that already
        exists (a resend after a lost reply) is arq's own refusal of a duplicate: the task is there."""
        redis = self._client()
        sent = [redis.enqueue_job(TASK_NAME, hosted_payload(t), _job_id=t.tid, _queue_name=self._queue) for t in tasks]
        outcomes = await asyncio.gather(*sent, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise AdapterUnavailable(f"arq could not enqueue {len(failed)} of {len(tasks)} jobs: {failed[0]!r}")

    async def depth(self) -> dict[str, int]:
        """Counts from the sorted set and the key count, in two round trips. "completed" counts finished
        jobs (arq keeps a result for each, success or failure): every key that is not an unfinished
        job's (job, in-progress, retry) or the queue's own."""
        redis, queue = self._client(), self._queue
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.zcount(queue, "-inf", _now_ms())
                pipe.zcard(queue)
                pipe.zrange(queue, 0, DEPTH_SAMPLE - 1)
                pipe.dbsize()
                due, total, sample, keys = await pipe.execute()
            ids = [m.decode() for m in sample]
            async with redis.pipeline(transaction=False) as pipe:
                pipe.exists(queue, queue + health_check_key_suffix, abort_jobs_ss)
                if ids:  # EXISTS of no key at all is an error
                    pipe.exists(*[in_progress_key_prefix + i for i in ids])
                    pipe.exists(*[RETRY_PREFIX + i for i in ids])
                counts = [int(n) for n in await pipe.execute()] + [0, 0]
            own, running, tried = counts[0], counts[1], counts[2]
        except _REDIS_ERRORS as exc:
            raise AdapterUnavailable(f"arq's depth could not be read: {exc}") from exc
        finished = int(keys) - int(total) - running - tried - own
        return {"ready": max(0, int(due) - running), "pending": running, "delayed": int(total) - int(due),
                "completed": max(0, finished)}  # fmt: skip

    async def final_state(self) -> FinalState:
        try:
            jobs = await self._jobs()
            results = await self._results()
        except _REDIS_ERRORS as exc:
            raise AdapterUnavailable(f"arq's final state could not be read: {exc}") from exc
        now_ms = _now_ms()
        harness_jobs = [j for j in jobs if j.payload is not None]
        failed = [r for r in results if not r.get("s")]
        return FinalState(
            ready=[(j.job_id, j.prio) for j in harness_jobs if not j.in_progress and j.score_ms <= now_ms],
            pending=[(j.job_id, j.prio, HOLDER_UNKNOWN) for j in harness_jobs if j.in_progress],
            delayed=[j.job_id for j in harness_jobs if not j.in_progress and j.score_ms > now_ms],
            dead=[_dead_entry(r) for r in failed],
            foreign=len(jobs) - len(harness_jobs),
            stats={
                "results": len(results),
                "failed": len(failed),
                "in_queue": len(jobs),
                # When arq will hand the jobs in progress out again: their in-progress keys' remaining TTL.
                "in_progress_expires_in_s": sorted(
                    round(j.in_progress_ttl_ms / 1000, 1) for j in jobs if j.in_progress
                ),
            },
        )

    async def _jobs(self) -> list[_Job]:
        redis = self._client()
        members: list[tuple[bytes, float]] = await redis.zrange(self._queue, 0, -1, withscores=True)
        ids = [m.decode() for m, _ in members]
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.get(job_key_prefix + job_id)
                pipe.pttl(in_progress_key_prefix + job_id)
            replies = await pipe.execute()
        return [
            _Job(job_id, score, _payload_of(raw), int(ttl_ms))
            for (job_id, (_, score)), raw, ttl_ms in zip(zip(ids, members), replies[::2], replies[1::2])
        ]

    async def _results(self) -> list[dict[str, Any]]:
        redis = self._client()
        keys = [key async for key in redis.scan_iter(match=RESULT_PREFIX + "*", count=SCAN_COUNT)]
        found: list[dict[str, Any]] = []
        for chunk in _chunks(keys, SCAN_COUNT):
            for raw in await redis.mget(chunk):
                if raw is not None:
                    found.append(loads(raw))
        return found

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        # The URL travels in the environment: a command line (and its password) is visible to ps.
        env = {VARIANT_ENV: self.variant.name, URL_ENV: launch.url, MAX_JOBS_ENV: str(launch.concurrency)}
        return WorkerCommand(argv=[sys.executable, "-m", "arq", f"{__name__}.WorkerSettings"], env=env)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _payload_of(raw: bytes | None) -> dict[str, Any] | None:
    """The harness's payload in a job record (the function's one argument), or None."""
    if raw is None:
        return None
    try:
        args = loads(raw).get("a") or []
    except ValueError:
        return None
    payload = args[0] if args else None
    return payload if isinstance(payload, dict) and "tid" in payload else None


def _dead_entry(result: dict[str, Any]) -> tuple[str, str, int, int]:
    """A failed job's result as a dead entry. arq gives up after max_tries with "max N retries exceeded"
    (that try ran no handler: job_try - 2 retries ran before it); any other failure ends the job on the
    try that raised. arq keeps only the last exception: the error count is not recorded (-1)."""
    args = result.get("a") or [{}]
    tid = str(args[0].get("tid", result.get("id"))) if isinstance(args[0], dict) else str(result.get("id"))
    error, job_try = str(result.get("r")), int(result.get("t") or 1)
    if "retries exceeded" in error:
        return tid, f"retries exhausted: {error}", job_try - 2, -1
    return tid, f"failed on try {job_try}: {error}", job_try - 1, -1


def _chunks(items: list[bytes], size: int) -> Iterable[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _factory(variant: ArqVariant) -> Callable[[], ArqAdapter]:
    def make() -> ArqAdapter:
        return ArqAdapter(variant)

    make.__doc__ = f"arq, variant {variant.name}"
    return make


VARIANTS: dict[str, Callable[[], ArqAdapter]] = {v.name: _factory(v) for v in (DEFAULT, SHORT_TIMEOUT, RETRY)}

__all__ = ["VARIANTS", "ArqAdapter", "ArqVariant", "WorkerSettings", "run_task", "run_task_retrying"]
