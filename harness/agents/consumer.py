"""The consumer process: reads batches, simulates the work, acks and fails, journaling each step.

What a task does is fixed by its payload and the seed: it runs for payload["ms"],
fails with the workload's probability (drawn from seed, task id and attempt), and a
poison task kills this process outright, as a real crashing handler would.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import orjson
import redis.asyncio as aioredis

from harness.adapters import Delivered, QueueAdapter
from harness.adapters.base import AdapterUnavailable
from harness.agents.common import AgentArgs, attempt_fails, connect, mark_ready, stop_event
from harness.agents.stats import AgentStats
from harness.errors import AdapterError
from harness.history import INFO, INVOKE, OK, Journal
from harness.hosted.handler import COUNTER_ENV

POISON_EXIT_CODE = 3


def delivery_record(d: Delivered) -> list[Any]:
    """[tid, prio, attempt, deliveries, payload tid, max_retries, payload digest, errors]: see harness.history."""
    payload_tid = d.payload.get("tid") if isinstance(d.payload, dict) else None
    tid = d.tid if payload_tid is None else payload_tid  # differs when the queue changed the task's id
    return [d.tid, d.priority, d.attempt, d.deliveries, tid, d.max_retries, payload_digest(d.payload), d.errors]


def payload_digest(payload: Any) -> str | None:
    """A short hash of a payload, so the history can tell a retry that kept its payload from one that
    did not without journaling every payload. 8 hex digits: it is only compared with the same task's."""
    try:
        encoded = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None  # not JSON (a foreign entry's payload): nothing to compare
    return hashlib.blake2b(encoded, digest_size=4).hexdigest()


class Consumer:
    def __init__(self, args: AgentArgs, adapter: QueueAdapter, journal: Journal) -> None:
        self.args, self.adapter, self.journal = args, adapter, journal
        self.process = args.name
        self.consumer = args.name.replace("#", "-")
        self.workload = args.plan.scenario.workload
        self.stats = AgentStats(args.name, "consumer")
        # Benchmarks (harness.bench.drain): the same task body hosted workers run (harness.hosted.handler).
        self.counter_key = os.environ.get(COUNTER_ENV, "")
        self.counter = aioredis.Redis.from_url(args.url) if self.counter_key else None

    async def step(self) -> None:
        """One read, the work, and the settling of what was read."""
        self.journal.record(self.process, INVOKE, "deliver", {})
        try:
            batch = await self.adapter.consume(self.consumer, self.workload.read_count)
        except AdapterUnavailable as exc:
            self.journal.record(self.process, INFO, "deliver", {"error": str(exc)})
            await asyncio.sleep(0.05)
            return
        delivered_ns = self.journal.record(self.process, OK, "deliver", {"tasks": [delivery_record(d) for d in batch]})
        if not batch:
            self.stats.counts["empty_reads"] += 1
            return
        self._record_starts(batch, delivered_ns)
        if any(isinstance(d.payload, dict) and d.payload.get("poison") for d in batch):
            os._exit(POISON_EXIT_CODE)  # the handler crashes the worker, mid-batch
        # The batch's tasks run side by side: it takes as long as its longest task. A batch of
        # zero-time tasks does not even yield to the loop (latency runs measure the queue, not us).
        longest_s = max(_run_s(d) for d in batch)
        if longest_s > 0:
            await asyncio.sleep(longest_s)
        if self.counter is not None:  # the benchmarks' task body: one INCR per task, all at once
            await asyncio.gather(*(self.counter.incr(self.counter_key) for _ in batch))
        seed, p = self.args.plan.seed, self.workload.failure_probability
        failed = [d for d in batch if attempt_fails(seed, d.tid, d.attempt, p)]
        succeeded = [d for d in batch if d not in failed]
        if succeeded:
            await self._complete(succeeded)
        if failed:
            await self._fail(failed)

    async def _complete(self, done: list[Delivered]) -> None:
        self.journal.record(self.process, INVOKE, "complete", {"tasks": [d.tid for d in done]})
        try:
            acked = await self.adapter.complete(self.consumer, done)
        except AdapterUnavailable as exc:
            self.journal.record(self.process, INFO, "complete", {"error": str(exc)})
            return
        refused = [d.tid for d, ok in zip(done, acked, strict=True) if not ok]
        done_ns = self.journal.record(self.process, OK, "complete", {"refused": refused})
        for d, ok in zip(done, acked, strict=True):
            due = d.payload.get("due") if ok and isinstance(d.payload, dict) else None
            if isinstance(due, int):
                self.stats.record_ns("enqueue_to_complete", done_ns - due)
        self.stats.counts["completed"] += len(done) - len(refused)

    def _record_starts(self, batch: list[Delivered], delivered_ns: int) -> None:
        """First deliveries only, as the history's figures count them."""
        self.stats.counts["reads"] += 1
        self.stats.counts["delivered"] += len(batch)
        for d in batch:
            due = d.payload.get("due") if isinstance(d.payload, dict) else None
            if d.attempt == 0 and d.deliveries == 1 and isinstance(due, int):
                self.stats.record_ns("enqueue_to_start", delivered_ns - due)

    async def _fail(self, failed: list[Delivered]) -> None:
        errors = [(d, f"planned failure of attempt {d.attempt}") for d in failed]
        value = {"tasks": [[d.tid, d.attempt, error] for d, error in errors]}
        self.journal.record(self.process, INVOKE, "fail", value)
        try:
            outcomes = await self.adapter.fail(self.consumer, errors)
        except AdapterUnavailable as exc:
            self.journal.record(self.process, INFO, "fail", {"error": str(exc)})
            return
        self.journal.record(self.process, OK, "fail", {"outcomes": outcomes})


def _run_s(d: Delivered) -> float:
    return float(d.payload.get("ms", 0)) / 1000 if isinstance(d.payload, dict) else 0.0


async def run_consumer(args: AgentArgs) -> None:
    stop = stop_event()
    client = await connect(args, stop)
    if client is None:
        return
    if not isinstance(client, QueueAdapter):
        raise AdapterError(f"{args.plan.queue} is hosted: its consumers are its own workers, not harness agents")
    adapter = client
    journal = Journal(args.journal, enabled=args.journaling)
    consumer = Consumer(args, adapter, journal)
    mark_ready(args.journal)
    try:
        while not stop.is_set():
            await consumer.step()
    finally:
        journal.close()
        consumer.stats.write(args.journal)
        await adapter.close()
        if consumer.counter is not None:
            await consumer.counter.aclose()
