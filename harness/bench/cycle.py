"""The produce/consume/ack cycle: taskq against a raw redis-py loop, same Redis, same layout.

One producer process enqueues N tasks in batches while one consumer process reads
and acks them in batches, both asyncio, both started at the same instant. The raw
loop does the same commands taskq's functions do at their core (pipelined XADD,
XREADGROUP, XACK + XDEL) with no framework: it is the ceiling taskq is held to.
Implementations alternate round by round, so machine noise hits both alike. Then each side
alone (the producer with no consumer, the consumer on the whole backlog) says which one
bounds the cycle.

    python -m harness.bench.cycle [--tasks N] [--batch B] [--rounds R] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from harness.agents.common import URL_ENV
from harness.providers.local import url_or_fresh_server
from taskq import QueueSettings, Task, TaskQueue

IMPLEMENTATIONS = ("raw", "taskq")
ALONE_FIGURES = ("produce", "consume", "redis_cpu_us_per_consumed_task")
GROUP = "bench"
PAYLOAD = {"n": 1, "text": "x" * 64}


async def raw_producer(url: str, queue: str, tasks: int, batch: int) -> None:
    redis = aioredis.Redis.from_url(url)
    stream = f"raw:{{{queue}}}:p2"
    data = json.dumps(PAYLOAD)
    for start in range(0, tasks, batch):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + batch, tasks)):
                pipe.xadd(stream, {"id": str(i), "type": "bench", "data": data})
            await pipe.execute()
    await redis.aclose()


async def raw_consumer(url: str, queue: str, tasks: int, batch: int) -> None:
    redis = aioredis.Redis.from_url(url)
    stream = f"raw:{{{queue}}}:p2"
    done = 0
    while done < tasks:
        reply: Any = await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=batch, block=1000)
        entries = [entry for _, stream_entries in reply or [] for entry in stream_entries]
        payloads = [json.loads(fields[b"data"]) for _, fields in entries]  # a consumer decodes what it runs
        ids = [entry_id for entry_id, _ in entries]
        if payloads:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
                await pipe.execute()
            done += len(ids)
    await redis.aclose()


def _settings(queue: str, batch: int) -> QueueSettings:
    return QueueSettings(name=queue, batch_size=batch, block_ms=1000)


async def taskq_producer(url: str, queue: str, tasks: int, batch: int) -> None:
    async with TaskQueue(url, settings=_settings(queue, batch)) as q:
        for start in range(0, tasks, batch):
            await q.add_tasks([Task(str(i), "bench", PAYLOAD) for i in range(start, min(start + batch, tasks))])


async def taskq_consumer(url: str, queue: str, tasks: int, batch: int) -> None:
    async with TaskQueue(url, settings=_settings(queue, batch)) as q:
        done = 0
        while done < tasks:
            deliveries = await q.read("c", batch)
            if deliveries:
                await q.ack([d.receipt for d in deliveries])
                done += len(deliveries)


ROLES = {
    ("raw", "producer"): raw_producer, ("raw", "consumer"): raw_consumer,
    ("taskq", "producer"): taskq_producer, ("taskq", "consumer"): taskq_consumer,
}  # fmt: skip


async def prepare(url: str, impl: str, queue: str) -> None:
    """Streams and groups exist before the clock starts, for both alike."""
    if impl == "taskq":
        async with TaskQueue(url, settings=_settings(queue, 1)):
            return
    redis = aioredis.Redis.from_url(url)
    await redis.xgroup_create(f"raw:{{{queue}}}:p2", GROUP, id="0", mkstream=True)
    await redis.aclose()


def role_main(argv: list[str]) -> None:
    """In a child process: connect, wait for the shared start instant, run, print the end time."""
    impl, role, queue, tasks, batch, start_at = argv
    url = os.environ[URL_ENV]
    work = ROLES[(impl, role)]

    async def timed() -> float:
        await asyncio.sleep(max(0.0, float(start_at) - time.time()))
        await work(url, queue, int(tasks), int(batch))
        return time.time()

    print(json.dumps({"end": asyncio.run(timed())}))


def one_round(url: str, impl: str, tasks: int, batch: int) -> float:
    """Tasks per second of one producer + one consumer run."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(prepare(url, impl, queue))
    start_at = time.time() + 1.0  # both processes are up and connected by then

    def spawn(role: str) -> subprocess.Popen[str]:
        args = ["--role", impl, role, queue, str(tasks), str(batch), str(start_at)]
        command = [sys.executable, "-m", "harness.bench.cycle", *args]
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, URL_ENV: url})

    children = [spawn("consumer"), spawn("producer")]
    ends = [float(json.loads(child.communicate(timeout=300)[0])["end"]) for child in children]
    return tasks / (max(ends) - start_at)


