"""One drain measurement: enqueue a backlog through a queue's own client, start its workers, time the drain.

The queue is any the harness runs: a pull adapter (the harness's own consumer agents, `raw` for the
redis-py ceiling) or a hosted one (taskq's worker, a peer library's). The task body is empty, or an
INCR of a counter the bench reads afterwards: every task ran once, none was lost or doubled. Nothing is
journaled unless asked (the journaling-cost comparison asks). CPU is the workers' whole process trees,
and redis-server's (INFO cpu), over the drain.

Run as a process of its own, in the environment the queue's library lives in (harness.bench.peers does
that), it prints one JSON object:

    python -m harness.bench.drain --queue peer:taskiq --url redis://127.0.0.1:PORT/0 --folder DIR \\
        --tasks 20000 --workers 2 --concurrency 32 --body empty
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import redis.asyncio as aioredis

from harness.adapters import AdapterUnavailable, QueueClient, TaskSpec, adapter_factory
from harness.bench.cost import redis_cpu_s, spent
from harness.fleet import Fleet
from harness.hosted.base import is_hosted
from harness.hosted.handler import COUNTER_ENV
from harness.hosted.startup import workers_up
from harness.plan import make_plan
from harness.processes import cpu_seconds
from harness.scenario import load_scenario

BODIES = ("empty", "incr")
ENQUEUE_BATCH = 100
ENQUEUES_IN_FLIGHT = 4
NORMAL = 2
POLL_S = 0.02
DRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True, kw_only=True, slots=True)
class DrainCase:
    queue: str
    body: str = "empty"
    workers: int = 1
    concurrency: int = 32
    tasks: int = 20_000
    journaling: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class DrainResult:
    case: DrainCase
    enqueue_per_s: float
    # From the workers' start (start-up included, as users see a backlog go), and from the first task done.
    drain_per_s: float | None
    drain_after_start_per_s: float | None
    startup_s: float | None
    worker_cpu_us_per_task: float | None
    redis_cpu_us_per_task: float | None
    counted: int | None  # the INCR body's counter: must equal the tasks
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _tasks(count: int, tag: str) -> list[TaskSpec]:
    """Ids unique to this drain: a library that keeps results by id (arq) refuses an id it has seen."""
    due = time.monotonic_ns()
    return [TaskSpec(tid=f"{tag}-{n}", priority=NORMAL, max_retries=0,
                     payload={"tid": f"{tag}-{n}", "ms": 0, "due": due}) for n in range(count)]  # fmt: skip


async def _enqueue_all(client: QueueClient, tasks: list[TaskSpec]) -> float:
    """Tasks per second through the library's own client, batched, a few batches in flight."""
    batches = [tasks[i : i + ENQUEUE_BATCH] for i in range(0, len(tasks), ENQUEUE_BATCH)]
    gate = asyncio.Semaphore(ENQUEUES_IN_FLIGHT)

    async def send(batch: list[TaskSpec]) -> None:
        async with gate:
            await client.enqueue(batch)

    started = time.perf_counter()
    await asyncio.gather(*(send(batch) for batch in batches))
    return len(tasks) / (time.perf_counter() - started)


async def _left(client: QueueClient, counter: aioredis.Redis | None, key: str, tasks: int) -> int:
    """Tasks not yet done: from the counter (INCR body), else the queue's own depth."""
    if counter is not None:
        return tasks - int(await counter.get(key) or 0)
    try:
        depth = await client.depth()
    except AdapterUnavailable:
        return tasks
    return depth["ready"] + depth["pending"] + depth["delayed"]


