"""rq: `--queue peer:rq[:VARIANT]`: jobs in Redis lists, run by `rq worker`.

The harness enqueues through rq's own client (`Queue.enqueue_many` in one transaction per batch, the
JSON serializer: rq's default is pickle, which the harness never puts in Redis), with rq's `Retry`
for the task's max_retries and a job id made of the run's queue name and the tid. It starts
`python -m rq.cli worker -c harness.peers.rq ...` (the settings module is this one: importing it
is how the worker says it is up). Variants:

- `default`: `rq worker QUEUE`, the forking Worker: each job runs in a work-horse the worker forks
  (the horse calls setpgrp, leaving the worker's process group), one job at a time per worker.
  A single queue is popped with BLMOVE into an intermediate list, so a pop is never lost.
- `simple`: the SimpleWorker (`-w rq.worker.SimpleWorker`): the job runs in the worker process.
- `priorities`: one queue per priority, `rq worker Q-p0 Q-p1 Q-p2 Q-p3`: rq checks them in that
  order; with more than one queue rq pops with BLPOP, and the job is in no structure until the
  worker registers it in the StartedJobRegistry (rq #1716).

rq runs one job at a time per worker process; the scenario's concurrency has no rq equivalent in
`rq worker` and is not used. rq's Retry takes whole seconds: the scenario's retry delay is rounded,
and a delay of a second or more needs the scheduler (`--with-scheduler`). What a dead worker held
stays in the StartedJobRegistry until a worker's maintenance (every 600 s) finds its heartbeat
expired (after job_monitoring_interval + 60 = 90 s): then it is retried if it has retries left, or
moved to the FailedJobRegistry (rq's dead letters) with AbandonedJobError.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue, Retry, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from harness.adapters.base import AdapterUnavailable, FinalState, QueueOptions, TaskSpec
from harness.adapters.promises import Promises
from harness.hosted.base import QUEUE_NAME_ENV, HostedAdapter, WorkerCommand, WorkerLaunch
from harness.hosted.base import hosted_payload as make_payload
from harness.hosted.handler import PlannedFailure, current, ready_if_worker
from harness.peers.blocking import BlockingCalls

FUNCTION = f"{__name__}.run"
SOCKET_TIMEOUT_S = 5.0
PRIORITIES = 4
RETRIES_EXHAUSTED = "retries exhausted"
# rq's own timings (rq.defaults, rq.worker): a running job's heartbeat TTL, and the maintenance period.
HEARTBEAT_TTL_S = 30 + 60
MAINTENANCE_INTERVAL_S = 600
WORKER_SOCKET_TIMEOUT_S = 420 - 15 + 10


def job_id(queue_name: str, tid: str) -> str:
    """rq's job keys are global (rq:job:ID): the run's queue name keeps runs apart."""
    return f"{queue_name}-{tid}"


def tid_of(queue_name: str, job: str) -> str:
    return job.removeprefix(f"{queue_name}-")


def run(payload: dict[str, Any]) -> None:
    """The harness's handler as rq's work-horse runs it. rq counts a retry budget down (retries_left);
    the tries before this one are the budget minus what is left."""
    job = get_current_job()
    assert job is not None, "run() is rq's job function"
    budget = int(payload.get("max_retries", 0))
    left = job.retries_left if job.retries_left is not None else budget
    attempt = budget - left if budget else 0
    delivered = tid_of(os.environ.get(QUEUE_NAME_ENV, ""), job.id)
    current().run_sync(payload, attempt=attempt, delivered_id=delivered)


class RqAdapter:
    """rq under the harness: rq's client to enqueue, its queues and registries to read."""

    # rq's worker sets its connection's socket timeout to its dequeue timeout + 10 s (worker_ttl 420 - 15
    # + 10: rq/worker/base.py connection_timeout): a silent connection holds it that long.
    socket_timeout_s = float(WORKER_SOCKET_TIMEOUT_S)
    # Between its pop and the handler's start, the forking worker forks a work-horse and the horse loads
    # the job: much longer than an in-process handler's start (harness.adapters.promises.read_window_s).
    read_window_s = 2.0

    def __init__(self, variant: str, *, worker_class: str = "", by_priority: bool = False) -> None:
        self.name = f"peer:rq:{variant}"
        self.variant, self.worker_class, self.by_priority = variant, worker_class, by_priority
        self._options = QueueOptions()
        self._name = ""
        self._redis: redis.Redis | None = None
        self._queues: list[Queue] = []
        # rq's client is synchronous: one thread talks to Redis, in order.
        self._call = BlockingCalls("rq")
        self.promises = self._promises()

    def _promises(self) -> Promises:
        # rq docs (docs/jobs, docs/workers): a worker runs one job at a time, queues in the order given
        # ("high first"); Retry re-enqueues a failed job; failed jobs go to the FailedJobRegistry;
        # a job whose worker died is "abandoned" and handled by the registry cleanup that workers run
        # as maintenance (rq/registry.py StartedJobRegistry.cleanup, rq/worker/base.py). The forking
        # worker heartbeats a running job's registry entry (maintain_heartbeats); nothing checks that
        # the worker finishing a job still owns it.
        simple = self.worker_class.endswith("SimpleWorker")
        return Promises(
            priorities=self.by_priority, fifo=True, ownership_checked=False, renews_lease=not simple,
            visibility_timeout_s=float(HEARTBEAT_TTL_S),
            defaults=f"{'SimpleWorker' if simple else 'Worker (fork per job)'}, "
            f"{'one queue per priority, in priority order' if self.by_priority else 'one queue'}, "
            f"job_monitoring_interval=30s, maintenance_interval={MAINTENANCE_INTERVAL_S}s, "
            f"Retry(max=max_retries, interval={self._retry_interval_s()}s), JSON serializer",
            notes="rq #1716 (a multi-queue worker pops with BLPOP, a job popped by a dying worker is in no "
            "structure); abandoned jobs are handled only by the next maintenance run (every 600 s)",
        )  # fmt: skip

    def _retry_interval_s(self) -> int:
        return round(self._options.retry_base_delay_s)

    def queue_names(self, queue_name: str) -> list[str]:
        if not self.by_priority:
            return [queue_name]
        return [f"{queue_name}-p{prio}" for prio in range(PRIORITIES)]

    async def connect(self, url: str, queue_name: str, options: QueueOptions) -> None:
        self._options, self._name = options, queue_name
        self.promises = self._promises()  # the retry interval is the scenario's
        self._redis = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S, retry=None)
        serializer = JSONSerializer()
        self._queues = [
            Queue(name, connection=self._redis, serializer=serializer) for name in self.queue_names(queue_name)
        ]
        try:
            await self._call(self._redis.ping)
        except AdapterUnavailable:
            await self.close()
            raise

    async def close(self) -> None:
        if self._redis is not None:
            await self._call(self._redis.close)
        self._call.shutdown()

    async def enqueue(self, tasks: list[TaskSpec]) -> None:
        r = self._redis
        assert r is not None, "connect first"
        by_queue: dict[int, list[Any]] = {}
        for task in tasks:
            retry = Retry(max=task.max_retries, interval=self._retry_interval_s()) if task.max_retries else None
            data = Queue.prepare_data(FUNCTION, args=[make_payload(task)], job_id=job_id(self._name, task.tid),
                                      retry=retry)  # fmt: skip
            by_queue.setdefault(task.priority if self.by_priority else 0, []).append(data)

        def add() -> None:
            with r.pipeline() as pipe:  # MULTI/EXEC: the batch is added whole or not at all
                for index, datas in by_queue.items():
                    self._queues[index].enqueue_many(datas, pipeline=pipe)
                pipe.execute()

        await self._call(add)

    def worker(self, launch: WorkerLaunch) -> WorkerCommand:
        argv = [
            sys.executable, "-m", "rq.cli", "worker", "-c", __name__, "-S", "json", "-n", launch.consumer_name,
        ]  # fmt: skip
        if self.worker_class:
            argv += ["-w", self.worker_class]
        if self._retry_interval_s() > 0:
            argv.append("--with-scheduler")  # rq schedules delayed retries only with a scheduler
        argv += self.queue_names(launch.queue_name)
        # The URL travels in the environment (rq reads RQ_REDIS_URL): argv is visible to ps.
        return WorkerCommand(argv=argv, env={"RQ_REDIS_URL": launch.url})

    # -- reading rq's structures --------------------------------------------------------------

    def _keys(self) -> dict[str, list[str]]:
        """Every key rq keeps a run's jobs in, by what they hold."""
        keys: dict[str, list[str]] = {"ready": [], "intermediate": [], "started": [], "scheduled": [],
                                      "failed": [], "finished": []}  # fmt: skip
        for queue in self._queues:
            keys["ready"].append(queue.key)
            keys["intermediate"].append(queue.intermediate_queue_key)
            keys["started"].append(queue.started_job_registry.key)
            keys["scheduled"].append(queue.scheduled_job_registry.key)
            keys["failed"].append(queue.failed_job_registry.key)
            keys["finished"].append(queue.finished_job_registry.key)
        return keys

    async def depth(self) -> dict[str, int]:
        r = self._redis
        assert r is not None, "connect first"
        keys = self._keys()

        def read() -> dict[str, int]:
            # Raw counts: rq's count() would run the registries' cleanup, which is the worker's job.
            with r.pipeline(transaction=False) as pipe:
                for kind, names in keys.items():
                    for name in names:
                        (pipe.llen if kind in ("ready", "intermediate") else pipe.zcard)(name)
                found = iter(pipe.execute())
            return {kind: sum(int(next(found)) for _ in names) for kind, names in keys.items()}

        counts = await self._call(read)
        return {"ready": counts["ready"], "pending": counts["intermediate"] + counts["started"],
                "delayed": counts["scheduled"], "dead": counts["failed"], "completed": counts["finished"]}  # fmt: skip

    async def final_state(self) -> FinalState:
        r = self._redis
        assert r is not None, "connect first"
        keys = self._keys()
        serializer = JSONSerializer()

        def read() -> tuple[dict[str, list[str]], dict[str, Job], dict[str, str]]:
            with r.pipeline(transaction=False) as pipe:
                for kind, names in keys.items():
                    if kind == "finished":
                        continue
                    for name in names:
                        (pipe.lrange if kind in ("ready", "intermediate") else pipe.zrange)(name, 0, -1)
                found = iter(pipe.execute())
            ids = {kind: [_job_id(raw) for name in names for raw in next(found)]
                   for kind, names in keys.items() if kind != "finished"}  # fmt: skip
            wanted = sorted({job for found_ids in ids.values() for job in found_ids})
            fetched = Job.fetch_many(wanted, connection=r, serializer=serializer) if wanted else []
            jobs = {job.id: job for job in fetched if job is not None}
            errors = {job: _last_error(jobs[job]) for job in ids["failed"] if job in jobs}
            return ids, jobs, errors

        ids, jobs, errors = await self._call(read)
        return self._state(ids, jobs, errors)

    def _state(self, ids: dict[str, list[str]], jobs: dict[str, Job], errors: dict[str, str]) -> FinalState:
        foreign = 0

        def task(job_key: str) -> tuple[str, int] | None:
            nonlocal foreign
            payload = _payload(jobs.get(job_key))
            if payload is None:
                foreign += 1
                return None
            return str(payload["tid"]), int(payload.get("prio", 2))

        ready = [t for job in ids["ready"] if (t := task(job)) is not None]
        pending = [(t[0], t[1], kind) for kind in ("intermediate", "started") for job in ids[kind]
                   if (t := task(job)) is not None]  # fmt: skip
        delayed = [t[0] for job in ids["scheduled"] if (t := task(job)) is not None]
        dead = [_dead(jobs[job], errors.get(job, "")) for job in ids["failed"] if task(job) is not None]
        stats = {kind: len(found) for kind, found in ids.items()}
        return FinalState(ready=ready, pending=pending, delayed=delayed, dead=dead, foreign=foreign, stats=stats)


