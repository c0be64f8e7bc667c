"""A correct queue, simulated one operation at a time, writing the history its agents would journal.

Strict priority, FIFO within a priority, retries through a delayed set, dead-lettering when the
retry budget or the delivery cap runs out, and reclaim of what killed consumers held once it has
been idle past the lease. Every checker must pass what it writes; the property tests then plant
one anomaly at a time and expect the matching checker to catch it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.unit.checkers.builder import MS, HistoryBuilder

LEASE_MS = 50
DELIVERY_CAP = 3
CONSUMERS = 3
RETRY_DELAY_MS = 5

# Actions, as Hypothesis draws them:
#   ("enqueue", producer, [(prio, planned failures), ...], max_retries, outcome)
#   ("read", slot, count)   ("settle", slot)   ("kill", slot)   ("kill_mid_read", slot, count)   ("wait", ms)
Action = tuple[Any, ...]


@dataclass
class Task:
    prio: int
    max_retries: int
    failures: int  # attempts that will fail before one succeeds
    attempt: int = 0
    deliveries: int = 0  # of the current entry; a retry is a new entry


@dataclass
class Consumer:
    slot: int
    incarnation: int = 0
    held: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"consumer-{self.slot}#{self.incarnation}"


class QueueModel:
    def __init__(self) -> None:
        self.h = HistoryBuilder()
        self.tasks: dict[str, Task] = {}
        self.ready: list[deque[str]] = [deque() for _ in range(4)]
        self.delayed: list[tuple[int, str]] = []
        self.orphans: list[tuple[int, str]] = []  # (delivered ns, tid) held by killed consumers
        self.delivered_ns: dict[str, int] = {}
        self.consumers = [Consumer(slot) for slot in range(CONSUMERS)]
        self.dead: list[tuple[str, str, int, int]] = []
        self.serial = 0

    # -- the run ------------------------------------------------------------------------------------
    def run(self, actions: list[Action]) -> QueueModel:
        self.h.phase("load")
        self._prologue()
        for action in actions:
            getattr(self, f"_{action[0]}")(*action[1:])
        self.h.phase("drain")
        self.drain()
        return self

    def _prologue(self) -> None:
        """Tasks every plant can rely on: one done at once, one retried once, one dead-lettered."""
        self._enqueue_named("producer-0.0", [("anchor", 1, 0)], max_retries=1)
        self._read(0, 1)
        self._settle(0)
        self._enqueue_named("producer-0.0", [("retry-anchor", 1, 1)], max_retries=1)
        self._read(0, 1)
        self._settle(0)
        self.h.advance(ms=RETRY_DELAY_MS)
        self._read(0, 1)
        self._settle(0)
        self._enqueue_named("producer-0.0", [("dead-anchor", 2, 9)], max_retries=1)
        for _ in range(2):
            self._read(0, 1)
            self._settle(0)
            self.h.advance(ms=RETRY_DELAY_MS)

    def drain(self) -> None:
        for consumer in self.consumers:
            self._settle(consumer.slot)
        for _ in range(200):
            if not (self.orphans or self.delayed or any(self.ready)):
                return
            self.h.advance(ms=LEASE_MS + 1)
            self._read(0, 10)
            self._settle(0)
        raise AssertionError("the model did not drain: a bug in the model")

    def finish(self, **final: Any) -> list[dict[str, Any]]:
        self.h.final(dead=self.dead, **final)
        return self.h.history()

    # -- agents ---------------------------------------------------------------------------------------
    def _enqueue(self, producer: int, tasks: list[tuple[int, int]], max_retries: int, outcome: str) -> None:
        named = []
        for prio, failures in tasks:
            self.serial += 1
            named.append((f"p{producer}-{self.serial}", prio, failures))  # numbered in send order, as producers do
        self._enqueue_named(f"producer-{producer}.0", named, max_retries=max_retries, outcome=outcome)

    def _enqueue_named(
        self, process: str, tasks: list[tuple[str, int, int]], *, max_retries: int, outcome: str = "ok"
    ) -> None:
        h = self.h
        h.invoke(process, "enqueue", {"tasks": [[tid, prio, max_retries] for tid, prio, _ in tasks], "due_ns": 0})
        if outcome in ("ok", "info_applied"):
            for tid, prio, failures in tasks:
                self.tasks[tid] = Task(prio, max_retries, failures)
                self.ready[prio].append(tid)
        answer = {"ok": "ok", "info_applied": "info", "info_lost": "info", "fail": "fail"}[outcome]
        h.respond(process, "enqueue", answer, {} if answer == "ok" else {"error": "synthetic"})

    def _hand_out(self, count: int) -> list[list[Any]]:
        now = self.h.now_ns
        for due, tid in sorted(self.delayed):
            if due <= now:
                self.delayed.remove((due, tid))
                self.ready[self.tasks[tid].prio].append(tid)
        out: list[list[Any]] = []
        for delivered_ns, tid in sorted(self.orphans):
            if len(out) < count and now - delivered_ns >= LEASE_MS * MS:
                self.orphans.remove((delivered_ns, tid))
                self._reclaim(tid, out)
        for ready in self.ready:
            while ready and len(out) < count:
                out.append(self._take(ready.popleft()))
        return out

    def _reclaim(self, tid: str, out: list[list[Any]]) -> None:
        task = self.tasks[tid]
        if task.deliveries >= DELIVERY_CAP:
            self.dead.append((tid, f"delivery cap: {task.deliveries}", task.attempt, task.attempt))
        else:
            out.append(self._take(tid))

    def _take(self, tid: str) -> list[Any]:
        task = self.tasks[tid]
        task.deliveries += 1
        self.delivered_ns[tid] = self.h.now_ns
        # The payload tid, budget, payload digest and error count of harness.history (a retry keeps them).
        return [tid, task.prio, task.attempt, task.deliveries, tid, task.max_retries, f"d-{tid}", task.attempt]

    def _read(self, slot: int, count: int) -> None:
        consumer = self.consumers[slot]
        if consumer.held:
            return  # a consumer settles before it reads again
        self.h.deliver_invoke(consumer.name)
        out = self._hand_out(count)
        self.h.deliver_ok(consumer.name, out)
        consumer.held = [entry[0] for entry in out]

    def _settle(self, slot: int) -> None:
        consumer = self.consumers[slot]
        if not consumer.held:
            return
        held, consumer.held = consumer.held, []
        failing = [tid for tid in held if self.tasks[tid].attempt < self.tasks[tid].failures]
        done = [tid for tid in held if tid not in failing]
        if done:
            self.h.complete(consumer.name, done)
        if failing:
            self.h.invoke(consumer.name, "fail", {"tasks": [[t, self.tasks[t].attempt, "boom"] for t in failing]})
            outcomes = [self._fail(tid) for tid in failing]
            self.h.respond(consumer.name, "fail", "ok", {"outcomes": outcomes})

    def _fail(self, tid: str) -> str:
        task = self.tasks[tid]
        if task.attempt >= task.max_retries:
            self.dead.append((tid, "retries exhausted: boom", task.attempt, task.attempt + 1))
            return "dead"
        task.attempt += 1
        task.deliveries = 0
        self.delayed.append((self.h.now_ns + RETRY_DELAY_MS * MS, tid))
        return "retried"

    # -- nemesis ------------------------------------------------------------------------------------
    def _kill(self, slot: int) -> None:
        consumer = self.consumers[slot]
        self.h.fault("kill", consumer.name, held=consumer.held, ends=False)
        self._replace(consumer)

    def _kill_mid_read(self, slot: int, count: int) -> None:
        """The consumer dies inside a read: the queue handed tasks out, nobody saw which."""
        consumer = self.consumers[slot]
        if consumer.held:
            return
        self.h.deliver_invoke(consumer.name)
        consumer.held = [entry[0] for entry in self._hand_out(count)]
        self.h.fault("kill", consumer.name, held=[], ends=False)
        self._replace(consumer)

    def _replace(self, consumer: Consumer) -> None:
        for tid in consumer.held:
            self.orphans.append((self.delivered_ns[tid], tid))
        consumer.held = []
        consumer.incarnation += 1
        self.h.end_fault(restarted=consumer.name)

    def _wait(self, ms: int) -> None:
        self.h.advance(ms=ms)