def compare(url: str, tasks: int, batch: int, rounds: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {impl: [] for impl in IMPLEMENTATIONS}
    for round_number in range(rounds):
        for impl in IMPLEMENTATIONS if round_number % 2 == 0 else reversed(IMPLEMENTATIONS):
            rates[impl].append(one_round(url, impl, tasks, batch))
            print(f"round {round_number + 1}/{rounds} {impl:>5}: {rates[impl][-1]:9,.0f} tasks/s", file=sys.stderr)
    medians = {impl: statistics.median(r) for impl, r in rates.items()}
    return {
        "tasks": tasks, "batch": batch, "rounds": rounds, "rates": rates,
        "raw_tasks_per_s": medians["raw"], "taskq_tasks_per_s": medians["taskq"],
        "ratio": medians["taskq"] / medians["raw"],
    }  # fmt: skip


async def _redis_cpu_s(url: str) -> float:
    redis = aioredis.Redis.from_url(url)
    cpu: Any = await redis.info("cpu")
    await redis.aclose()
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def _alone(url: str, impl: str, tasks: int, batch: int) -> tuple[float, float, float]:
    """Tasks per second of the producer with no consumer running, then of the consumer on the
    full backlog (which side bounds the cycle), and redis-server's CPU µs per task consumed."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    await prepare(url, impl, queue)
    start = time.perf_counter()
    await ROLES[(impl, "producer")](url, queue, tasks, batch)
    produced, cpu_before = time.perf_counter(), await _redis_cpu_s(url)
    await ROLES[(impl, "consumer")](url, queue, tasks, batch)
    consumed, cpu_after = time.perf_counter(), await _redis_cpu_s(url)
    return tasks / (produced - start), tasks / (consumed - produced), (cpu_after - cpu_before) / tasks * 1e6


def alone(url: str, tasks: int, batch: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median producer-alone and consumer-alone rates, and Redis CPU per task consumed, per implementation."""
    runs: dict[str, list[tuple[float, float, float]]] = {impl: [] for impl in IMPLEMENTATIONS}
    for _ in range(rounds):
        for impl in IMPLEMENTATIONS:
            runs[impl].append(asyncio.run(_alone(url, impl, tasks, batch)))
    return {
        impl: {name: statistics.median(r[i] for r in results) for i, name in enumerate(ALONE_FIGURES)}
        for impl, results in runs.items()
    }


def seed_tests_seconds() -> float | None:
    """Wall time pytest reports for the seed's eleven behaviours (the seed took 3.10 s)."""
    tests = Path(__file__).resolve().parents[2] / "tests" / "integration" / "test_seed_behaviours.py"
    if not tests.exists():
        return None
    done = subprocess.run(
        # Without the Hypothesis plugin: these tests do not use it, and it costs 0.7 s to load.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", str(tests)],
        capture_output=True, text=True, check=False, cwd=tests.parents[2],
    )  # fmt: skip
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if " passed in " not in last or "failed" in last:
        return None
    return float(last.split(" in ")[1].split("s")[0])


def main() -> None:
    if sys.argv[1:2] == ["--role"]:
        role_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="local", help="local (a fresh redis-server) or a URL")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with url_or_fresh_server(None if args.redis == "local" else args.redis) as url:
        figures = compare(url, args.tasks, args.batch, args.rounds)
        figures["alone"] = alone(url, args.tasks, args.batch, args.rounds)
    figures["seed_tests_s"] = seed_tests_seconds()
    print(f"raw redis-py cycle: {figures['raw_tasks_per_s']:10,.0f} tasks/s (median of {args.rounds})")
    print(f"taskq cycle:        {figures['taskq_tasks_per_s']:10,.0f} tasks/s (median of {args.rounds})")
    target = "OK" if figures["ratio"] >= 0.8 else "below target"
    print(f"taskq / raw:        {figures['ratio']:10.2f}   (target >= 0.80: {target})")
    for impl, rates in figures["alone"].items():
        print(
            f"{impl:>5} alone: producer {rates['produce']:9,.0f} tasks/s, consumer {rates['consume']:9,.0f} tasks/s "
            f"(redis-server CPU {rates['redis_cpu_us_per_consumed_task']:.1f} µs per task read and acked)"
        )
    seed = figures["seed_tests_s"]
    print(f"seed's eleven behaviours: {seed if seed is not None else 'n/a'} s (the seed took 3.10 s; aim < 1.5 s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
