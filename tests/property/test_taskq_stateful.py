"""A stateful model test of taskq against real Redis.

Hypothesis drives one TaskQueue through random sequences of what its users and failures do:
enqueue (priority, max_retries, now or delayed), reads by several named consumers, ack, fail,
renew, release, a consumer vanishing with its deliveries unacked, the visibility timeout passing
for one consumer's leases, reclaim, the clock moving on, promote, DLQ requeue, late
ack/fail/renew/release with receipts whose lease ended or was taken over, and the same with
receipts naming the wrong consumer or delivery count. Each step is checked
against the plain model in taskq_model.py, and after every step the whole queue is read back
from Redis and compared: nothing lost or duplicated, one owner per delivery, strict priority
and FIFO, retry counts, errors and DLQ contents, stats counters.

Time is deterministic. Due times come from an injected clock (QueueSettings.clock_ms) that only
the `clock_moves` rule advances; the visibility timeout is an hour, and a lease "expires" when
`XCLAIM ... IDLE <2 h> JUSTID` makes its pending entry look idle that long. Nothing sleeps.

Runs against the session redis-server, a fresh queue per example. The budget follows the
Hypothesis profile (tests/property/conftest.py):

    .venv/bin/pytest -q tests/property/test_taskq_stateful.py                         # ci: derandomized
    HYPOTHESIS_PROFILE=dev .venv/bin/pytest -q tests/property/test_taskq_stateful.py  # new examples each run
    HYPOTHESIS_PROFILE=nightly .venv/bin/pytest -q tests/property/test_taskq_stateful.py  # the long search

With -s it prints how many examples and steps ran and how long they took (ci: ~160 examples,
~9,400 steps, ~22 s; nightly: ~7,100 examples, ~550,000 steps, ~19 min).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from taskq import DeadLetter, Delivery, LeaseLost, Outcome, QueueSettings, Receipt, Task, TaskPriority, TaskQueue
from taskq.dlq import parse_dead_letter
from taskq.stats import QueueStats
from taskq.task import decode_task
from tests.property.taskq_model import (
    DEAD,
    DELAYED,
    HELD,
    PRIORITIES,
    READY,
    AttemptError,
    ModelTask,
    QueueModel,
    cap_reason,
    entry_order,
)


@dataclass(frozen=True)
class Budget:
    max_examples: int
    steps: int
    timeout_s: float


# Per profile: examples, steps per example, and a timeout that leaves room for Hypothesis's
# shrinking (it gives up after five minutes) so a failure is reported, not killed.
BUDGETS = {
    "ci": Budget(max_examples=120, steps=100, timeout_s=600),
    "dev": Budget(max_examples=600, steps=100, timeout_s=1800),
    "nightly": Budget(max_examples=5000, steps=150, timeout_s=4 * 3600),
}
BUDGET = BUDGETS.get(
    os.environ.get("HYPOTHESIS_PROFILE", "ci"),
    Budget(max_examples=settings.default.max_examples, steps=100, timeout_s=4 * 3600),  # a profile added later
)


@dataclass
class Tally:
    """What one run explored, printed at its end (visible with -s)."""

    examples: int = 0
    steps: int = 0


TALLY = Tally()
CONSUMERS = ("ann", "bob", "cyd")
SETTLE_OPS = ("ack", "fail", "renew", "release", "complete_task", "fail_task")
START_MS = 1_700_000_000_000
PENDING_TIMEOUT_S = 3600.0  # never reached by real time: leases expire only when a rule ages them
AGED_MS = 2 * 3600 * 1000
BASE_DELAY_MS, MAX_DELAY_MS = 1000, 4000


def errors_of(task: Task) -> list[AttemptError]:
    return [AttemptError(e["attempt"], e["error"], e["consumer"], e["at_ms"]) for e in task.errors]


@dataclass
class Snapshot:
    """Everything a queue holds, read back from Redis; `where` lists each task id's places."""

    ready: dict[str, tuple[int, str, Task]]  # task id -> (priority, entry id, task)
    held: dict[str, tuple[int, str, str, int, int, Task]]  # ... (priority, entry id, consumer, deliveries, idle ms)
    delayed: dict[str, tuple[int, int, Task]]  # task id -> (priority, due ms, task)
    dead: list[DeadLetter]
    stats: QueueStats  # what TaskQueue.stats() answers
    where: dict[str, list[str]]
    orphans: list[str]  # pending entries whose stream entry is gone


