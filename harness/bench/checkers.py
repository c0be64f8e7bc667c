"""The checker speed bench: a realistic history of a correct queue, generated in memory, then judged.

    .venv/bin/python -m harness.bench.checkers [OPS]

The history comes from a small simulation of a strict-priority FIFO queue with leases: producers
enqueue batches, consumers read, run, ack or fail; failed attempts are retried through a delayed set
and dead-lettered when their budget runs out; a nemesis kills a few consumers while they hold tasks,
and their entries are reclaimed once idle. Every checker should find it valid, so the bench also
exercises the code paths of a passing run. Only indexing and judging are timed.
"""

from __future__ import annotations

import heapq
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from harness.checkers import CHECKERS, CheckContext, CheckResult, HistoryIndex, run_safely, validity_label
from harness.checkers.index import paused_gc
from harness.history import Op, merge

TARGET_S: Final = 10.0
MS: Final = 1_000_000
PRIORITIES: Final = 4


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchWorkload:
    producers: int = 8
    consumers: int = 8
    # Open-loop producers mostly send one task at a time, several when they fall behind.
    single_rate: float = 0.75
    batch_max: int = 8
    read_count: int = 10
    fail_rate: float = 0.02
    info_rate: float = 0.001  # enqueues whose answer is lost (half of them still happened)
    max_retries: int = 3
    kills: int = 6
    pending_timeout_ns: int = 2_000 * MS
    delivery_cap: int = 5
    seed: int = 1


@dataclass(slots=True)
class _Task:
    prio: int
    attempt: int = 0
    deliveries: int = 0  # of the current entry: a retry is a new entry


@dataclass(slots=True)
class _Consumer:
    slot: int
    incarnation: int = 0
    holding: list[str] | None = None  # delivered, not yet acked or failed
    failing: list[str] | None = None

    @property
    def process(self) -> str:
        return f"consumer-{self.slot}#{self.incarnation}"


class _Queue:
    """The queue under simulation: correct by construction (strict priority, FIFO, leases, retries)."""

    __slots__ = ("dead", "delayed", "orphans", "ready", "tasks", "workload")

    def __init__(self, workload: BenchWorkload) -> None:
        self.workload = workload
        self.tasks: dict[str, _Task] = {}
        self.ready: list[deque[str]] = [deque() for _ in range(PRIORITIES)]
        self.delayed: list[tuple[int, str]] = []  # (due ns, tid)
        self.orphans: list[tuple[int, str]] = []  # (delivered ns, tid) held by killed consumers
        self.dead: list[list[Any]] = []

    def add(self, tid: str, prio: int) -> None:
        self.tasks[tid] = _Task(prio)
        self.ready[prio].append(tid)

    def read(self, now_ns: int, count: int) -> list[list[Any]]:
        while self.delayed and self.delayed[0][0] <= now_ns:
            tid = heapq.heappop(self.delayed)[1]
            self.ready[self.tasks[tid].prio].append(tid)
        out = self._reclaim(now_ns, count)
        for ready in self.ready:
            while ready and len(out) < count:
                out.append(self._hand_out(ready.popleft()))
        return out

    def _reclaim(self, now_ns: int, count: int) -> list[list[Any]]:
        out: list[list[Any]] = []
        idle_before = now_ns - self.workload.pending_timeout_ns
        while self.orphans and self.orphans[0][0] <= idle_before and len(out) < count:
            tid = heapq.heappop(self.orphans)[1]
            if self.tasks[tid].deliveries >= self.workload.delivery_cap:
                task = self.tasks[tid]
                self.dead.append([tid, f"delivery cap: {task.deliveries}", task.attempt, task.attempt])
            else:
                out.append(self._hand_out(tid))
        return out

    def _hand_out(self, tid: str) -> list[Any]:
        task = self.tasks[tid]
        task.deliveries += 1
        # As the consumer journals it (harness.history): payload tid, budget, payload digest, error count.
        return [tid, task.prio, task.attempt, task.deliveries, tid, self.workload.max_retries, tid[-8:], task.attempt]

    def fail(self, tid: str, now_ns: int) -> str:
        task = self.tasks[tid]
        if task.attempt >= self.workload.max_retries:
            self.dead.append([tid, "retries exhausted: boom", task.attempt, task.attempt + 1])
            return "dead"
        task.attempt += 1
        task.deliveries = 0
        heapq.heappush(self.delayed, (now_ns + (10 * MS << task.attempt), tid))
        return "retried"

    def idle(self) -> bool:
        return not (self.delayed or self.orphans or any(self.ready))