def _job_id(raw: bytes) -> str:
    """A registry member may be "job_id:execution_id" (rq.job.parse_job_id)."""
    return raw.decode().split(":", 1)[0]


def _payload(job: Job | None) -> dict[str, Any] | None:
    try:
        payload = job.args[0] if job is not None else None
    except Exception:  # a job rq cannot decode is not one of ours
        return None
    return payload if isinstance(payload, dict) and "tid" in payload else None


def _dead(job: Job, last_error: str) -> tuple[str, str, int, int]:
    """A job in the FailedJobRegistry: rq keeps its last error only (errors -1), and counts retries down."""
    payload = _payload(job) or {}
    budget = int(payload.get("max_retries", 0))
    left = job.retries_left if job.retries_left is not None else budget
    last = last_error.strip().splitlines()
    error = last[-1] if last else "(no error recorded)"
    reason = f"{RETRIES_EXHAUSTED}: {error}" if PlannedFailure.__name__ in error and left == 0 else error
    return str(payload.get("tid", job.id)), reason, budget - left, -1


def _last_error(job: Job) -> str:
    """The error of the job's last execution: rq records each failure as a Result (Job._handle_failure)."""
    result = job.latest_result()
    return result.exc_string or "" if result is not None else ""


VARIANTS: dict[str, Callable[[], HostedAdapter]] = {
    "default": lambda: RqAdapter("default"),
    "simple": lambda: RqAdapter("simple", worker_class="rq.worker.SimpleWorker"),
    "priorities": lambda: RqAdapter("priorities", by_priority=True),
}

# `rq worker -c harness.peers.rq` imports this module as its settings: the worker is up.
ready_if_worker()