async def snapshot(queue: TaskQueue) -> Snapshot:
    """Read every key of the queue in one round trip (the queue is idle between steps)."""
    keys, group = queue.keys, queue.settings.group
    async with queue.redis.pipeline(transaction=True) as pipe:
        for priority in PRIORITIES:
            pipe.xrange(keys.stream(priority))
            pipe.xpending_range(keys.stream(priority), group, min="-", max="+", count=100_000)
        pipe.zrange(keys.delayed, 0, -1, withscores=True)
        pipe.xrange(keys.dlq)
        pipe.fcall("taskq_stats", len(keys.function_keys), *keys.function_keys, group)
        replies = await pipe.execute()
    dead = [parse_dead_letter(*entry) for entry in replies[9]]
    snap = Snapshot({}, {}, {}, dead, QueueStats.from_reply(replies[10]), {}, [])

    def place(task_id: str, state: str) -> None:
        snap.where.setdefault(task_id, []).append(state)

    for priority in PRIORITIES:
        entries = {entry_id.decode(): fields for entry_id, fields in replies[2 * priority]}
        for p in replies[2 * priority + 1]:
            entry_id = p["message_id"].decode()
            fields = entries.pop(entry_id, None)
            if fields is None:
                snap.orphans.append(f"p{priority}:{entry_id}")
                continue
            task = decode_task(fields, priority)
            consumer = p["consumer"].decode()
            snap.held[task.task_id] = (
                priority, entry_id, consumer, p["times_delivered"], p["time_since_delivered"], task
            )  # fmt: skip
            place(task.task_id, HELD)
        for entry_id, fields in entries.items():
            task = decode_task(fields, priority)
            snap.ready[task.task_id] = (priority, entry_id, task)
            place(task.task_id, READY)
    for member, score in replies[8]:
        unpacked = msgpack.unpackb(member, raw=True)
        task = decode_task(unpacked[1:], int(unpacked[0]))
        snap.delayed[task.task_id] = (int(unpacked[0]), int(score), task)
        place(task.task_id, DELAYED)
    for letter in snap.dead:
        place(letter.task.task_id if letter.task else f"raw:{letter.entry_id}", DEAD)
    return snap