class _Simulation:
    """Agents take turns by the time they are ready; each turn is one operation at one server moment."""

    __slots__ = ("agents", "consumers", "journals", "kills_left", "now_ns", "ops", "queue", "rng", "serial",
                 "stop_at", "workload")  # fmt: skip

    def __init__(self, workload: BenchWorkload, ops: int) -> None:
        self.workload, self.rng = workload, random.Random(workload.seed)
        self.queue = _Queue(workload)
        self.journals: dict[str, list[Op]] = {}
        self.now_ns, self.ops, self.serial = 1_000 * MS, 0, 0
        self.stop_at = ops  # then the drain adds its few operations
        self.kills_left = workload.kills
        self.consumers = [_Consumer(slot) for slot in range(workload.consumers)]
        self.agents: list[tuple[int, int, str, int]] = []  # (ready ns, tiebreak, role, slot)

    def run(self) -> list[Op]:
        self._runner("phase", {"name": "load"})
        for slot in range(self.workload.producers):
            self._schedule(self.now_ns, "producer", slot)
        for slot in range(self.workload.consumers):
            self._schedule(self.now_ns, "consumer", slot)
        drained = False
        while self.agents:
            ready_ns, _, role, slot = heapq.heappop(self.agents)
            self.now_ns = max(self.now_ns, ready_ns) + self.rng.randrange(5_000, 50_000)
            if role == "producer":
                self._produce(slot, ready_ns)
            elif not self._consume(slot, ready_ns):
                break
            if not drained and self.ops >= self.stop_at:
                drained = True
                self._runner("phase", {"name": "drain"})
        self._runner("final", self._final())
        return merge(self.journals.values())

    def _schedule(self, at_ns: int, role: str, slot: int) -> None:
        self.serial += 1
        heapq.heappush(self.agents, (at_ns, self.serial, role, slot))

    def _emit(self, process: str, type_: str, f: str, value: Any, at_ns: int) -> None:
        op = {"index": -1, "time_ns": at_ns, "process": process, "type": type_, "f": f, "value": value}
        self.journals.setdefault(process, []).append(op)
        self.ops += 1

    def _runner(self, f: str, value: Any) -> None:
        self.now_ns += MS
        self._emit("runner", "ok", f, value, self.now_ns)

    def _reply_ns(self) -> int:
        return self.now_ns + self.rng.randrange(20_000, 300_000)

    def _produce(self, slot: int, invoke_ns: int) -> None:
        if self.ops >= self.stop_at:
            return  # producers stop; the drain begins
        rng, process = self.rng, f"producer-{slot // 2}.{slot % 2}"
        size = 1 if rng.random() < self.workload.single_rate else rng.randint(2, self.workload.batch_max)
        # Numbered per producer slot in send order, as producers number theirs (p{producer}-{n}).
        tasks = [(f"p{slot}-{self.serial * 1000 + n}", rng.choice((0, 1, 2, 2, 3, 3))) for n in range(size)]
        self.serial += 1
        value = {"tasks": [[tid, prio, self.workload.max_retries] for tid, prio in tasks], "due_ns": invoke_ns}
        self._emit(process, "invoke", "enqueue", value, invoke_ns)
        lost_answer = rng.random() < self.workload.info_rate
        if not lost_answer or rng.random() < 0.5:
            for tid, prio in tasks:
                self.queue.add(tid, prio)
        reply_ns = self._reply_ns()
        self._emit(process, "info" if lost_answer else "ok", "enqueue", {"error": "timeout"} if lost_answer else {},
                   reply_ns)  # fmt: skip
        self._schedule(reply_ns + rng.randrange(200_000, 2_000_000), "producer", slot)

    def _consume(self, slot: int, invoke_ns: int) -> bool:
        """One consumer turn; False when the drain is over."""
        consumer = self.consumers[slot]
        if consumer.holding is not None:
            self._finish(consumer, invoke_ns)
        elif consumer.failing is not None:
            self._fail(consumer, invoke_ns)
        else:
            draining = self.ops >= self.stop_at
            if draining and self.queue.idle() and all(c.holding is None for c in self.consumers):
                return False
            self._read(consumer, invoke_ns)
        return True

    def _read(self, consumer: _Consumer, invoke_ns: int) -> None:
        process = consumer.process
        self._emit(process, "invoke", "deliver", {}, invoke_ns)
        tasks = self.queue.read(self.now_ns, self.workload.read_count)
        reply_ns = self._reply_ns() if tasks else self.now_ns + 5 * MS  # an empty read blocks a while
        self._emit(process, "ok", "deliver", {"tasks": tasks}, reply_ns)
        if tasks:
            consumer.holding = [task[0] for task in tasks]
            if self.kills_left and self.rng.random() < self.kills_left / max(1, self.stop_at // 20):
                self._kill(consumer, reply_ns)
                return
        self._schedule(reply_ns + self.rng.randrange(100_000, 3_000_000), "consumer", consumer.slot)

    def _kill(self, consumer: _Consumer, at_ns: int) -> None:
        held = consumer.holding or []
        self.kills_left -= 1
        kill_ns = at_ns + 200_000
        value = {"kind": "kill", "target": f"consumer-{consumer.slot}", "held": held}
        self._emit("nemesis", "invoke", "fault", value, kill_ns)
        self._emit("nemesis", "ok", "fault", {}, kill_ns + 100_000)
        for tid in held:
            heapq.heappush(self.queue.orphans, (at_ns, tid))
        consumer.incarnation += 1
        consumer.holding = consumer.failing = None
        self._schedule(kill_ns + 300 * MS, "consumer", consumer.slot)

    def _finish(self, consumer: _Consumer, invoke_ns: int) -> None:
        held = consumer.holding or []
        failed = [tid for tid in held if self.rng.random() < self.workload.fail_rate]
        done = [tid for tid in held if tid not in failed]
        consumer.holding, consumer.failing = None, failed or None
        self._emit(consumer.process, "invoke", "complete", {"tasks": done}, invoke_ns)
        reply_ns = self._reply_ns()
        self._emit(consumer.process, "ok", "complete", {"refused": []}, reply_ns)
        self._schedule(reply_ns + 50_000, "consumer", consumer.slot)

    def _fail(self, consumer: _Consumer, invoke_ns: int) -> None:
        failed = consumer.failing or []
        consumer.failing = None
        tasks = [[tid, self.queue.tasks[tid].attempt, "boom"] for tid in failed]
        self._emit(consumer.process, "invoke", "fail", {"tasks": tasks}, invoke_ns)
        outcomes = [self.queue.fail(tid, self.now_ns) for tid in failed]
        reply_ns = self._reply_ns()
        self._emit(consumer.process, "ok", "fail", {"outcomes": outcomes}, reply_ns)
        self._schedule(reply_ns + 50_000, "consumer", consumer.slot)

    def _final(self) -> dict[str, Any]:
        return {"ready": [], "pending": [], "delayed": [], "dead": self.queue.dead, "acked_not_deleted": [],
                "foreign": 0, "stats": {}}  # fmt: skip


def generate_history(ops: int, workload: BenchWorkload | None = None) -> list[Op]:
    """A merged history of about `ops` operations from a simulated correct queue."""
    with paused_gc():
        return _Simulation(workload or BenchWorkload(), ops).run()


def judge(history: list[Op], context: CheckContext) -> tuple[float, float, list[tuple[CheckResult, float]]]:
    """(index seconds, total seconds, [(result, seconds)] per checker)."""
    started = time.perf_counter()
    index = HistoryIndex.build(history)
    indexed = time.perf_counter()
    timed: list[tuple[CheckResult, float]] = []
    with paused_gc():
        for name, checker in CHECKERS.items():
            began = time.perf_counter()
            result = run_safely(name, partial(checker, index, context))
            timed.append((result, time.perf_counter() - began))
    return indexed - started, time.perf_counter() - started, timed


def main(ops: int = 1_000_000) -> None:
    workload = BenchWorkload()
    began = time.perf_counter()
    history = generate_history(ops, workload)
    print(f"generated {len(history)} ops in {time.perf_counter() - began:.1f} s")
    context = CheckContext(pending_timeout_s=workload.pending_timeout_ns / 1e9, delivery_cap=workload.delivery_cap)
    index_s, total_s, timed = judge(history, context)
    print(f"  index      {index_s:6.2f} s")
    for result, seconds in timed:
        print(f"  {result.name:<10} {seconds:6.2f} s  {validity_label(result.valid):<8} {result.note}")
    verdict = "OK" if total_s < TARGET_S else "TOO SLOW"
    rate_k = len(history) / total_s / 1000
    summary = f"checkers: {len(history)} ops judged in {total_s:.1f} s ({rate_k:.0f}k ops/s)"
    print(f"{summary}; target < {TARGET_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