async def measure(case: DrainCase, url: str, folder: Path, seed: int = 1) -> DrainResult:
    steady = load_scenario("steady")
    workload = replace(steady.workload, task_ms_mean=0.0, read_count=case.concurrency, concurrency=case.concurrency)
    scenario = replace(steady, workload=workload)
    queue_name = f"drain-{seed}-{int(time.time() * 1000) % 10**9}"
    plan = make_plan(scenario, seed=seed, queue=case.queue, redis="local", queue_name=queue_name)
    folder.mkdir(parents=True, exist_ok=True)
    plan.save(folder / "plan.json")
    client = adapter_factory(case.queue)()
    await client.connect(url, queue_name, scenario.queue)
    key = f"harness-bench:{queue_name}:done"
    counter = aioredis.Redis.from_url(url) if case.body == "incr" else None
    fleet = Fleet(
        folder, folder / "plan.json", url, journaling=case.journaling, hosted=client if is_hosted(client) else None,
        queue_name=queue_name, options=scenario.queue, concurrency=case.concurrency,
        agent_env={COUNTER_ENV: key} if counter is not None else {},
    )  # fmt: skip
    try:
        enqueue_per_s = await _enqueue_all(client, _tasks(case.tasks, queue_name))
        return await _drain(case, fleet, client, counter, key, url, enqueue_per_s)
    finally:
        fleet.stop_all()
        await client.close()
        if counter is not None:
            await counter.aclose()


async def _drain(
    case: DrainCase, fleet: Fleet, client: QueueClient, counter: aioredis.Redis | None, key: str, url: str,
    enqueue_per_s: float,
) -> DrainResult:  # fmt: skip
    queued = await _left(client, counter, key, case.tasks)
    if queued != case.tasks:  # the library dropped some of what it was sent: no drain to time
        return DrainResult(case=case, enqueue_per_s=round(enqueue_per_s, 1), drain_per_s=None,
                           drain_after_start_per_s=None, startup_s=None, worker_cpu_us_per_task=None,
                           redis_cpu_us_per_task=None, counted=None,
                           error=f"{queued} of {case.tasks} tasks sent are queued before any worker ran")  # fmt: skip
    redis_before = await redis_cpu_s(url)
    started = time.monotonic()
    fleet.start_consumers(case.workers)
    if fleet.hosted is not None:
        await workers_up(fleet)
    first_done: float | None = None
    deadline = started + DRAIN_TIMEOUT_S
    left = case.tasks
    while time.monotonic() < deadline:
        left = await _left(client, counter, key, case.tasks)
        if first_done is None and left < case.tasks:
            first_done = time.monotonic()
        if left <= 0:
            break
        await asyncio.sleep(POLL_S)
    ended = time.monotonic()
    worker_cpu = sum(cpu_seconds(agent.tree()) for agent in fleet.consumers.values())
    redis_cpu = spent(redis_before, await redis_cpu_s(url))
    counted = int(await counter.get(key) or 0) if counter is not None else None
    drained = left <= 0
    return DrainResult(
        case=case, enqueue_per_s=round(enqueue_per_s, 1),
        drain_per_s=round(case.tasks / (ended - started), 1) if drained else None,
        drain_after_start_per_s=round(case.tasks / (ended - first_done), 1) if drained and first_done else None,
        startup_s=round(first_done - started, 3) if first_done else None,
        worker_cpu_us_per_task=round(worker_cpu / case.tasks * 1e6, 1) if drained else None,
        redis_cpu_us_per_task=round(redis_cpu / case.tasks * 1e6, 1) if drained and redis_cpu is not None else None,
        counted=counted,
        error="" if drained else f"not drained within {DRAIN_TIMEOUT_S:g} s: {left} task(s) left",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--body", choices=BODIES, default="empty")
    parser.add_argument("--journal", action="store_true", help="Journal every start and finish, as chaos runs do.")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    case = DrainCase(queue=args.queue, body=args.body, workers=args.workers, concurrency=args.concurrency,
                     tasks=args.tasks, journaling=args.journal)  # fmt: skip
    result = asyncio.run(measure(case, args.url, args.folder, args.seed))
    print(json.dumps(result.as_dict()))


if __name__ == "__main__":
    main()