class TaskqMachine(RuleBasedStateMachine):
    """One queue used by three named consumers; `model` says what each call must do."""

    model: QueueModel

    def __init__(self, redis_url: str) -> None:
        super().__init__()
        self.redis_url = redis_url
        self.incarnation = dict.fromkeys(CONSUMERS, 0)
        self.serial = 0
        self.queue: TaskQueue | None = None
        self.runner = asyncio.Runner()  # one event loop per machine: the queue's connections live in it

    @initialize(
        delivery_cap=st.sampled_from([2, 3]),
        retry_at_once=st.booleans(),
        backlog=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), max_size=8),
    )
    def start(self, delivery_cap: int, retry_at_once: bool, backlog: list[tuple[int, int]]) -> None:
        """A fresh queue, with some ready tasks so that reads from the first step on have work.

        A delivery cap of 2 dead-letters a task on its second reclaim; 3 first hands it out
        once more, alone. A zero retry delay sends retries straight back to their stream.
        """
        self.model = QueueModel(now_ms=START_MS, delivery_cap=delivery_cap, retry_at_once=retry_at_once)
        queue = TaskQueue(
            self.redis_url,
            settings=QueueSettings(
                name=f"stateful-{uuid.uuid4().hex[:12]}",
                pending_timeout_s=PENDING_TIMEOUT_S,
                retry_base_delay_s=0 if retry_at_once else BASE_DELAY_MS / 1000,
                retry_max_delay_s=MAX_DELAY_MS / 1000,
                delivery_cap=delivery_cap,
                block_ms=0,
                promote_limit=100_000,  # promote everything due: the limit is not modelled
                clock_ms=lambda: self.model.now_ms,
            ),
        )
        self.run(queue.connect())
        self.queue = queue  # only once connected: teardown cleans up what is set here
        TALLY.examples += 1
        self.enqueue(backlog, 0)

    @property
    def q(self) -> TaskQueue:
        assert self.queue is not None, "the start rule creates the queue"
        return self.queue

    def run(self, coroutine: Any) -> Any:
        # Not Runner.run: that installs a SIGINT handler on every call, a third of a step's time.
        return self.runner.get_loop().run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            if self.queue is not None:
                self.run(self.queue.redis.delete(*self.queue.keys.function_keys))
                self.run(self.queue.disconnect())
        finally:
            self.runner.close()

    def name(self, consumer: str) -> str:
        return f"{consumer}-{self.incarnation[consumer]}"

    def live_names(self) -> list[str]:
        """Consumers alive now that hold at least one delivery."""
        return [n for n in (self.name(c) for c in CONSUMERS) if self.model.leases_of(n)]

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    # -- producers ------------------------------------------------------------------------------------

    @rule(
        specs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=3),
        delay_ms=st.sampled_from([0, 0, 0, 500, 3000]),
    )
    def enqueue(self, specs: list[tuple[int, int]], delay_ms: int) -> None:
        if not specs:
            return
        tasks = [
            Task(task_id=f"t{self.next_serial():04d}", task_type="job", payload={"n": self.serial},
                 priority=TaskPriority(priority), max_retries=max_retries)
            for priority, max_retries in specs
        ]  # fmt: skip
        ids = self.run(self.q.add_tasks(tasks, delay_s=delay_ms / 1000))
        assert ids == [t.task_id for t in tasks]
        due = self.model.now_ms + delay_ms if delay_ms else None
        self.model.enqueue(((t.task_id, int(t.priority), t.max_retries) for t in tasks), due)

    # -- consumers --------------------------------------------------------------------------------------

    @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 4))
    def read(self, consumer: str, count: int) -> None:
        name = self.name(consumer)
        deliveries: list[Delivery] = self.run(self.q.read(name, count, block_ms=0))
        self.model.promote()  # reads promote due tasks first
        for delivery in deliveries:
            task = self.model.tasks.get(delivery.task.task_id)
            assert task is not None and task.state == READY, f"delivered {delivery}, model has {task}"
            assert delivery.receipt.deliveries == 1 and delivery.receipt.consumer == name, delivery.receipt
            self.check_task(delivery.task, task)
        expected = self.model.read_counts(count)
        got = [sum(1 for d in deliveries if d.receipt.priority == p) for p in PRIORITIES]
        assert got == expected, f"read({count}) by priority gave {got}, strict priority wants {expected}"
        priorities = [d.receipt.priority for d in deliveries]
        assert priorities == sorted(priorities), f"a batch is highest priority first: {priorities}"
        for priority in PRIORITIES:
            self.check_fifo(priority, [d for d in deliveries if d.receipt.priority == priority])
        for delivery in deliveries:
            self.model.deliver(self.model.tasks[delivery.task.task_id], delivery.receipt)

    def check_fifo(self, priority: int, delivered: list[Delivery]) -> None:
        """Within a priority a read takes the oldest ready tasks, in entry order."""
        if not delivered:
            return
        ids = [d.receipt.entry_id for d in delivered]
        assert ids == sorted(ids, key=entry_order), f"p{priority} entries out of order: {ids}"
        taken = {d.task.task_id for d in delivered}
        ready = self.model.ready(priority)
        newest_taken = max(t.ready_seq for t in ready if t.task_id in taken)
        left = [t.task_id for t in ready if t.task_id not in taken and t.ready_seq < newest_taken]
        assert not left, f"p{priority} read skipped older ready tasks {left}"

    def check_task(self, got: Task, task: ModelTask) -> None:
        assert (got.task_id, int(got.priority)) == (task.task_id, task.priority), (got, task)
        assert (got.retry_count, got.max_retries) == (task.retry_count, task.max_retries), (got, task)
        assert errors_of(got) == task.errors, f"{task.task_id} errors {got.errors}, expected {task.errors}"

    def receipts(self, data: st.DataObject) -> tuple[str, list[Receipt]]:
        """A live consumer holding deliveries, and 1-4 of its receipts (a receipt may repeat)."""
        name = data.draw(st.sampled_from(self.live_names()), label="consumer")
        held = self.model.leases_of(name)
        return name, data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=4), label="receipts")

    def has_live_leases(self) -> bool:
        return bool(self.live_names())

    @precondition(has_live_leases)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        _, receipts = self.receipts(data)
        outcomes = self.run(self.q.ack(receipts))
        assert outcomes == [self.model.ack(r) for r in receipts]

    @precondition(has_live_leases)
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        _, receipts = self.receipts(data)
        failures = [(r, f"boom {self.next_serial()}") for r in receipts]
        outcomes = self.run(self.q.fail(failures))
        assert outcomes == [self.model.fail(r, message) for r, message in failures]
        self.learn_due_times()

    def learn_due_times(self) -> None:
        """Retries wait base * 2**retry_count (capped) times a jitter in [0.5, 1): read what was drawn."""
        waiting = [t for t in self.model.in_state(DELAYED) if t.due_ms is None]
        if not waiting:
            return
        delayed = self.run(snapshot(self.q)).delayed
        for task in waiting:
            assert task.task_id in delayed, f"{task.task_id} was retried but is not in the delayed set"
            delay_ms = delayed[task.task_id][1] - self.model.now_ms
            full_ms = min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (task.retry_count - 1))
            assert full_ms // 2 <= delay_ms <= full_ms, f"retry {task.retry_count} delay {delay_ms} ms, full {full_ms}"
            task.due_ms = delayed[task.task_id][1]

    @precondition(has_live_leases)
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        name, receipts = self.receipts(data)
        outcomes = self.run(self.q.renew(name, receipts))
        assert outcomes == [self.model.renew(r, name) for r in receipts]

    @precondition(has_live_leases)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        name, receipts = self.receipts(data)
        outcomes = self.run(self.q.release(name, receipts))
        assert outcomes == [self.model.release(r, name) for r in receipts]

    @precondition(has_live_leases)
    @rule(data=st.data())
    def consumer_vanishes(self, data: st.DataObject) -> None:
        """A worker dies holding deliveries; its successor runs under a new name."""
        name = data.draw(st.sampled_from(self.live_names()), label="consumer")
        self.incarnation[name.rsplit("-", 1)[0]] += 1

    @precondition(lambda self: bool(self.model.leases()))
    @rule(data=st.data())
    def leases_expire(self, data: st.DataObject) -> None:
        """The visibility timeout passes for one consumer (alive, paused or gone)."""
        owner = data.draw(st.sampled_from(sorted({r.consumer for r in self.model.leases()})), label="owner")
        self.run(self.age(self.model.expire(owner)))

    async def age(self, receipts: list[Receipt]) -> None:
        for r in receipts:
            stream, group = self.q.keys.stream(r.priority), self.q.settings.group
            claimed = await self.q.redis.xclaim(stream, group, r.consumer, 0, [r.entry_id], idle=AGED_MS, justid=True)
            assert claimed == [r.entry_id.encode()], f"{r} was not pending to age it: {claimed}"

    @precondition(lambda self: any(t.lease and t.lease.expired for t in self.model.in_state(HELD)))
    @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 4))
    def reclaim(self, consumer: str, count: int) -> None:
        name = self.name(consumer)
        deliveries: list[Delivery] = self.run(self.q.reclaim(name, count))
        expected = self.model.reclaim(name, count)
        assert [d.receipt for d in deliveries] == [r for _, r in expected], "reclaim took other deliveries"
        for delivery, (task, _) in zip(deliveries, expected):
            self.check_task(delivery.task, task)

    # -- time and housekeeping ------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.in_state(DELAYED)))
    @rule(ms=st.integers(1, 5000))
    def clock_moves(self, ms: int) -> None:
        self.model.now_ms += ms

    @precondition(lambda self: bool(self.model.in_state(DELAYED)))
    @rule()
    def promote(self) -> None:
        assert self.run(self.q.promote()) == self.model.promote()

    @precondition(lambda self: bool(self.model.in_state(DEAD)))
    @rule(data=st.data(), twice=st.booleans())
    def requeue_one(self, data: st.DataObject, twice: bool) -> None:
        task = data.draw(st.sampled_from(self.model.dead()), label="dead task")
        [letter] = self.run(self.q.dlq.find(task.task_id))
        ids = [letter.entry_id] * (2 if twice else 1)  # the second is refused: the entry is gone
        assert self.run(self.q.dlq.requeue(ids)) == 1
        self.model.requeue(task)

    @precondition(lambda self: bool(self.model.in_state(DEAD)))
    @rule()
    def requeue_all(self) -> None:
        dead = self.model.dead()
        assert self.run(self.q.dlq.requeue()) == len(dead)
        for task in dead:
            self.model.requeue(task)

    @precondition(lambda self: bool(self.model.stale))
    @rule(data=st.data(), op=st.sampled_from(SETTLE_OPS), taken_over=st.booleans())
    def late_settle(self, data: st.DataObject, op: str, taken_over: bool) -> None:
        """A consumer settles a delivery whose lease ended: refused, and nothing changes.

        `taken_over` prefers receipts whose entry another consumer holds now (reclaimed from a
        paused or dead one) over receipts of settled deliveries.
        """
        lost = [r for r in self.model.stale if self.model.lease_status(r)[1] is Outcome.LEASE_LOST]
        pool = lost if taken_over and lost else self.model.stale
        receipt = data.draw(st.sampled_from(pool), label="stale receipt")
        outcome = self.run(self.settle(op, receipt))
        _, expected = self.model.lease_status(receipt)
        assert expected in (Outcome.LEASE_LOST, Outcome.NOT_PENDING)
        assert outcome == expected, f"late {op} of {receipt}: {outcome!r}, expected {expected!r}"

    @precondition(lambda self: bool(self.model.leases()))
    @rule(
        data=st.data(),
        op=st.sampled_from(SETTLE_OPS),
        forge=st.sampled_from(["consumer", "deliveries"]),
    )
    def impostor_settles(self, data: st.DataObject, op: str, forge: str) -> None:
        """Settling a delivery held by someone else, or with a forged delivery count, is refused."""
        lease = data.draw(st.sampled_from(self.model.leases()), label="someone's lease")
        if forge == "consumer":
            others = [self.name(c) for c in CONSUMERS if self.name(c) != lease.consumer]
            forged = lease._replace(consumer=data.draw(st.sampled_from(others), label="impostor"))
        else:
            forged = lease._replace(deliveries=lease.deliveries + data.draw(st.sampled_from([-1, 1]), label="off by"))
            if forged.deliveries < 1:
                forged = lease._replace(deliveries=lease.deliveries + 1)
        outcome = self.run(self.settle(op, forged))
        assert outcome is Outcome.LEASE_LOST, f"{op} of {forged} for {lease}: {outcome!r}"
        assert self.model.lease_status(forged)[1] is Outcome.LEASE_LOST

    async def settle(self, op: str, receipt: Receipt) -> Outcome:
        """One settle call of `op` by the consumer the receipt names; the seed's API raises LeaseLost."""
        queue = self.q
        try:
            if op == "complete_task":
                await queue.complete_task(receipt)
                return Outcome.DONE
            if op == "fail_task":
                return await queue.fail_task(receipt, "late failure")
        except LeaseLost as refused:
            return Outcome.LEASE_LOST if "another consumer took it over" in refused.reason else Outcome.NOT_PENDING
        if op == "ack":
            [outcome] = await queue.ack([receipt])
        elif op == "fail":
            [outcome] = await queue.fail([(receipt, "late failure")])
        elif op == "renew":
            [outcome] = await queue.renew(receipt.consumer, [receipt])
        else:
            [outcome] = await queue.release(receipt.consumer, [receipt])
        return outcome

    # -- invariants ----------------------------------------------------------------------------------------

    @invariant()
    def redis_matches_model(self) -> None:
        TALLY.steps += 1
        snap = self.run(snapshot(self.q))
        model = self.model
        assert not snap.orphans, f"pending entries without a stream entry: {snap.orphans}"
        twice = {task_id: places for task_id, places in snap.where.items() if len(places) > 1}
        assert not twice, f"tasks in more than one place: {twice}"
        unknown = set(snap.where) - set(model.tasks)
        assert not unknown, f"Redis holds tasks never enqueued: {unknown}"
        for state, found in ((READY, snap.ready), (HELD, snap.held), (DELAYED, snap.delayed)):
            expected = {t.task_id for t in model.in_state(state)}
            assert set(found) == expected, f"{state}: Redis {sorted(found)}, model {sorted(expected)}"
        self.check_ready(snap)
        self.check_held(snap)
        self.check_delayed(snap)
        self.check_dead(snap)
        self.check_stats(snap)

    def check_ready(self, snap: Snapshot) -> None:
        for priority in PRIORITIES:
            in_stream = sorted((e for e in snap.ready.values() if e[0] == priority), key=lambda e: entry_order(e[1]))
            seqs = [self.model.tasks[task.task_id].ready_seq for _, _, task in in_stream]
            assert seqs == sorted(seqs), f"p{priority} ready tasks out of FIFO order"
        for task_id, (priority, _, task) in snap.ready.items():
            assert priority == self.model.tasks[task_id].priority
            self.check_task(task, self.model.tasks[task_id])

    def check_held(self, snap: Snapshot) -> None:
        for task_id, (priority, entry_id, consumer, deliveries, idle_ms, task) in snap.held.items():
            lease = self.model.tasks[task_id].lease
            assert lease is not None
            assert Receipt(priority, entry_id, deliveries, consumer) == lease.receipt, f"{task_id} lease"
            assert (idle_ms >= PENDING_TIMEOUT_S * 1000) == lease.expired, f"{task_id} idle {idle_ms} ms"
            self.check_task(task, self.model.tasks[task_id])

    def check_delayed(self, snap: Snapshot) -> None:
        for task_id, (priority, due_ms, task) in snap.delayed.items():
            expected = self.model.tasks[task_id]
            assert (priority, due_ms) == (expected.priority, expected.due_ms), f"{task_id} due"
            self.check_task(task, expected)

    def check_dead(self, snap: Snapshot) -> None:
        """The DLQ holds exactly the tasks out of retries or over the delivery cap, in order."""
        dead = self.model.dead()
        got = [letter.task.task_id if letter.task else letter.entry_id for letter in snap.dead]
        assert got == [t.task_id for t in dead], f"DLQ {got}, model {[t.task_id for t in dead]}"
        for letter, task in zip(snap.dead, dead):
            assert letter.task is not None
            assert (letter.reason, letter.priority) == (task.reason, task.priority), letter
            assert (letter.origin_entry_id, letter.dead_at_ms) == (task.origin_entry_id, task.dead_at_ms), letter
            self.check_task(letter.task, task)
            # One error per failed attempt since it was enqueued or last requeued, the cap counting as one.
            attempts = [e["attempt"] for e in letter.errors]
            assert attempts == list(range(1, len(attempts) + 1)), f"{task.task_id} attempts {attempts}"
            if letter.reason.startswith("retries exhausted: "):
                assert letter.task.retry_count == letter.task.max_retries == len(attempts) - 1, letter
            else:  # delivered delivery_cap times: the last delivery never ended, and counts as an attempt
                assert letter.reason == letter.errors[-1]["error"] == cap_reason(self.model.delivery_cap), letter
                assert letter.task.retry_count == len(attempts) - 1, letter

    def check_stats(self, snap: Snapshot) -> None:
        stats = snap.stats
        assert stats.counters == self.model.counters
        model = self.model
        assert [stats.ready[p] for p in PRIORITIES] == [len(model.ready(p)) for p in PRIORITIES]
        assert [stats.pending[p] for p in PRIORITIES] == [
            sum(1 for t in model.in_state(HELD) if t.priority == p) for p in PRIORITIES
        ]
        assert (stats.delayed, stats.dead) == (len(model.in_state(DELAYED)), len(model.in_state(DEAD)))


@pytest.mark.timeout(BUDGET.timeout_s)
def test_taskq_keeps_its_promises(redis_server: Any) -> None:
    started = time.monotonic()
    try:
        run_state_machine_as_test(
            lambda: TaskqMachine(redis_server.url),
            settings=settings(max_examples=BUDGET.max_examples, stateful_step_count=BUDGET.steps),
        )
    finally:
        elapsed_s = time.monotonic() - started
        print(f"\nstateful taskq: {TALLY.examples} examples, {TALLY.steps} steps in {elapsed_s:.1f} s")
