"""The producer process: offers tasks open-loop at the plan's rate, journaling every batch.

Batches are due at fixed times (start + n * batch / rate). A batch that goes out
late still carries its due time, so latency counts from when the task should have
been sent and a slow queue cannot hide behind a slowed-down producer. At rate 0 (as
fast as possible) there is no schedule: a batch is due when it is sent. The schedule
starts once every consumer has connected (harness.agents.common.consumers_ready).

Enough batches are in flight at once that a slow reply does not hold the next batch
back (the load stays open-loop); how late batches went out is measured all the same.
Batches leave on time to well under a millisecond (harness.agents.pacer): asyncio's
own timers are late by up to a millisecond, and that lateness would count against
the queue.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

from harness.adapters import QueueClient, TaskSpec
from harness.adapters.base import AdapterRefused, AdapterUnavailable
from harness.agents.common import AgentArgs, connect, consumers_ready, mark_ready, stop_event
from harness.agents.pacer import Pacer
from harness.agents.stats import AgentStats
from harness.history import FAIL, INFO, INVOKE, OK, Journal
from harness.scenario import Scenario, Workload

IN_FLIGHT = 16
# Unpaced (rate 0) lanes are always in flight: a couple keep Redis busy without queueing
# dozens of enqueues ahead of every consumer's read.
UNPACED_IN_FLIGHT = 2
FIRST_POISON = 50


def task_count(scenario: Scenario, index: int) -> int:
    run = scenario.run
    total = run.tasks if run.tasks is not None else int(max(run.rate, 1) * run.duration_s) if run.rate else 0
    if not total:
        return 0  # as fast as possible for duration_s
    return total // run.producers + (1 if index < total % run.producers else 0)


def batches(args: AgentArgs, start_ns: int) -> Iterator[tuple[int, list[TaskSpec]]]:
    """(due time, tasks) forever or until this producer's share is made."""
    scenario, seed = args.plan.scenario, args.plan.seed
    work = scenario.workload
    rng = random.Random(f"{seed}:producer:{args.index}")
    limit = task_count(scenario, args.index)
    share = scenario.run.rate / scenario.run.producers
    interval_ns = int(work.enqueue_batch / share * 1e9) if share else 0
    made, n = 0, 0
    while not limit or made < limit:
        size = work.enqueue_batch if not limit else min(work.enqueue_batch, limit - made)
        due = start_ns + n * interval_ns
        tasks = []
        for _ in range(size):
            task = _task(f"p{args.index}-{made}", due, work, rng)
            if work.poison_fraction and args.index == 0 and made == FIRST_POISON:
                task.payload["poison"] = True  # at least one, however short the run
            tasks.append(task)
            made += 1
        yield due, tasks
        n += 1


def _task(tid: str, due: int, work: Workload, rng: random.Random) -> TaskSpec:
    """One task; its payload says how long it runs and whether it is poison."""
    run_ms = min(rng.expovariate(1 / work.task_ms_mean), work.task_ms_max) if work.task_ms_mean else 0.0
    payload: dict[str, object] = {"tid": tid, "ms": round(run_ms, 3), "due": due}
    if work.poison_fraction and rng.random() < work.poison_fraction:
        payload["poison"] = True
    prio = rng.choices(range(4), weights=work.priorities)[0]
    return TaskSpec(tid=tid, priority=prio, max_retries=work.max_retries, payload=payload)


async def send(
    adapter: QueueClient,
    journal: Journal,
    process: str,
    due: int,
    tasks: list[TaskSpec],
    stats: AgentStats | None = None,
) -> None:
    value: dict[str, object] = {"tasks": [[t.tid, t.priority, t.max_retries] for t in tasks], "due_ns": due}
    poison = [t.tid for t in tasks if t.payload.get("poison")]
    if poison:
        value["poison"] = poison
    sent_ns = journal.record(process, INVOKE, "enqueue", value)
    try:
        await adapter.enqueue(tasks)
        done_ns = journal.record(process, OK, "enqueue", {})
        if stats is not None:
            stats.record_ns("send_lag", sent_ns - due)
            stats.record_ns("enqueue_call", done_ns - sent_ns)
            stats.counts["enqueued"] += len(tasks)
    except AdapterRefused as exc:
        journal.record(process, FAIL, "enqueue", {"error": str(exc)})
    except AdapterUnavailable as exc:
        journal.record(process, INFO, "enqueue", {"error": str(exc)})
        await asyncio.sleep(0.05)


async def run_producer(args: AgentArgs) -> None:
    stop = stop_event()
    adapter = await connect(args, stop)
    if adapter is None:
        return
    await consumers_ready(args.journal, args.plan.scenario.run.consumers, stop)
    mark_ready(args.journal)
    deadline_ns = time.monotonic_ns() + int(args.plan.scenario.run.duration_s * 1e9)
    plan = batches(args, time.monotonic_ns())
    journal = Journal(args.journal, enabled=args.journaling)
    stats = AgentStats(args.name, "producer")
    unpaced = not args.plan.scenario.run.rate
    pacer = Pacer()

    async def lane(k: int) -> None:
        process = f"{args.name}.{k}"
        for planned_ns, tasks in plan:  # the lanes share one generator: each batch goes out once
            due = _stamp_due(tasks, time.monotonic_ns()) if unpaced else planned_ns
            if stop.is_set() or (args.plan.scenario.run.tasks is None and due >= deadline_ns):
                return
            await pacer.until(due)
            await send(adapter, journal, process, due, tasks, stats)

    try:
        await asyncio.gather(*(lane(k) for k in range(UNPACED_IN_FLIGHT if unpaced else IN_FLIGHT)))
    finally:
        pacer.close()
        journal.close()
        stats.write(args.journal)
        await adapter.close()


def _stamp_due(tasks: list[TaskSpec], due: int) -> int:
    """Unpaced load: the batch is due now (its payloads say so too, for the consumers' figures)."""
    for task in tasks:
        task.payload["due"] = due
    return due
